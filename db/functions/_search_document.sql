-- stepsync._search_document(p_title, p_content): the full-text document of a
-- library step, weighted: title (A), group label (B), instructions (C), help
-- text and commands (D), in the english configuration.
--
-- IMMUTABLE so that the GIN index step_library_search_idx can be built on it;
-- stepsync.search_steps uses the very same expression, so the index serves it.
CREATE OR REPLACE FUNCTION stepsync._search_document(p_title text, p_content jsonb)
RETURNS tsvector
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english', COALESCE(p_title, '')), 'A')
        || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english', COALESCE(p_content ->> 'group_label', '')), 'B')
        || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english', COALESCE(p_content ->> 'instructions', '')), 'C')
        || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english', COALESCE(p_content ->> 'help_text', '')), 'D')
        || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english',
               pg_catalog.jsonb_path_query_array(p_content, 'lax $.commands[*].command')), 'D')
$function$;

COMMENT ON FUNCTION stepsync._search_document(text, jsonb) IS
    'Internal: the weighted tsvector of a step (title A, group label B, instructions C, help text and commands D) that step_library_search_idx indexes and stepsync.search_steps matches.';
