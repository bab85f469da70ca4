-- stepsync.search_gathered (Citus): what the workers found for one search (docs/contract.md §11.4), as
-- stepsync._search_gather returns it: the walk's matches (stepsync.search_walk) and the rows of the best of
-- them, which a worker reads in the same command (stepsync._search_local), each as its id and its text (a
-- stepsync.search_row's), turned back into a row only for the rows a search returns. Since stepsync_0010
-- (before, stepsync.search_found held the rows as rows). Created once; kept when it exists.
DO $stepsync$
BEGIN
    IF pg_catalog.to_regtype('stepsync.search_gathered') IS NULL THEN
        CREATE TYPE stepsync.search_gathered AS (
            walk stepsync.search_walk,
            found_ids uuid[],
            found_rows text[]
        );
    END IF;
    COMMENT ON TYPE stepsync.search_gathered IS
        'Internal (Citus): what a search found on the workers: the walk''s matches (walk) and the rows of the best of them, read with them: their ids (found_ids) and each row''s text (found_rows).';
END;
$stepsync$;
