-- stepsync.search_found (Citus): what the workers found for one search (docs/contract.md §11.4): the walk's
-- matches (stepsync.search_walk) and the rows of the best of them, which a worker reads in the same command
-- (stepsync._search_local). Created once; kept when it exists.
DO $stepsync$
BEGIN
    IF pg_catalog.to_regtype('stepsync.search_found') IS NULL THEN
        CREATE TYPE stepsync.search_found AS (
            walk stepsync.search_walk,
            rows stepsync.search_row[]
        );
    END IF;
    COMMENT ON TYPE stepsync.search_found IS
        'Internal (Citus): what a search found on the workers: the walk''s matches (walk) and the rows of the best of them, read with them (rows).';
END;
$stepsync$;
