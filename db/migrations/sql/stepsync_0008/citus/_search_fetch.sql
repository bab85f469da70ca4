-- stepsync._search_fetch: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_fetch(
    p_sql text,
    p_cached boolean,
    p_request stepsync.search_request,
    p_cond pg_catalog.tsquery,
    p_after integer,
    p_sampled boolean,
    p_cap integer
)
RETURNS TABLE (n bigint, ids uuid[], keys uuid[], tiers integer[], usage_counts integer[], ratings numeric[],
               classes integer[])
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._search_fetch(p_sql, p_cached, p_request, p_cond, p_after, p_sampled, p_cap): runs one
-- statement of stepsync._search_walk, p_sql, and returns its one row: the rows it looked at (n) and the
-- matches (id, tree_key, tier, usage_count, rating, popularity class, as parallel arrays). Its
-- parameters: $1-$11 from the search p_request (the query on the title, on title and group label, with
-- the instructions; the user, the account, whether stepsync's row-level security holds, the viewer and
-- the viewer's account; the step type and group label filters; the query), $12 p_cond (the index
-- condition), $13 p_after (the last class fetched), $14 p_sampled (class 13 fetched), $15 p_cap (a row
-- cap), $16 the source flow of p_request.
--
-- p_cached false: planned for its values, each time (EXECUTE ... USING). p_cached true (on a Citus
-- worker, stepsync._search_local): a prepared statement of the session (stepsync._prepared), planned
-- once: the same statement over a worker's sixteen shards takes 1.4-2.2 ms to plan and 0.4 ms to run
-- (measured, warm), and Citus keeps its connections to the workers from one search to the next.
-- Not granted to PUBLIC.
-- It runs the text it is given: texts that stepsync's own functions build from constants, catalog names
-- (regclass) and %I, never a client's words. So plpgsql_check's check of EXECUTE's text is off here:
-- @plpgsql_check_options: security_warnings = false
DECLARE
    r stepsync.search_request := p_request;
    v_name text;
BEGIN
    IF NOT p_cached THEN
        EXECUTE p_sql
           INTO n, ids, keys, tiers, usage_counts, ratings, classes
          USING r.query_a, r.query_ab, r.query_abc, r.user_id, r.account_id, r.enforce, r.viewer, r.viewer_account,
                r.step_type, r.group_label, r.query, p_cond, p_after, p_sampled, p_cap, r.source_tree_id;
        RETURN NEXT;
        RETURN;
    END IF;
    v_name := stepsync._prepared(p_sql, 'pg_catalog.tsquery, pg_catalog.tsquery, pg_catalog.tsquery, uuid, uuid,'
                                        ' boolean, uuid, uuid, text, text, pg_catalog.tsquery, pg_catalog.tsquery,'
                                        ' integer, boolean, integer, uuid');
    EXECUTE pg_catalog.format('EXECUTE %I (%L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L)', v_name,
                              r.query_a, r.query_ab, r.query_abc, r.user_id, r.account_id, r.enforce, r.viewer,
                              r.viewer_account, r.step_type, r.group_label, r.query, p_cond, p_after, p_sampled,
                              p_cap, r.source_tree_id)
       INTO n, ids, keys, tiers, usage_counts, ratings, classes;
    RETURN NEXT;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_fetch(text, boolean, stepsync.search_request, pg_catalog.tsquery, integer, boolean, integer) IS
    'Internal: runs one statement of stepsync._search_walk with the search''s parameters, planned for its values or (on a Citus worker) as a prepared statement of the session, and returns the matches it found (docs/contract.md §6.8, §11.4).';

REVOKE ALL ON FUNCTION stepsync._search_fetch(text, boolean, stepsync.search_request, pg_catalog.tsquery, integer, boolean, integer) FROM PUBLIC;
