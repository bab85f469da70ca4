-- stepsync.tg_set_updated_at(): BEFORE UPDATE row trigger function that keeps
-- updated_at current on public.trees and public.step_library (docs/contract.md §5.9).
-- Triggers: step_library t10_set_updated_at (no argument), trees
-- t10_set_updated_at ('skip tree_structure') and trees
-- t11_set_updated_at_structure ('tree_structure'). The explanation is in the
-- body, so that \sf shows it.
CREATE OR REPLACE FUNCTION stepsync.tg_set_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- An UPDATE that changes the row sets updated_at = now(), whoever makes it
-- (clients, the sync's own rewrites and retirements); an UPDATE that writes
-- every column back with its old value (as ORMs do) changes nothing, not even
-- updated_at (docs/contract.md §5.9).
--
-- What is compared depends on the trigger's argument:
--  * none (step_library): the whole row, NEW IS DISTINCT FROM OLD;
--  * 'skip tree_structure' (trees t10): the whole row but tree_structure. A
--    flow's document can be megabytes: comparing it means fetching it from
--    TOAST and decompressing it, which would make a rename or a status re-set
--    cost more than the UPDATE itself. The copies below hold TOAST pointers,
--    not the document, and the compared copies have tree_structure set to
--    null;
--  * 'tree_structure' (trees t11, an UPDATE OF tree_structure trigger, so it
--    only fires when the statement sets the column, and only when t10 found
--    the rest of the row unchanged): tree_structure alone. So the document is
--    compared only when the statement set it and nothing else changed. When
--    it equals the stored one (jsonb equality: the same members and values,
--    numbers compared by value, so 1.0 equals 1.00), the row keeps the stored
--    value itself: the update then writes no new TOAST copy of the document
--    (re-sending an unchanged flow, as a full-row PUT does, costs no more than
--    the same UPDATE without our triggers), and the stored text stays as it
--    was, like updated_at.
-- Runs as the writer: it only touches the row being written.
DECLARE
    v_new record;
    v_old record;
BEGIN
    IF TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW' OR TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'stepsync.tg_set_updated_at must be a BEFORE UPDATE row trigger, not % % %',
            TG_WHEN, TG_LEVEL, TG_OP
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    IF TG_NARGS = 0 THEN
        IF NEW IS DISTINCT FROM OLD THEN
            NEW.updated_at := pg_catalog.now();
        END IF;
    ELSIF TG_ARGV[0] = 'skip tree_structure' THEN
        v_new := NEW;
        v_old := OLD;
        v_new.tree_structure := NULL;
        v_old.tree_structure := NULL;
        IF v_new IS DISTINCT FROM v_old THEN
            NEW.updated_at := pg_catalog.now();
        END IF;
    ELSIF TG_ARGV[0] = 'tree_structure' THEN
        IF NEW.tree_structure IS DISTINCT FROM OLD.tree_structure THEN
            NEW.updated_at := pg_catalog.now();
        ELSE
            NEW.tree_structure := OLD.tree_structure;   -- the stored value, not a new copy of it
        END IF;
    ELSE
        RAISE EXCEPTION 'stepsync.tg_set_updated_at: unknown argument %', TG_ARGV[0]
            USING ERRCODE = 'trigger_protocol_violated',
                  HINT = 'Give no argument, ''skip tree_structure'' or ''tree_structure''.';
    END IF;
    RETURN NEW;
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_set_updated_at() IS
    'Trigger function: sets updated_at = now() on every UPDATE that changes the row (docs/contract.md §5.9); on trees the document is compared only when the statement sets it and the rest of the row is unchanged, and an equal document keeps the stored value.';

REVOKE ALL ON FUNCTION stepsync.tg_set_updated_at() FROM PUBLIC;
