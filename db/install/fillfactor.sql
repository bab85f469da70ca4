-- Room on each page of public.step_library for a new row version, so that bumping usage_count, rating
-- or rating_count is a HOT update (no index covers those columns; an update that finds no room on its
-- page must write a new index entry in every index, the GIN index included). Only on the standalone path
-- (stepsync created the tables: the comment of public.stepsync_version says so) and only while the table
-- has no fillfactor of its own: an application's table keeps its storage settings (docs/operating.md
-- says what to set). 80 leaves about 1.6 kB a page, one more version of a typical entry; it applies to
-- pages written from now on (VACUUM FULL or pg_repack rewrites the others). SET (fillfactor) takes only a
-- SHARE UPDATE EXCLUSIVE lock: reads and writes go on.
DO $stepsync$
BEGIN
    IF pg_catalog.obj_description(pg_catalog.to_regclass('public.stepsync_version'), 'pg_class')
           = 'stepsync''s migration history (alembic). standalone: stepsync created accounts, users, trees and step_library.'
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c, pg_catalog.pg_options_to_table(c.reloptions) AS o
                        WHERE c.oid = 'public.step_library'::pg_catalog.regclass AND o.option_name = 'fillfactor') THEN
        ALTER TABLE public.step_library SET (fillfactor = 80);
    END IF;
END;
$stepsync$;
