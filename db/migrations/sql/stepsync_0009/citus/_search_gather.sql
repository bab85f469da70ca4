-- stepsync._search_gather on Citus (docs/contract.md §6.8, §11.4). The explanation is the comment at the top of
-- its body (\sf shows it). It takes the anchors and p_rows, and returns the rows too, since stepsync_0009: the old
-- signature goes.
DROP FUNCTION IF EXISTS stepsync._search_gather(stepsync.search_request);
CREATE OR REPLACE FUNCTION stepsync._search_gather(p_request stepsync.search_request, p_anchors uuid[],
                                                   p_rows integer)
RETURNS stepsync.search_found
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._search_gather(p_request, p_anchors, p_rows): what stepsync._search_walk finds for the search
-- p_request (stepsync._search_ranked makes it; docs/contract.md §6.8) in the library, which on Citus is in
-- the workers' shards of public.step_library (docs/contract.md §11.4); with p_rows, also the rows of each
-- worker's best p_rows matches (stepsync._search_local says which), read as this function's caller reads
-- them. p_anchors: stepsync._search_anchors(). Not granted to PUBLIC.
--
-- Each worker walks its own shards (stepsync._search_local), all workers at once, one command each:
-- one query on stepsync.search_anchors filtered on one key a worker (p_anchors), which Citus sends to
-- exactly those workers. A walk over the distributed table instead sends each of its statements to every
-- shard, and each such command costs about 0.4 ms on loopback (measured: a rare word, two statements over
-- 32 shards, 36 ms against 3 ms on one node).
--
-- The same candidates as one walk over the whole library. A worker stops after the first class where its
-- own matches are more than its target; every match of the classes up to the smallest class a worker
-- stopped at (done, the least of the workers') is then at hand (a worker that did not stop has all its
-- matches). When more than T of them are, the cut of stepsync._search_ranked (the first class where the
-- library's matches are more than T) is among them. So the workers first walk to a quarter more than
-- their share of T (the library's rows are spread evenly over the shards, so together they nearly always
-- pass T); if together they have no more than T up to done, they walk again with T itself: then the
-- worker that stopped first alone has more than T. The title rule's fetch (p_request.title_query) goes
-- to every worker the same way, in one round.
--
-- If the anchors are missing (a worker returns nothing: stepsync.search_anchors emptied by hand, or a
-- worker added since the install), the coordinator walks the distributed table itself: the same matches,
-- no rows (search_steps reads them), slower; stepsync.refresh_search_statistics() (or an install) puts
-- the anchors back.
DECLARE
    v_request stepsync.search_request := p_request;
    v_reached integer;              -- the workers that answered
    v_walks stepsync.search_walk[];
    v_out stepsync.search_found;
BEGIN
    IF p_anchors IS NULL THEN
        RETURN ROW(ROW('{}', '{}', '{}', '{}', '{}', '{}', NULL, true, true)::stepsync.search_walk,
                   '{}')::stepsync.search_found;        -- no shards
    END IF;
    IF p_request.title_query IS NULL THEN
        -- The first round: a quarter more than each worker's share of T.
        v_request := pg_catalog.jsonb_populate_record(p_request, pg_catalog.jsonb_build_object(
                         'target', pg_catalog.ceil(1.25 * p_request.target / pg_catalog.cardinality(p_anchors))));
    END IF;
    FOR v_round IN 1..2 LOOP
        -- Each worker's walk (its first row) and the rows it read (one row each). An ordered aggregate: Citus
        -- then brings the rows here as they are, rather than aggregating on the workers.
        SELECT pg_catalog.array_agg(f.walk ORDER BY (f.walk).done) FILTER (WHERE (f.walk).ids IS NOT NULL),
               COALESCE(pg_catalog.array_agg(f.found ORDER BY (f.found).id) FILTER (WHERE (f.found).id IS NOT NULL),
                        '{}')
          INTO v_walks, v_out.rows
          FROM stepsync.search_anchors AS a
         CROSS JOIN LATERAL stepsync._search_local(a.tree_key, v_request, p_rows) AS f
         WHERE a.tree_key = ANY (p_anchors);
        v_reached := COALESCE(pg_catalog.cardinality(v_walks), 0);
        IF v_reached < pg_catalog.cardinality(p_anchors) THEN
            RETURN ROW(stepsync._search_walk(ARRAY['public.step_library'::pg_catalog.regclass], p_request),
                       '{}')::stepsync.search_found;
        END IF;
        -- The workers' matches as one walk's: every match of every worker, up to the least class any reached.
        SELECT ROW(COALESCE(pg_catalog.array_agg(u.id), '{}'), COALESCE(pg_catalog.array_agg(u.tree_key), '{}'),
                   COALESCE(pg_catalog.array_agg(u.tier), '{}'), COALESCE(pg_catalog.array_agg(u.usage_count), '{}'),
                   COALESCE(pg_catalog.array_agg(u.rating), '{}'), COALESCE(pg_catalog.array_agg(u.class), '{}'),
                   (SELECT pg_catalog.min(x.done) FROM pg_catalog.unnest(v_walks) AS x),
                   (SELECT pg_catalog.bool_and(x.all_matches) FROM pg_catalog.unnest(v_walks) AS x),
                   (SELECT pg_catalog.bool_and(x.sampled) FROM pg_catalog.unnest(v_walks) AS x))::stepsync.search_walk
          INTO v_out.walk
          FROM pg_catalog.unnest(v_walks) AS w,
               ROWS FROM (pg_catalog.unnest(w.ids), pg_catalog.unnest(w.tree_keys), pg_catalog.unnest(w.tiers),
                          pg_catalog.unnest(w.usage_counts), pg_catalog.unnest(w.ratings), pg_catalog.unnest(w.classes))
                 AS u (id, tree_key, tier, usage_count, rating, class);
        EXIT WHEN p_request.title_query IS NOT NULL OR (v_out.walk).all_matches
               OR (SELECT pg_catalog.count(*) FROM pg_catalog.unnest((v_out.walk).classes) AS c (class)
                    WHERE c.class <= (v_out.walk).done) > p_request.target;
        v_request := p_request;     -- fewer than T at hand up to the least class reached: walk with T itself
    END LOOP;
    RETURN v_out;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_gather(stepsync.search_request, uuid[], integer) IS
    'Internal: the matches stepsync._search_walk finds for a search in the library, on Citus gathered from every worker''s walk over its own shards (stepsync._search_local, one command a worker through stepsync.search_anchors), with the rows of each worker''s best matches when asked; stepsync._search_ranked takes the candidates from them (docs/contract.md §6.8, §11.4).';

REVOKE ALL ON FUNCTION stepsync._search_gather(stepsync.search_request, uuid[], integer) FROM PUBLIC;
