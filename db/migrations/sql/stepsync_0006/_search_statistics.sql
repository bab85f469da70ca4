-- stepsync._search_statistics(): what stepsync._search_ranked estimates a query's matches from. The
-- explanation is in the body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync._search_statistics()
RETURNS TABLE (most_common_elems text[], most_common_elem_freqs real[], reltuples double precision)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- The planner's statistics of public.step_library: the most common lexemes of search_vector with the
-- share of rows each is in, and the table's estimated row count (ANALYZE and autovacuum keep them).
-- stepsync._search_ranked reads them to choose how to find a query's matches, never what it returns.
-- (On Citus the table on the coordinator holds no rows and no statistics: the distributed variant of
-- this function reads a sample instead, docs/contract.md §11.)
-- With the caller's rights: pg_stats shows a table's statistics only to a role that may read it.
-- PL/pgSQL, not SQL: its plans are kept for the session (an SQL function plans pg_stats, a view of
-- several joins, at every call: measured 1.2 ms a call against 0.06 ms); one look-up of pg_stats.
#variable_conflict use_column
BEGIN
    SELECT st.most_common_elems::text::text[], st.most_common_elem_freqs
      INTO most_common_elems, most_common_elem_freqs
      FROM pg_catalog.pg_stats AS st
     WHERE st.schemaname = 'public' AND st.tablename = 'step_library' AND st.attname = 'search_vector';
    reltuples := (SELECT GREATEST(c.reltuples, 0)::double precision FROM pg_catalog.pg_class AS c
                   WHERE c.oid = 'public.step_library'::pg_catalog.regclass);
    RETURN NEXT;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_statistics() IS
    'Internal: the statistics stepsync._search_ranked estimates from (most common lexemes of search_vector, their shares, the row count).';
