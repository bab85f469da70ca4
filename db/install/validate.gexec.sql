-- After the backfill: what stepsync added NOT VALID is validated, outside a transaction block and
-- under SHARE UPDATE EXCLUSIVE, which does not block the application's reads and writes (a generator:
-- see unique_key.gexec.sql).
--  * (active synced rows whose flow is gone were retired already, by search_fill.gexec.sql's first
--    statement, which step_library_synced_active_check requires;)
--  * each constraint of step_library that stepsync added and that is not yet valid;
--  * an adopted, nullable is_flow_synced becomes NOT NULL through its validated CHECK (no scan under
--    the table lock); the CHECK stays, as the record that `uninstall --drop-columns` undoes it.
SELECT q.statement
  FROM (SELECT 2 AS ord, 'ALTER TABLE public.step_library VALIDATE CONSTRAINT '
                          || pg_catalog.quote_ident(c.conname) AS statement
          FROM pg_catalog.pg_constraint AS c
         WHERE c.conrelid = 'public.step_library'::pg_catalog.regclass AND NOT c.convalidated
           AND c.conname IN ('step_library_source_tree_id_fkey', 'step_library_forked_from_id_fkey',
                             'step_library_source_check', 'step_library_synced_node_check',
                             'step_library_synced_active_check', 'step_library_is_flow_synced_not_null')
        UNION ALL
        SELECT 3, 'ALTER TABLE public.step_library ALTER COLUMN is_flow_synced SET NOT NULL'
         WHERE EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                        WHERE c.conrelid = 'public.step_library'::pg_catalog.regclass
                          AND c.conname = 'step_library_is_flow_synced_not_null')
           AND NOT (SELECT a.attnotnull FROM pg_catalog.pg_attribute AS a
                     WHERE a.attrelid = 'public.step_library'::pg_catalog.regclass AND a.attname = 'is_flow_synced')
       ) AS q
 ORDER BY q.ord
