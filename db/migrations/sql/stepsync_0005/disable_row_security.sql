-- stepsync.disable_row_security: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync.disable_row_security()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.disable_row_security(): stops enforcing the library's rule as row-level security
-- (`stepsync install --no-row-security`, docs/contract.md §12.2): forgets the VIEWER and drops the
-- stepsync_viewer* policies; row-level security on step_library goes off again if stepsync turned it
-- on. The stepsync_sync policies stay (the sync needs them wherever the application's row-level
-- security meets it). Returns how many policies stepsync has then. Owner only.
BEGIN
    UPDATE stepsync.row_security AS r SET viewer = NULL;
    RETURN stepsync.restore_policies();
END;
$function$;

COMMENT ON FUNCTION stepsync.disable_row_security() IS
    'Stops enforcing the library''s rule as row-level security (drops the stepsync_viewer* policies) (docs/contract.md §12.2). Owner only.';

REVOKE ALL ON FUNCTION stepsync.disable_row_security() FROM PUBLIC;
