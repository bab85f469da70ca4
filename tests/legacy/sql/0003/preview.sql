-- stepsync.preview(p_tree_id): the entries a publish of the flow would write
-- now, without writing anything (SPEC §6.5): source_node_id, title, step_type,
-- content and visibility, procedural steps in array order, troubleshooting
-- nodes in walk order (exact up to 1,000 levels of nesting; deeper subtrees
-- follow band by band, see stepsync._walk_troubleshooting).
--
-- It applies the publish-time checks (§4): a flow that could not be published
-- raises 23514 here too. Runs with the caller's rights: reading the flow needs
-- SELECT on public.trees. Unknown flow: P0002.
CREATE OR REPLACE FUNCTION stepsync.preview(p_tree_id uuid)
RETURNS TABLE (
    source_node_id text,
    title text,
    step_type text,
    content jsonb,
    visibility text
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_tree public.trees;
BEGIN
    SELECT * INTO v_tree FROM public.trees AS t WHERE t.id = p_tree_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no flow with id %', p_tree_id
            USING ERRCODE = 'no_data_found', HINT = 'Check the id against public.trees.';
    END IF;
    RETURN QUERY
    SELECT n.source_node_id, n.title, n.step_type, n.content, n.visibility
      FROM stepsync._nodes(v_tree.id, v_tree.tree_type, v_tree.tree_structure, v_tree.is_public) AS n
     ORDER BY n.ord;
END;
$function$;

COMMENT ON FUNCTION stepsync.preview(uuid) IS
    'The library entries a publish of this flow would write now, in walk order, without writing anything (SPEC §6.5). Applies the publish checks (23514); P0002 for an unknown flow.';
