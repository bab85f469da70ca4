-- Before the install (re)creates its triggers: how each of stepsync's triggers is enabled now.
-- CREATE OR REPLACE TRIGGER resets a trigger to plain ENABLE; a logical-replication subscriber that
-- derives its own library runs them ENABLE ALWAYS (`stepsync replica --enable-always`), and an
-- upgrade must not switch that off behind its back. triggers_restore.sql puts the states back.
CREATE TEMPORARY TABLE stepsync_trigger_state ON COMMIT DROP AS
SELECT tg.tgrelid::pg_catalog.regclass::text AS rel, tg.tgname::text AS name, tg.tgenabled AS enabled
  FROM pg_catalog.pg_trigger AS tg
  JOIN pg_catalog.pg_proc AS p ON p.oid = tg.tgfoid
 WHERE NOT tg.tgisinternal AND p.pronamespace = 'stepsync'::pg_catalog.regnamespace
   AND tg.tgenabled <> 'O';
