-- stepsync.check_flows(): every flow, drafts included, whose structure would fail the publish checks.
-- Called by `stepsync check` and `stepsync doctor`; for DBAs too (SELECT * FROM stepsync.check_flows()).
CREATE OR REPLACE FUNCTION stepsync.check_flows()
RETURNS TABLE (tree_id uuid, name text, status text, problem text, path text, hint text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- One row per flow whose tree_structure fails the checks a publish would make
-- (docs/contract.md §4), whatever its status: the first problem in walk order, the JSON path
-- of the offending value and how to fix it, the same message a publish would raise as 23514.
-- Listed flows that fail are also what stepsync.check_library() reports; a draft that fails
-- is one that cannot be published as it is. Changes nothing; runs with the caller's rights
-- (reading trees takes SELECT on it), through the same extraction as the sync
-- (stepsync._nodes, without raising).
SELECT f.tree_id, f.name, f.status, f.problem, f.path, f.hint
  FROM (SELECT DISTINCT ON (t.id)
               t.id AS tree_id, t.name::text AS name, t.status::text AS status,
               n.problem, n.problem_path AS path, n.hint
          FROM public.trees AS t
         CROSS JOIN LATERAL stepsync._nodes(t.id, t.tree_type::text, t.tree_structure, t.is_public, false) AS n
         WHERE n.problem IS NOT NULL
         ORDER BY t.id, n.ord) AS f
 ORDER BY f.name, f.tree_id
$function$;

COMMENT ON FUNCTION stepsync.check_flows() IS
    'Every flow (drafts included) whose structure would fail the publish checks: its first problem, JSON path and hint. Changes nothing.';
