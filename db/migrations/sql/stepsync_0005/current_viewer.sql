-- stepsync.current_viewer: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync.current_viewer()
RETURNS uuid
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.current_viewer(): the user the current request acts for, as the VIEWER expression of
-- `stepsync install --row-security VIEWER` gives it (stored in stepsync.row_security): for example
-- auth.uid() on Supabase, or (nullif(current_setting('request.jwt.claims', true), '')::json->>'sub')::uuid under
-- PostgREST. Null when no VIEWER is set, or when the request names no user (anon): such a request
-- sees the public steps only (docs/contract.md §12.2).
--
-- Evaluated with the caller's rights and this function's search_path (pg_catalog, pg_temp): VIEWER
-- names anything outside pg_catalog with its schema. stepsync's SECURITY DEFINER functions
-- (current_viewer_account, search_steps' ranking) evaluate it too, as the tables' owner: so it
-- should read the request (its settings, as both examples do), not current_user.
-- The policies call it as an initplan, (SELECT stepsync.current_viewer()), once a statement.
DECLARE
    v_viewer text := (SELECT r.viewer FROM stepsync.row_security AS r);
    v_user uuid;
BEGIN
    -- @plpgsql_check_options: security_warnings = off
    -- (VIEWER is an expression by design, checked by stepsync.enable_row_security, the one way to set it)
    IF v_viewer IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT (' || v_viewer || E'\n)' INTO v_user;
    RETURN v_user;
END;
$function$;

COMMENT ON FUNCTION stepsync.current_viewer() IS
    'The uuid of the user the current request acts for (the VIEWER of stepsync install --row-security), or null (docs/contract.md §12.2).';
