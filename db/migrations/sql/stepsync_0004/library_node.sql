-- stepsync.library_node: one node of a flow as stepsync._nodes returns it: the entry it yields, or
-- the publish-check problem it has (docs/contract.md §3, §4). Created once; kept when it exists.
DO $stepsync$
BEGIN
    IF pg_catalog.to_regtype('stepsync.library_node') IS NULL THEN
        CREATE TYPE stepsync.library_node AS (
            ord bigint,
            path text,
            source_node_id text,
            title text,
            step_type text,
            content jsonb,
            visibility text,
            problem text,
            problem_path text,
            hint text
        );
    END IF;
    COMMENT ON TYPE stepsync.library_node IS
        'Internal: one node of a flow as stepsync._nodes returns it: the entry it yields, or the publish-check problem it has.';
END;
$stepsync$;
