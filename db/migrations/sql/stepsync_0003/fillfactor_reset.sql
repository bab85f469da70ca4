-- Undoes fillfactor.sql (downgrading stepsync_0003): on the standalone path, a fillfactor of 80 goes back
-- to the default. (A standalone table whose owner had set exactly 80 before stepsync_0003 loses it too.)
DO $stepsync$
BEGIN
    IF pg_catalog.obj_description(pg_catalog.to_regclass('public.stepsync_version'), 'pg_class')
           = 'stepsync''s migration history (alembic). standalone: stepsync created accounts, users, trees and step_library.'
       AND EXISTS (SELECT FROM pg_catalog.pg_class AS c, pg_catalog.pg_options_to_table(c.reloptions) AS o
                    WHERE c.oid = 'public.step_library'::pg_catalog.regclass
                      AND o.option_name = 'fillfactor' AND o.option_value = '80') THEN
        ALTER TABLE public.step_library RESET (fillfactor);
    END IF;
END;
$stepsync$;
