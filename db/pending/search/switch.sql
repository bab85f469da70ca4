-- Search, phase 5 (in a transaction): search_steps gains the complete column,
-- so the old function must go before the new one is created (CREATE OR
-- REPLACE cannot change a return type; it had PostgreSQL's default EXECUTE
-- for PUBLIC, as the new one has). After this file, create from db/functions:
--   _search_document.sql (its new definition: the old expression index is
--   not used any more and is dropped in phase 6),
--   search_steps.sql
-- and run ANALYZE public.step_library (search_steps reads the column's
-- statistics to tell rare terms from common ones; autovacuum keeps them).
DROP FUNCTION IF EXISTS stepsync.search_steps(uuid, text, text, text, uuid, integer);
