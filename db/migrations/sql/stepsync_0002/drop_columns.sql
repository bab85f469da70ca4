-- `stepsync uninstall --drop-columns` (and a downgrade past the install): after uninstall.sql,
-- leave step_library as it was before stepsync. Everything stepsync added carries a comment that
-- starts with "stepsync:" (columns.sql); what the application had already (the seed design's sync
-- columns, its own keys) is left alone.
--  * When stepsync added is_flow_synced, the synced rows are deleted first: without the column
--    they would come back as hand-made rows (docs/contract.md §5.10). Hand-made rows and forks stay.
--  * An adopted is_flow_synced that stepsync made NOT NULL is nullable again.
--  * Then the constraints, indexes and columns stepsync added are dropped.
DO $stepsync$
DECLARE
    v_lib constant pg_catalog.regclass := 'public.step_library'::pg_catalog.regclass;
    v_name text;
BEGIN
    IF pg_catalog.col_description(v_lib, (SELECT a.attnum FROM pg_catalog.pg_attribute AS a
                                           WHERE a.attrelid = v_lib AND a.attname = 'is_flow_synced'
                                             AND NOT a.attisdropped)) LIKE 'stepsync:%' THEN
        DELETE FROM public.step_library WHERE is_flow_synced;
    END IF;
    -- An adopted is_flow_synced that stepsync made NOT NULL (columns.sql) becomes nullable again.
    IF pg_catalog.obj_description((SELECT c.oid FROM pg_catalog.pg_constraint AS c
                                    WHERE c.conrelid = v_lib AND c.conname = 'step_library_is_flow_synced_not_null'),
                                   'pg_constraint') LIKE 'stepsync:%' THEN
        ALTER TABLE public.step_library ALTER COLUMN is_flow_synced DROP NOT NULL;
    END IF;
    FOR v_name IN
        SELECT c.conname FROM pg_catalog.pg_constraint AS c
         WHERE c.conrelid = v_lib AND pg_catalog.obj_description(c.oid, 'pg_constraint') LIKE 'stepsync:%'
         ORDER BY c.contype = 'u', c.conname     -- foreign keys and checks before the unique key
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE public.step_library DROP CONSTRAINT %I', v_name);
    END LOOP;
    FOR v_name IN
        SELECT i.indexrelid::pg_catalog.regclass::text FROM pg_catalog.pg_index AS i
         WHERE i.indrelid = v_lib AND pg_catalog.obj_description(i.indexrelid, 'pg_class') LIKE 'stepsync:%'
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint AS c WHERE c.conindid = i.indexrelid)
    LOOP
        EXECUTE pg_catalog.format('DROP INDEX %s', v_name);
    END LOOP;
    FOR v_name IN
        SELECT a.attname FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid = v_lib AND a.attnum > 0 AND NOT a.attisdropped
           AND pg_catalog.col_description(v_lib, a.attnum) LIKE 'stepsync:%'
         ORDER BY a.attnum
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE public.step_library DROP COLUMN %I', v_name);
    END LOOP;
END;
$stepsync$;
