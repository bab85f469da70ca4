"""The hand-written "limit" statements of `stepsync bench`: one set-based
INSERT ... SELECT ... ON CONFLICT each, shaping exactly the rows the sync
writes for the benchmark's flows, with no checks and no retirement. They are
the most this work can cost inside PostgreSQL; the sync is measured against them.

Each runs against the product's own public.step_library (its indexes, foreign
keys and the row triggers that fire for the sync's writes) or against a bare
copy (BARE_LIBRARY: the same columns and the upsert's unique key, nothing
else), so that the report shows what the schema itself costs a write.
"""

# Content of one node N (a jsonb object), as the sync shapes it for the benchmark's flows.
_CONTENT = """
    jsonb_build_object(
        'instructions', CASE WHEN btrim(COALESCE(n ->> 'description', ''), E' \\t\\r\\n') <> ''
                             THEN n -> 'description' ELSE n -> 'title' END,
        'help_text', CASE WHEN btrim(COALESCE(n ->> 'expected_outcome', ''), E' \\t\\r\\n') <> ''
                          THEN n -> 'expected_outcome' END,
        'commands', COALESCE((
            SELECT jsonb_agg(CASE WHEN jsonb_typeof(c) = 'string'
                                  THEN jsonb_build_object('label', '', 'command', c, 'command_type', NULL)
                                  ELSE jsonb_build_object('label', COALESCE(c -> 'label', '""'), 'command', c -> 'code',
                                                          'command_type', c -> 'language') END ORDER BY i)
              FROM jsonb_array_elements(n -> 'commands') WITH ORDINALITY AS x (c, i)), '[]'),
        'group_label', {group_label})
"""

_UPSERT = """
ON CONFLICT (source_tree_id, source_node_id) DO UPDATE
   SET title = EXCLUDED.title, step_type = EXCLUDED.step_type, content = EXCLUDED.content,
       visibility = EXCLUDED.visibility, account_id = EXCLUDED.account_id,
       last_synced_at = EXCLUDED.last_synced_at, is_active = true
"""

BARE_LIBRARY = "bench_bare_library"

BARE_LIBRARY_DDL = f"""
CREATE TABLE public.{BARE_LIBRARY} (LIKE public.step_library INCLUDING DEFAULTS);
ALTER TABLE public.{BARE_LIBRARY} ADD UNIQUE (source_tree_id, source_node_id);
"""


def limit_sql(tree_type: str, table: str = "step_library") -> str:
    """The limit statement for a flow of TREE_TYPE, writing into TABLE (parameter: %(tree)s)."""
    template = TROUBLESHOOTING_LIMIT if tree_type == "troubleshooting" else PROCEDURAL_LIMIT
    return template.replace("{table}", table)


PROCEDURAL_LIMIT = """
INSERT INTO {table} AS s (title, step_type, content, visibility, created_by, account_id,
                               is_flow_synced, source_tree_id, source_node_id, last_synced_at)
SELECT e.n ->> 'title', 'action', """ + _CONTENT.format(
    group_label="NULLIF(substr(e.header, 20), '')") + """,
       COALESCE(e.n ->> 'library_visibility', CASE WHEN t.is_public THEN 'public' ELSE 'team' END),
       t.author_id, t.account_id, true, t.id, e.n ->> 'id', now()
  FROM trees AS t,
       LATERAL (SELECT a.n, max(CASE WHEN a.n ->> 'type' = 'section_header'
                                     THEN lpad(a.i::text, 19, '0') || (a.n ->> 'title') END COLLATE "C")
                            OVER (ORDER BY a.i) AS header
                  FROM jsonb_array_elements(t.tree_structure -> 'steps') WITH ORDINALITY AS a (n, i)) AS e
 WHERE t.id = %(tree)s AND e.n ->> 'type' = 'procedure_step'
 ORDER BY e.n ->> 'id'
""" + _UPSERT

TROUBLESHOOTING_LIMIT = """
INSERT INTO {table} AS s (title, step_type, content, visibility, created_by, account_id,
                               is_flow_synced, source_tree_id, source_node_id, last_synced_at)
SELECT q.n ->> 'title', q.n ->> 'type', """ + _CONTENT.format(group_label="NULL") + """,
       CASE WHEN t.is_public THEN 'public' ELSE 'team' END,
       t.author_id, t.account_id, true, t.id, q.n ->> 'id', now()
  FROM trees AS t,
       jsonb_path_query(t.tree_structure, 'strict $.** ? (@.type == "action" || @.type == "solution")') AS q (n)
 WHERE t.id = %(tree)s
 ORDER BY q.n ->> 'id'
""" + _UPSERT
