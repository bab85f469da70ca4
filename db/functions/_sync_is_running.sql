-- stepsync._sync_is_running: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._sync_is_running()
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._sync_is_running(): true inside stepsync's own work, as its stepsync_sync policies
-- (docs/contract.md §12.1) see it: the sync's marker is set (stepsync.sync_writing = 'on', by
-- stepsync._sync, stepsync._retire and the functions that read as the sync) AND the current role
-- holds CREATE on schema stepsync (the tables' owner, as whom the SECURITY DEFINER sync runs, a
-- member of it, or a superuser): the same two conditions as the read-only guards' WHEN clauses.
-- A client may set the marker, but inside its own statement current_user is the client, so it never
-- gets through a stepsync_sync policy.
--
-- The policies call it as an initplan, (SELECT stepsync._sync_is_running()), once a statement.
SELECT pg_catalog.current_setting('stepsync.sync_writing', true) OPERATOR(pg_catalog.=) 'on'
       AND pg_catalog.has_schema_privilege('stepsync'::pg_catalog.regnamespace, 'CREATE')
$function$;

COMMENT ON FUNCTION stepsync._sync_is_running() IS
    'Whether stepsync''s own work is running in this statement (its marker set, as a role that owns stepsync): what its stepsync_sync policies let through (docs/contract.md §12.1).';
