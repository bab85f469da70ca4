-- stepsync._search_document(p_title, p_content): the full-text document of a
-- library step, weighted: title (A), group label (B), instructions (C), help
-- text and commands (D), in the english configuration.
--
-- IMMUTABLE so that the GIN index step_library_search_idx can be built on it;
-- stepsync.search_steps uses the very same expression, so the index serves it.
-- Each part is cut to its first characters (10,000 for title and group label,
-- 200,000 for instructions, 100,000 for help text and for commands): a tsvector
-- may not exceed 1 MB (SQLSTATE 54000), and a step with a huge description must
-- still publish; search then sees the beginning of such a text.
CREATE OR REPLACE FUNCTION stepsync._search_document(p_title text, p_content jsonb)
RETURNS tsvector
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english', pg_catalog.left(COALESCE(p_title, ''), 10000)), 'A')
        || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english',
               pg_catalog.left(COALESCE(p_content ->> 'group_label', ''), 10000)), 'B')
        || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english',
               pg_catalog.left(COALESCE(p_content ->> 'instructions', ''), 200000)), 'C')
        || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english',
               pg_catalog.left(COALESCE(p_content ->> 'help_text', ''), 100000)), 'D')
        || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english',
               pg_catalog.left(pg_catalog.jsonb_path_query_array(p_content, 'lax $.commands[*].command')::text, 100000)), 'D')
$function$;

COMMENT ON FUNCTION stepsync._search_document(text, jsonb) IS
    'Internal: the weighted tsvector of a step (title A, group label B, instructions C, help text and commands D) that step_library_search_idx indexes and stepsync.search_steps matches.';
