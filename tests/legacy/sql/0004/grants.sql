-- Revision 0004: what clients get. USAGE on schema stepsync, so that they can
-- call the functions meant for them (preview, visible_steps, fork_step,
-- search_steps; these keep PostgreSQL's default EXECUTE for PUBLIC and run
-- with the caller's rights, as do the pure helpers they call). Everything that
-- writes the library with the sync's rights (_sync, _retire, sync_tree, the
-- trigger functions) has EXECUTE revoked from PUBLIC in its own file.
-- Tables and the view are granted by the DBA to the application's roles;
-- nothing here grants table access.
GRANT USAGE ON SCHEMA stepsync TO PUBLIC;
