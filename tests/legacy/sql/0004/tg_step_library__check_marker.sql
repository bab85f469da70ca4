-- stepsync.tg_step_library__check_marker(): BEFORE ... FOR EACH STATEMENT
-- trigger function on public.step_library. stepsync.sync_writing = 'on' lets
-- a write skip the read-only guard (stepsync.tg_step_library__guard); only the
-- sync may do that. Any session may SET the marker, so this checks, once per
-- statement and before any row is touched, that a statement made under the
-- marker runs as the owner of step_library, which a client only does inside
-- the sync's SECURITY DEFINER functions. Anyone else gets 42501.
CREATE OR REPLACE FUNCTION stepsync.tg_step_library__check_marker()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'STATEMENT' THEN
        RAISE EXCEPTION 'stepsync.tg_step_library__check_marker must be a BEFORE statement trigger, not % %',
            TG_WHEN, TG_LEVEL
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    IF (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = TG_RELID)
       IS DISTINCT FROM pg_catalog.to_regrole(current_user)::oid THEN
        RAISE EXCEPTION 'stepsync.sync_writing is reserved for the sync'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('This session set stepsync.sync_writing = on, but %s is not the owner'
                                             ' of public.step_library.', current_user),
                  HINT = 'RESET stepsync.sync_writing. Synced library steps are written by publishing flows.';
    END IF;
    RETURN NULL;
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_step_library__check_marker() IS
    'Trigger function: refuses (42501) any write to step_library made under stepsync.sync_writing = on by anyone but the owner (the sync).';

REVOKE ALL ON FUNCTION stepsync.tg_step_library__check_marker() FROM PUBLIC;
