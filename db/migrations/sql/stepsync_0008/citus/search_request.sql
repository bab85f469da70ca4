-- stepsync.search_request (Citus): one search as stepsync._search_ranked hands it to the walk over the
-- library (stepsync._search_gather, stepsync._search_walk; docs/contract.md §6.8, §11.4): the query
-- parsed, the caller's audience, the target and the statistics the walk estimates from; or the title
-- rule's fetch. Created once; kept when it exists.
DO $stepsync$
BEGIN
    IF pg_catalog.to_regtype('stepsync.search_request') IS NULL THEN
        CREATE TYPE stepsync.search_request AS (
            user_id uuid,
            account_id uuid,
            query pg_catalog.tsquery,
            query_a pg_catalog.tsquery,
            query_ab pg_catalog.tsquery,
            query_abc pg_catalog.tsquery,
            step_type text,
            group_label text,
            source_tree_id uuid,
            target bigint,
            enforce boolean,
            viewer uuid,
            viewer_account uuid,
            most_common_elems text[],
            most_common_elem_freqs real[],
            reltuples double precision,
            estimate double precision,
            title_query pg_catalog.tsquery,
            title_after integer,
            title_sampled boolean
        );
    END IF;
    COMMENT ON TYPE stepsync.search_request IS
        'Internal: one search as stepsync._search_ranked hands it to stepsync._search_gather and stepsync._search_walk: the query parsed (whole, on the title, on title and group label, with the instructions), the user and account it is for, the filters, the target T, the row-level security viewer, and the statistics (or the test setting stepsync.search_estimate) the walk chooses its way by; with title_query, the title rule''s fetch: the visible matches on the title alone of the classes after title_after (class 13 left out when title_sampled).';
END;
$stepsync$;
