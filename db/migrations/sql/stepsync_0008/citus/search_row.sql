-- stepsync.search_row (Citus): one row of stepsync.search_steps's result but its rank, as
-- stepsync._search_rows reads it on a worker (docs/contract.md §11.4). Created once; kept when it exists.
DO $stepsync$
BEGIN
    IF pg_catalog.to_regtype('stepsync.search_row') IS NULL THEN
        CREATE TYPE stepsync.search_row AS (
            id uuid,
            title text,
            step_type text,
            content jsonb,
            visibility text,
            created_by uuid,
            account_id uuid,
            usage_count integer,
            rating numeric,
            rating_count integer,
            is_active boolean,
            created_at timestamptz,
            updated_at timestamptz,
            source_tree_id uuid,
            source_node_id varchar,
            is_flow_synced boolean,
            last_synced_at timestamptz,
            forked_from_id uuid,
            source_tree_name text
        );
    END IF;
    COMMENT ON TYPE stepsync.search_row IS
        'Internal (Citus): one row of stepsync.search_steps''s result but its rank and completeness, as stepsync._search_rows reads it on a worker.';
END;
$stepsync$;
