-- The uninstall's Citus step: the delegated function's schema (db/citus/install/delegate.sql).
SET LOCAL client_min_messages = warning;
DROP SCHEMA IF EXISTS stepsync_citus CASCADE;
