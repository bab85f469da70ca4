-- stepsync.refresh_search_statistics() (Citus only): the sample stepsync._search_statistics reads
-- (docs/contract.md §11). The explanation is in the body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync.refresh_search_statistics(p_sample_rows integer DEFAULT 30000)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- On one node autovacuum's ANALYZE keeps the statistics stepsync.search_steps chooses its way by; on
-- Citus they are on the shards, out of the coordinator's reach. This takes a sample of about
-- p_sample_rows rows of public.step_library from every shard (each row with the same chance, as ANALYZE
-- does), stores their search vectors in stepsync.search_sample, ANALYZEs it, and records the library's
-- row count. Run by `stepsync install`; run it again after large loads, or from a scheduler (pg_cron,
-- say) as often as the library's words change: stale figures make searches slower, never different.
-- It also puts back any missing row of stepsync.search_anchors (stepsync._search_anchors_fill).
-- As the owner (SECURITY DEFINER), who owns the sample; not granted to PUBLIC: a refresh reads every
-- shard. Returns the rows sampled.
DECLARE
    v_rows double precision;
    v_sampled bigint;
BEGIN
    IF p_sample_rows IS NULL OR p_sample_rows < 1 THEN
        RAISE EXCEPTION 'p_sample_rows must be at least 1, not %', p_sample_rows USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_rows := (SELECT pg_catalog.count(*) FROM public.step_library);
    TRUNCATE stepsync.search_sample;
    INSERT INTO stepsync.search_sample (search_vector)
    SELECT s.search_vector FROM public.step_library AS s
     WHERE pg_catalog.random() < LEAST(1.0, p_sample_rows / GREATEST(v_rows, 1));
    GET DIAGNOSTICS v_sampled = ROW_COUNT;
    ANALYZE stepsync.search_sample;
    PERFORM stepsync._search_anchors_fill();   -- and the rows search reaches the workers through
    INSERT INTO stepsync.search_sample_size AS z (library_rows, sampled_rows)
    VALUES (v_rows, v_sampled)
    ON CONFLICT (singleton) DO UPDATE
       SET library_rows = EXCLUDED.library_rows, sampled_rows = EXCLUDED.sampled_rows, refreshed_at = pg_catalog.now();
    RETURN v_sampled;
END;
$function$;

COMMENT ON FUNCTION stepsync.refresh_search_statistics(integer) IS
    'Citus: samples step_library''s search vectors from every shard for the statistics stepsync.search_steps chooses its way by (docs/contract.md §11); run after large loads. Returns the rows sampled.';

REVOKE ALL ON FUNCTION stepsync.refresh_search_statistics(integer) FROM PUBLIC;
