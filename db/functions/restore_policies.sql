-- stepsync.restore_policies: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync.restore_policies()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.restore_policies(): makes stepsync's row-level security policies what they should be
-- (docs/contract.md §12), dropping and creating each again (so a policy changed or dropped by hand
-- is repaired), and records their definitions in stepsync.row_security for
-- stepsync.check_row_security. Run by the install (every revision that changes them, and
-- `stepsync install` at the newest revision), and by stepsync.enable_row_security and
-- stepsync.disable_row_security. Returns how many policies stepsync has now. Only the owner of the
-- tables may run it; the application's own policies and row-level security flags are never touched,
-- but for the one flag stepsync itself turns on (below).
--
-- 1. stepsync_sync, on each of trees, step_library, users and accounts that the installing role owns
--    (trees and step_library always; the preflight checks it): PERMISSIVE, for every command and
--    every role, USING and WITH CHECK (SELECT stepsync._sync_is_running()). Where the application's
--    row-level security meets the sync (the table is forced, or the sync's role does not own it), its
--    policies OR this one: the sync reads and writes every row, so the library is the same as without
--    row-level security. A client never gets through it (stepsync._sync_is_running explains why).
--    Where row-level security is off it does nothing; it is there before the application turns it
--    on. (CREATE POLICY locks its table for a moment against readers too: the install's
--    lock_timeout and retries apply, as to every DDL of stepsync.)
-- 2. With a VIEWER set (stepsync.row_security.viewer), the library's rule (docs/contract.md §6.3)
--    as row-level security on step_library, for every role but the owner
--    (stepsync._exempt_from_row_security): stepsync enables row-level security on the table if it
--    was off (and records that it did), and adds stepsync_viewer, PERMISSIVE for every command
--    (true: whatever the application's own permissive policies allow, these restrictive ones then
--    decide), and four RESTRICTIVE policies:
--      stepsync_viewer_select  reads: the active rows the viewer may see (stepsync._may_see with
--                              stepsync.current_viewer and stepsync.current_viewer_account);
--      stepsync_viewer_insert  new rows: hand-made (is_flow_synced false), created by the viewer,
--                              with no account or the viewer's own;
--      stepsync_viewer_update  changes: only of rows the viewer sees, which the viewer still sees;
--                              of another user's row, only the counters (stepsync._may_change);
--      stepsync_viewer_delete  deletes: only of hand-made rows the viewer created (a synced row the
--                              viewer sees stays in reach, so that the read-only guard refuses its
--                              delete with 42501 rather than it vanishing from the DELETE unseen).
--    The read-only rule on synced rows (the guards) holds besides. Without a VIEWER these five go,
--    and so does the flag, if stepsync turned it on.
-- Each per-row condition calls the functions as initplans (SELECT ...): evaluated once a statement.
DECLARE
    c_sync constant text := '(SELECT stepsync._sync_is_running())';
    c_exempt constant text := '(SELECT stepsync._exempt_from_row_security(current_user))';
    c_viewer constant text := '(SELECT stepsync.current_viewer())';
    c_account constant text := '(SELECT stepsync.current_viewer_account())';
    c_sees constant text := 'stepsync._may_see(visibility, account_id, created_by, ' || c_viewer || ', ' || c_account || ')';
    v_viewer text;
    v_enabled_rls boolean;
    v_policies jsonb;
    v_table regclass;
    v_policy name;
    v_count integer;
BEGIN
    IF NOT pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class AS c
                                    WHERE c.oid = 'public.step_library'::regclass), 'USAGE') THEN
        RAISE EXCEPTION 'only the owner of public.step_library may change stepsync''s policies'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run stepsync install as the owner of the tables.';
    END IF;
    SELECT r.viewer, r.enabled_rls INTO v_viewer, v_enabled_rls FROM stepsync.row_security AS r FOR UPDATE;

    -- 2 first: the library's rule as row-level security on step_library (it may enable it there).
    FOR v_policy IN
        SELECT p.polname FROM pg_catalog.pg_policy AS p
         WHERE p.polrelid = 'public.step_library'::regclass AND p.polname LIKE 'stepsync\_viewer%'
    LOOP
        EXECUTE pg_catalog.format('DROP POLICY %I ON public.step_library', v_policy);
    END LOOP;
    IF v_viewer IS NOT NULL THEN
        IF NOT (SELECT c.relrowsecurity FROM pg_catalog.pg_class AS c WHERE c.oid = 'public.step_library'::regclass) THEN
            ALTER TABLE public.step_library ENABLE ROW LEVEL SECURITY;
            v_enabled_rls := true;
        END IF;
        CREATE POLICY stepsync_viewer ON public.step_library AS PERMISSIVE FOR ALL TO PUBLIC
            USING (true) WITH CHECK (true);
        EXECUTE pg_catalog.format('CREATE POLICY stepsync_viewer_select ON public.step_library AS RESTRICTIVE'
                                  ' FOR SELECT TO PUBLIC USING (%s OR (is_active AND %s))', c_exempt, c_sees);
        EXECUTE pg_catalog.format('CREATE POLICY stepsync_viewer_insert ON public.step_library AS RESTRICTIVE'
                                  ' FOR INSERT TO PUBLIC WITH CHECK (%s OR (NOT is_flow_synced AND created_by = %s'
                                  ' AND (account_id IS NULL OR account_id = %s)))', c_exempt, c_viewer, c_account);
        EXECUTE pg_catalog.format('CREATE POLICY stepsync_viewer_update ON public.step_library AS RESTRICTIVE'
                                  ' FOR UPDATE TO PUBLIC USING (%s OR (is_active AND %s))'
                                  ' WITH CHECK (%s OR (%s AND stepsync._may_change(step_library)))',
                                  c_exempt, c_sees, c_exempt, c_sees);
        EXECUTE pg_catalog.format('CREATE POLICY stepsync_viewer_delete ON public.step_library AS RESTRICTIVE'
                                  ' FOR DELETE TO PUBLIC USING (%s OR (NOT is_flow_synced AND created_by = %s)'
                                  ' OR (is_flow_synced AND is_active AND %s))', c_exempt, c_viewer, c_sees);
        COMMENT ON POLICY stepsync_viewer ON public.step_library IS
            'With stepsync''s row-level security: lets every command through to the restrictive stepsync_viewer_* policies (docs/contract.md §12.2).';
        COMMENT ON POLICY stepsync_viewer_select ON public.step_library IS
            'Reads: the active steps the current user (stepsync.current_viewer) may see (docs/contract.md §6.3, §12.2).';
        COMMENT ON POLICY stepsync_viewer_insert ON public.step_library IS
            'New rows: hand-made ones the current user creates, with no account or their own (docs/contract.md §12.2).';
        COMMENT ON POLICY stepsync_viewer_update ON public.step_library IS
            'Changes: only of steps the current user sees; of another user''s, only usage_count, rating and rating_count (docs/contract.md §12.2).';
        COMMENT ON POLICY stepsync_viewer_delete ON public.step_library IS
            'Deletes: only of hand-made steps the current user created (docs/contract.md §12.2).';
    ELSIF v_enabled_rls THEN
        ALTER TABLE public.step_library DISABLE ROW LEVEL SECURITY;
        v_enabled_rls := false;
    END IF;

    -- 1. The sync's way through the application's row-level security.
    FOR v_table IN
        SELECT c.oid::regclass
          FROM pg_catalog.pg_class AS c
         WHERE c.oid IN ('public.trees'::regclass, 'public.step_library'::regclass,
                         pg_catalog.to_regclass('public.users'), pg_catalog.to_regclass('public.accounts'))
           AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
         ORDER BY c.relname
    LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy AS p WHERE p.polrelid = v_table AND p.polname = 'stepsync_sync') THEN
            EXECUTE pg_catalog.format('DROP POLICY stepsync_sync ON %s', v_table);
        END IF;
        EXECUTE pg_catalog.format('CREATE POLICY stepsync_sync ON %s AS PERMISSIVE FOR ALL TO PUBLIC'
                                  ' USING (%s) WITH CHECK (%s)', v_table, c_sync, c_sync);
        EXECUTE pg_catalog.format('COMMENT ON POLICY stepsync_sync ON %s IS %L', v_table,
                                  'stepsync''s sync reads and writes every row, whatever the application''s'
                                  ' row-level security; no client gets through (docs/contract.md §12.1).');
    END LOOP;

    SELECT pg_catalog.count(*), COALESCE(pg_catalog.jsonb_agg(d.def), '[]'::jsonb)
      INTO v_count, v_policies
      FROM stepsync._stepsync_policies() AS d (def);
    UPDATE stepsync.row_security AS r
       SET enabled_rls = v_enabled_rls, policies = v_policies, updated_at = pg_catalog.now();
    RETURN v_count;
END;
$function$;

COMMENT ON FUNCTION stepsync.restore_policies() IS
    'Makes stepsync''s row-level security policies (stepsync_sync; with a VIEWER, stepsync_viewer*) what they should be, and records them (docs/contract.md §12). Owner only.';

REVOKE ALL ON FUNCTION stepsync.restore_policies() FROM PUBLIC;
