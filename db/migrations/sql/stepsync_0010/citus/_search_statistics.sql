-- stepsync._search_statistics() on Citus: the distributed variant of db/functions/_search_statistics.sql
-- (docs/contract.md §11): the same answer, from the sample stepsync.refresh_search_statistics() keeps.
-- The explanation is in the body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync._search_statistics()
RETURNS TABLE (most_common_elems text[], most_common_elem_freqs real[], reltuples double precision)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- On Citus the coordinator's public.step_library holds no rows and no statistics, so stepsync._search_ranked
-- would take every term for rare (it chooses how to find the matches from these figures, never what it
-- returns: the rows are the same, only slower). Here the figures come from stepsync.search_sample, a
-- sample of the library's search vectors that stepsync.refresh_search_statistics() takes from the shards
-- and ANALYZEs: the shares of its most common lexemes, and the library's row count when it was taken.
-- Never refreshed: no figures, as on an unanalyzed table.
-- Since stepsync_0010 the figures are read from stepsync.search_sample_size, where the refresh keeps a copy
-- of the sample's pg_stats (stepsync._search_statistics_keep): one row, instead of pg_stats (a view of
-- several joins whose 1,000 elements come as text: about 0.5 ms a search).
#variable_conflict use_column
BEGIN
    SELECT z.most_common_elems, z.most_common_elem_freqs, z.library_rows
      INTO most_common_elems, most_common_elem_freqs, reltuples
      FROM stepsync.search_sample_size AS z;
    RETURN NEXT;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_statistics() IS
    'Internal (Citus): the statistics stepsync._search_ranked estimates from, from the sample stepsync.refresh_search_statistics() keeps (docs/contract.md §11).';
