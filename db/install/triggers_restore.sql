-- After the install (re)created its triggers: each one that was ENABLE ALWAYS, ENABLE REPLICA or
-- DISABLE before is so again (see triggers_save.sql).
DO $stepsync$
DECLARE
    v_trigger record;
BEGIN
    FOR v_trigger IN SELECT s.rel, s.name, s.enabled FROM pg_temp.stepsync_trigger_state AS s ORDER BY 1, 2 LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s %s TRIGGER %I', v_trigger.rel,
                                  CASE v_trigger.enabled WHEN 'A' THEN 'ENABLE ALWAYS'
                                                         WHEN 'R' THEN 'ENABLE REPLICA'
                                                         ELSE 'DISABLE' END,
                                  v_trigger.name);
    END LOOP;
END;
$stepsync$;
