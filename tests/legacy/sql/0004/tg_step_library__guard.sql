-- stepsync.tg_step_library__guard(): BEFORE INSERT / UPDATE / DELETE row
-- trigger function on public.step_library: synced rows are read-only to
-- everyone but the sync (SPEC §6.1). It raises 42501 before any constraint is
-- checked, so a client learns that the row is read-only, not which CHECK failed.
--
-- The sync's own writes never get here: they run with stepsync.sync_writing =
-- 'on' (set by stepsync._sync and _retire), which the triggers' WHEN clauses
-- test, so a publish of thousands of entries pays no call per row. A client
-- that sets the marker itself is stopped by stepsync.tg_step_library__check_marker
-- before its statement touches a row (it is not the owner).
-- For everyone else:
--  * INSERT: may not create a row with is_flow_synced or a source column set;
--  * UPDATE of a synced row: may change usage_count, rating, rating_count and
--    updated_at only (an ORM rewriting unchanged values passes). The foreign
--    key's ON DELETE SET NULL (which runs as the owner, from the trigger that
--    deletes the flow) may null source_tree_id of a retired row;
--  * UPDATE of a hand-made row: may not make it synced or give it a source;
--  * DELETE: may not delete an active synced row (retired ones may go).
-- The triggers' WHEN clauses also keep hand-made rows and forks away from it.
CREATE OR REPLACE FUNCTION stepsync.tg_step_library__guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_owner boolean;
    v_changed text;
BEGIN
    IF TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW' THEN
        RAISE EXCEPTION 'stepsync.tg_step_library__guard must be a BEFORE row trigger, not % %', TG_WHEN, TG_LEVEL
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.is_flow_synced OR NEW.source_tree_id IS NOT NULL OR NEW.source_node_id IS NOT NULL THEN
            RAISE EXCEPTION 'only the sync may create synced library steps'
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'The new row has is_flow_synced = true or source_tree_id/source_node_id set.',
                      HINT = 'Publish a flow to add its steps, insert a hand-made step with is_flow_synced = false'
                             ' and no source columns, or fork a step with stepsync.fork_step(step_id, user_id).';
        END IF;
        RETURN NEW;
    END IF;

    IF TG_OP = 'DELETE' THEN
        IF OLD.is_flow_synced AND OLD.is_active THEN
            RAISE EXCEPTION 'library step % is managed by flow % and cannot be deleted while it is active',
                OLD.id, OLD.source_tree_id
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Its flow owns it: deactivate, archive or delete the flow to retire it (retired steps may be'
                             ' deleted), or fork it with stepsync.fork_step(step_id, user_id) to get your own copy.';
        END IF;
        RETURN OLD;
    END IF;

    -- UPDATE
    IF NOT OLD.is_flow_synced THEN
        IF NEW.is_flow_synced OR NEW.source_tree_id IS NOT NULL OR NEW.source_node_id IS NOT NULL THEN
            RAISE EXCEPTION 'library step % is hand-made and cannot be turned into a synced step', OLD.id
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'The update sets is_flow_synced = true or source_tree_id/source_node_id.',
                      HINT = 'Only the sync creates synced steps: publish a flow that contains the step.';
        END IF;
        RETURN NEW;
    END IF;
    IF (NEW.id, NEW.title, NEW.step_type, NEW.content, NEW.visibility, NEW.created_by, NEW.account_id,
        NEW.is_active, NEW.created_at, NEW.source_tree_id, NEW.source_node_id, NEW.is_flow_synced,
        NEW.last_synced_at, NEW.forked_from_id)
       IS NOT DISTINCT FROM
       (OLD.id, OLD.title, OLD.step_type, OLD.content, OLD.visibility, OLD.created_by, OLD.account_id,
        OLD.is_active, OLD.created_at, OLD.source_tree_id, OLD.source_node_id, OLD.is_flow_synced,
        OLD.last_synced_at, OLD.forked_from_id) THEN
        RETURN NEW;  -- usage_count, rating, rating_count, updated_at: the client's to change
    END IF;
    v_owner := (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = TG_RELID)
               = pg_catalog.to_regrole(current_user)::oid;
    IF v_owner AND pg_catalog.pg_trigger_depth() > 1 AND NOT OLD.is_active
       AND OLD.source_tree_id IS NOT NULL AND NEW.source_tree_id IS NULL
       AND (NEW.id, NEW.title, NEW.step_type, NEW.content, NEW.visibility, NEW.created_by, NEW.account_id,
            NEW.is_active, NEW.created_at, NEW.source_node_id, NEW.is_flow_synced, NEW.last_synced_at,
            NEW.forked_from_id)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.title, OLD.step_type, OLD.content, OLD.visibility, OLD.created_by, OLD.account_id,
            OLD.is_active, OLD.created_at, OLD.source_node_id, OLD.is_flow_synced, OLD.last_synced_at,
            OLD.forked_from_id) THEN
        RETURN NEW;  -- the foreign key's ON DELETE SET NULL, after the flow's entries were retired
    END IF;
    SELECT pg_catalog.string_agg(n.key, ', ' ORDER BY n.key) INTO v_changed
      FROM pg_catalog.jsonb_each(pg_catalog.to_jsonb(NEW)) AS n
      JOIN pg_catalog.jsonb_each(pg_catalog.to_jsonb(OLD)) AS o ON o.key = n.key
     WHERE n.value IS DISTINCT FROM o.value
       AND n.key NOT IN ('usage_count', 'rating', 'rating_count', 'updated_at');
    RAISE EXCEPTION 'library step % is managed by flow % and is read-only', OLD.id, OLD.source_tree_id
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'The update changes ' || COALESCE(v_changed, 'nothing') || '; only usage_count, rating and'
                       ' rating_count may change.',
              HINT = 'Fork it with stepsync.fork_step(step_id, user_id) to get an editable copy,'
                     ' or change the flow and publish it again.';
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_step_library__guard() IS
    'Trigger function: synced library steps are read-only to everyone but the sync; usage_count, rating and rating_count stay writable (SPEC §6.1). Raises 42501.';

REVOKE ALL ON FUNCTION stepsync.tg_step_library__guard() FROM PUBLIC;
