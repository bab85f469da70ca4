-- stepsync.check_row_security: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync.check_row_security()
RETURNS TABLE (kind text, object text, problem text, fix text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync.check_row_security(): what row-level security would make go wrong (docs/contract.md
-- §12.3), one row a problem, each with its fix; no rows: nothing. `stepsync doctor` reports them.
--  * sync_blocked: row-level security on one of the four tables meets the sync (the table is forced,
--    or the sync's role, the owner of step_library, does not own it) and nothing lets the sync
--    through: no stepsync_sync policy, or a RESTRICTIVE policy of the application's that binds the
--    sync's role too (a restrictive policy is ANDed with every permissive one, stepsync_sync
--    included). A publish would then leave out, or fail on, the rows the policies hide.
--  * view_bypasses: a view over step_library that reads it with its owner's rights (it is not
--    security_invoker, and its owner is not bound by the table's policies), while step_library has
--    row-level security: a client reading the view sees rows the policies hide.
--  * policy_changed: a policy of stepsync's is not as stepsync.restore_policies made it (recorded
--    in stepsync.row_security): changed, dropped, or added by hand.
WITH sync_role AS (
    SELECT c.relowner AS oid, a.rolsuper OR a.rolbypassrls AS exempt
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_roles AS a ON a.oid = c.relowner
     WHERE c.oid = 'public.step_library'::pg_catalog.regclass
),
tables AS (             -- the four tables, and whether their row-level security binds the sync
    SELECT c.oid, c.oid::pg_catalog.regclass::text AS name, c.relforcerowsecurity AS forced,
           c.relrowsecurity AND NOT r.exempt
             AND (c.relforcerowsecurity OR NOT pg_catalog.pg_has_role(r.oid, c.relowner, 'USAGE')) AS binds_sync
      FROM pg_catalog.pg_class AS c, sync_role AS r
     WHERE c.oid IN ('public.trees'::pg_catalog.regclass, 'public.step_library'::pg_catalog.regclass,
                     pg_catalog.to_regclass('public.users'), pg_catalog.to_regclass('public.accounts'))
),
current_policies AS (   -- stepsync's policies as the catalog holds them now
    SELECT d.def FROM stepsync._stepsync_policies() AS d (def)
),
recorded AS (
    SELECT e.def
      FROM stepsync.row_security AS s, pg_catalog.jsonb_array_elements(s.policies) AS e (def)
)
SELECT 'sync_blocked', 'table ' || t.name,
       'row-level security on ' || t.name || ' binds the sync ('
       || CASE WHEN t.forced THEN 'it is forced' ELSE 'the sync''s role does not own it' END
       || ') and no stepsync_sync policy lets it through: a publish would leave out the rows its policies hide',
       CASE WHEN pg_catalog.pg_has_role((SELECT r.oid FROM sync_role AS r),
                                        (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = t.oid), 'USAGE')
            THEN 'run `stepsync install` (it makes the policy again)'
            ELSE 'ALTER TABLE ' || t.name || ' OWNER TO the owner of public.step_library, then run `stepsync install`'
       END
  FROM tables AS t
 WHERE t.binds_sync
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy AS p WHERE p.polrelid = t.oid AND p.polname = 'stepsync_sync')
UNION ALL
SELECT 'sync_blocked', 'policy ' || p.polname || ' on ' || t.name,
       'the restrictive policy ' || p.polname || ' on ' || t.name || ' binds the sync''s role too'
       || CASE WHEN t.forced THEN ' (row-level security is forced there)' ELSE '' END
       || ': the rows it hides from that role are left out of the library, or fail a publish',
       'give the policy the roles it is meant for (ALTER POLICY ' || pg_catalog.quote_ident(p.polname) || ' ON '
       || t.name || ' TO ...), or ALTER TABLE ' || t.name || ' NO FORCE ROW LEVEL SECURITY'
  FROM tables AS t
  JOIN pg_catalog.pg_policy AS p ON p.polrelid = t.oid
 WHERE t.binds_sync AND NOT p.polpermissive AND p.polname NOT LIKE 'stepsync\_%'
   AND (0::pg_catalog.oid = ANY (p.polroles)
        OR EXISTS (SELECT 1 FROM pg_catalog.unnest(p.polroles) AS pr (role)
                    WHERE pg_catalog.pg_has_role((SELECT r.oid FROM sync_role AS r), pr.role, 'USAGE')))
UNION ALL
SELECT DISTINCT 'view_bypasses', 'view ' || v.oid::pg_catalog.regclass::text,
       'the view ' || v.oid::pg_catalog.regclass::text || ' reads public.step_library with the rights of its owner '
       || pg_catalog.pg_get_userbyid(v.relowner) || ', whom the table''s row-level security does not bind:'
       || ' a client reading the view sees the rows the policies hide',
       'ALTER VIEW ' || v.oid::pg_catalog.regclass::text || ' SET (security_invoker = true)'
  FROM pg_catalog.pg_depend AS d
  JOIN pg_catalog.pg_rewrite AS w ON w.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
  JOIN pg_catalog.pg_class AS v ON v.oid = w.ev_class AND v.relkind = 'v'
  JOIN pg_catalog.pg_class AS l ON l.oid = d.refobjid
  JOIN pg_catalog.pg_roles AS o ON o.oid = v.relowner
 WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND l.oid = 'public.step_library'::pg_catalog.regclass
   AND v.oid <> l.oid
   AND l.relrowsecurity
   AND NOT COALESCE(pg_catalog.array_to_string(v.reloptions, ',') ~ '(^|,)security_invoker=(true|on|1|yes)(,|$)', false)
   AND (o.rolsuper OR o.rolbypassrls OR (NOT l.relforcerowsecurity AND pg_catalog.pg_has_role(v.relowner, l.relowner, 'USAGE')))
UNION ALL
SELECT 'policy_changed', 'policy ' || (x.def ->> 'policy') || ' on ' || (x.def ->> 'table'),
       CASE WHEN x.recorded AND NOT x.present THEN 'stepsync''s policy ' || (x.def ->> 'policy') || ' on '
                 || (x.def ->> 'table') || ' was dropped or changed'
            ELSE 'the policy ' || (x.def ->> 'policy') || ' on ' || (x.def ->> 'table')
                 || ' is not as stepsync made it (changed, or added by hand)' END,
       'run `stepsync install` (it makes stepsync''s policies again)'
  FROM (SELECT COALESCE(c.def, r.def) AS def, r.def IS NOT NULL AS recorded, c.def IS NOT NULL AS present
          FROM current_policies AS c
          FULL JOIN recorded AS r ON r.def = c.def
         WHERE c.def IS NULL OR r.def IS NULL) AS x
 WHERE NOT (x.present AND EXISTS (SELECT 1 FROM recorded AS r2
                                   WHERE r2.def ->> 'policy' = x.def ->> 'policy'
                                     AND r2.def ->> 'table' = x.def ->> 'table'))
$function$;

COMMENT ON FUNCTION stepsync.check_row_security() IS
    'What row-level security would make go wrong, each with its fix: policies that block the sync, views that bypass the policies, stepsync policies changed or dropped (docs/contract.md §12.3).';
