-- Remove what stepsync added that the application's rows do not live in (docs/contract.md §9.5):
-- its triggers on trees and step_library, the view public.step_library_entries, its search
-- column and index, and schema stepsync with every function and type in it. The application's tables, their
-- rows and the sync columns, keys and constraints stay (drop_columns.sql removes those), so
-- installing again later finds every entry with its id, usage count and rating.
--
-- Refuses, naming them, when objects of the application depend on stepsync's (a view over
-- step_library_entries, a function calling stepsync.search_steps): those would be dropped too.
DO $stepsync$
DECLARE
    v_dependents text;
BEGIN
    SELECT pg_catalog.string_agg(DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), ', ')
      INTO v_dependents
      FROM pg_catalog.pg_depend AS d
     WHERE d.deptype = 'n'
       AND (   (d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                AND d.refobjid IN (SELECT p.oid FROM pg_catalog.pg_proc AS p
                                    WHERE p.pronamespace = 'stepsync'::pg_catalog.regnamespace))
            OR (d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                AND d.refobjid = pg_catalog.to_regclass('public.step_library_entries'))
            OR (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass
                AND d.refobjid IN (SELECT t.oid FROM pg_catalog.pg_type AS t
                                    WHERE t.typnamespace = 'stepsync'::pg_catalog.regnamespace)))
       AND NOT (d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                AND d.objid IN (SELECT p.oid FROM pg_catalog.pg_proc AS p
                                 WHERE p.pronamespace = 'stepsync'::pg_catalog.regnamespace))
       AND NOT (d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                AND d.objid IN (SELECT t.oid FROM pg_catalog.pg_type AS t
                                 WHERE t.typnamespace = 'stepsync'::pg_catalog.regnamespace))
       AND NOT (d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
                AND d.objid IN (SELECT tg.oid FROM pg_catalog.pg_trigger AS tg
                                 WHERE tg.tgfoid IN (SELECT p.oid FROM pg_catalog.pg_proc AS p
                                                      WHERE p.pronamespace = 'stepsync'::pg_catalog.regnamespace)))
       AND NOT (d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                AND d.objid IN (pg_catalog.to_regclass('public.step_library_search_idx')))
       AND NOT (d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                AND d.objid IN (SELECT r.oid FROM pg_catalog.pg_rewrite AS r
                                 WHERE r.ev_class = pg_catalog.to_regclass('public.step_library_entries')));
    IF v_dependents IS NOT NULL THEN
        RAISE EXCEPTION 'stepsync cannot be uninstalled: the application''s objects depend on it: %', v_dependents
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Drop or change them first; stepsync drops only its own objects.';
    END IF;
END;
$stepsync$;
-- Every trigger on trees and step_library that runs a stepsync function (the application's own
-- triggers stay), then the search index and the search column, which only stepsync keeps current
-- (a column left behind would go stale; installing again rebuilds it).
DO $stepsync$
DECLARE
    v_trigger record;
BEGIN
    FOR v_trigger IN
        SELECT tg.tgname, tg.tgrelid::pg_catalog.regclass AS rel
          FROM pg_catalog.pg_trigger AS tg
          JOIN pg_catalog.pg_proc AS p ON p.oid = tg.tgfoid
         WHERE NOT tg.tgisinternal AND p.pronamespace = 'stepsync'::pg_catalog.regnamespace
         ORDER BY 2, 1
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.rel);
    END LOOP;
    IF pg_catalog.col_description('public.step_library'::pg_catalog.regclass,
                                  (SELECT a.attnum FROM pg_catalog.pg_attribute AS a
                                    WHERE a.attrelid = 'public.step_library'::pg_catalog.regclass
                                      AND a.attname = 'search_vector' AND NOT a.attisdropped)) LIKE 'stepsync:%' THEN
        ALTER TABLE public.step_library DROP COLUMN search_vector;   -- its indexes go with it
    END IF;
END;
$stepsync$;
DO $stepsync$
BEGIN
    IF pg_catalog.to_regclass('public.step_library_search_idx') IS NOT NULL THEN
        DROP INDEX public.step_library_search_idx;   -- the expression index of stepsync before 0002
    END IF;
END;
$stepsync$;
-- The functions and the row type go with the schema; nothing outside it depends on them (checked above).
SET LOCAL client_min_messages = warning;  -- not one NOTICE per function dropped
DROP SCHEMA IF EXISTS stepsync CASCADE;
DROP VIEW IF EXISTS public.step_library_entries;
