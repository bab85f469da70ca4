-- stepsync.tg_step_library__check_marker(): BEFORE ... FOR EACH STATEMENT trigger function on
-- public.step_library (trigger t04_check_marker): only the sync may write under its marker.
CREATE OR REPLACE FUNCTION stepsync.tg_step_library__check_marker()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.sync_writing = 'on' lets a write skip the read-only guard (stepsync.tg_step_library__guard);
-- only the sync may do that. Any session may SET the marker, so this checks, once per statement and
-- before any row is touched, that a statement made under the marker runs as the role that owns the
-- sync: the owner of schema stepsync (the tables' owner, who installed it) or of step_library. A
-- client only is that role inside the sync's SECURITY DEFINER functions. Anyone else gets 42501.
-- (Comparing with the table's owner alone broke publishing when a superuser or deploy role
-- installed stepsync, or when the table later changed owner.)
BEGIN
    IF TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'STATEMENT' THEN
        RAISE EXCEPTION 'stepsync.tg_step_library__check_marker must be a BEFORE statement trigger, not % %',
            TG_WHEN, TG_LEVEL
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace AS n
                    WHERE n.nspname = 'stepsync' AND n.nspowner = pg_catalog.to_regrole(current_user)::oid)
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c
                        WHERE c.oid = TG_RELID AND c.relowner = pg_catalog.to_regrole(current_user)::oid) THEN
        RAISE EXCEPTION 'stepsync.sync_writing is reserved for the sync'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('This session set stepsync.sync_writing = on, but %s does not own'
                                             ' the sync.', current_user),
                  HINT = 'RESET stepsync.sync_writing. Synced library steps are written by publishing flows.';
    END IF;
    RETURN NULL;
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_step_library__check_marker() IS
    'Trigger function: refuses (42501) any write to step_library made under stepsync.sync_writing = on by anyone but the owner (the sync).';

REVOKE ALL ON FUNCTION stepsync.tg_step_library__check_marker() FROM PUBLIC;
