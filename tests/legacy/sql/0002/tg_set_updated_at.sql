-- stepsync.tg_set_updated_at(): BEFORE UPDATE row trigger function that keeps
-- updated_at current (SPEC §5.9).
--
-- Fires on public.trees and public.step_library. An UPDATE that changes the row
-- gets updated_at = now(), whoever makes it (clients, the sync's own
-- retirements); an UPDATE that rewrites every column with its old value (as
-- ORMs do) changes nothing, not even updated_at. The row comparison stops at
-- the first differing column, so a rename never compares tree_structure.
-- Runs as the writer: it only touches the row being written.
CREATE OR REPLACE FUNCTION stepsync.tg_set_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW' OR TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'stepsync.tg_set_updated_at must be a BEFORE UPDATE row trigger, not % % %',
            TG_WHEN, TG_LEVEL, TG_OP
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := pg_catalog.now();
    END IF;
    RETURN NEW;
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_set_updated_at() IS
    'Trigger function: sets updated_at = now() on every UPDATE that changes the row (SPEC §5.9).';

REVOKE ALL ON FUNCTION stepsync.tg_set_updated_at() FROM PUBLIC;
