-- The unique index built by unique_key.gexec.sql becomes the constraint step_library_source_key
-- (a catalog change under a short lock: the index is already built and valid). An application's own
-- unique constraint or index on the same columns is left as it is.
DO $stepsync$
BEGIN
    IF pg_catalog.to_regclass('public.step_library_source_key') IS NOT NULL
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                        WHERE c.conindid = pg_catalog.to_regclass('public.step_library_source_key')) THEN
        ALTER TABLE public.step_library
            ADD CONSTRAINT step_library_source_key UNIQUE USING INDEX step_library_source_key;
        COMMENT ON CONSTRAINT step_library_source_key ON public.step_library IS
            'stepsync: one entry per node of a flow: the key the sync upserts on.';
    END IF;
END;
$stepsync$;
