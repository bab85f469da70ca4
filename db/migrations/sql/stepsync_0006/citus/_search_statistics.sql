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
-- With the caller's rights: pg_stats shows a table's statistics only to a role that may read it.
-- PL/pgSQL, not SQL: its plans are kept for the session (an SQL function plans pg_stats, a view of
-- several joins, at every call: measured 1.2 ms a call against 0.06 ms); one look-up of pg_stats.
#variable_conflict use_column
BEGIN
    SELECT st.most_common_elems::text::text[], st.most_common_elem_freqs
      INTO most_common_elems, most_common_elem_freqs
      FROM pg_catalog.pg_stats AS st
     WHERE st.schemaname = 'stepsync' AND st.tablename = 'search_sample' AND st.attname = 'search_vector';
    reltuples := (SELECT z.library_rows FROM stepsync.search_sample_size AS z);
    RETURN NEXT;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_statistics() IS
    'Internal (Citus): the statistics stepsync._search_ranked estimates from, from the sample stepsync.refresh_search_statistics() keeps (docs/contract.md §11).';
