-- stepsync.enable_row_security: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync.enable_row_security(p_viewer text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.enable_row_security(p_viewer): the library's rule (docs/contract.md §6.3) as row-level
-- security on public.step_library for every role but the owner (§12.2), the current user being what
-- the SQL expression P_VIEWER gives (`stepsync install --row-security VIEWER` and
-- `stepsync sql --row-security VIEWER` call it). Stores P_VIEWER in stepsync.row_security and makes
-- the policies (stepsync.restore_policies, which says what they are); returns how many policies
-- stepsync has then. Owner only.
--
-- P_VIEWER must be one SQL expression of type uuid, checked without evaluating it: a loop over
-- SELECT (P_VIEWER) WHERE false reads it through a cursor, which PostgreSQL refuses for more than one
-- statement (so nothing can ride along after a semicolon), then a temporary view of it tells its type.
-- Anything else is refused with 22023 (invalid_parameter_value), changing nothing. Names outside
-- pg_catalog must be schema-qualified (stepsync.current_viewer explains).
DECLARE
    v_type regtype;
    v_message text;
    v_probe text;
    v_select text := 'SELECT (' || p_viewer || E'\n)';
BEGIN
    -- @plpgsql_check_options: security_warnings = off
    -- (P_VIEWER is an expression by design, run as it is given: see above)
    IF p_viewer IS NULL OR pg_catalog.btrim(p_viewer) = '' THEN
        RAISE EXCEPTION 'VIEWER must be an SQL expression of type uuid, not empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example auth.uid() on Supabase.';
    END IF;
    BEGIN
        FOR v_probe IN EXECUTE 'SELECT NULL::text FROM (' || v_select || ' WHERE false) AS probe' LOOP
            EXIT WHEN v_probe IS NULL;   -- never a row (WHERE false): only the cursor (one statement) counts
        END LOOP;
        EXECUTE 'CREATE TEMPORARY VIEW stepsync_viewer_check AS ' || v_select || ' AS viewer';
        SELECT a.atttypid::regtype INTO v_type
          FROM pg_catalog.pg_class AS c
          JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'viewer'
         WHERE c.relname = 'stepsync_viewer_check' AND c.relnamespace = pg_catalog.pg_my_temp_schema();
        EXECUTE 'DROP VIEW pg_temp.stepsync_viewer_check';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
        RAISE EXCEPTION 'VIEWER is not an SQL expression of type uuid: %', v_message
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('VIEWER: %s', p_viewer),
                  HINT = 'Give one expression, with its schema on every name outside pg_catalog, such as auth.uid().';
    END;
    IF v_type IS DISTINCT FROM 'uuid'::regtype THEN
        RAISE EXCEPTION 'VIEWER is not an SQL expression of type uuid: it is of type %', v_type
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('VIEWER: %s', p_viewer),
                  HINT = pg_catalog.format('Cast it: (%s)::uuid', p_viewer);
    END IF;
    UPDATE stepsync.row_security AS r SET viewer = p_viewer;
    RETURN stepsync.restore_policies();
END;
$function$;

COMMENT ON FUNCTION stepsync.enable_row_security(text) IS
    'Enforces the library''s rule as row-level security on step_library, the current user being the uuid the SQL expression gives (docs/contract.md §12.2). Owner only.';

REVOKE ALL ON FUNCTION stepsync.enable_row_security(text) FROM PUBLIC;
