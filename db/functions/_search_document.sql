-- stepsync._search_document(p_title, p_content): the weighted full-text
-- document of a library step, in the english configuration: title (A), group
-- label (B), instructions (C), help text and commands (D, parsed together).
--
-- It is the text part of public.step_library.search_vector, which
-- stepsync.tg_step_library__search_vector stores when a step is written (the
-- column also holds the keys search_steps walks, see there); the benchmark's
-- hand-written exact search and the tests use it as the reference document.
-- A part that is absent is not parsed at all, and each part is cut to its
-- first characters (10,000 for title and group label, 200,000 for
-- instructions, 100,000 for help text and for commands): a tsvector may not
-- exceed 1 MB (SQLSTATE 54000), and a step with a huge description must still
-- publish; search then sees the beginning of such a text.
CREATE OR REPLACE FUNCTION stepsync._search_document(p_title text, p_content jsonb)
RETURNS tsvector
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
    -- Title (A), group label (B), instructions (C), help text and commands (D), each cut to a bounded length.
    SELECT pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english',
               pg_catalog.left(COALESCE(p_title, ''), 10000)), 'A')
        || CASE WHEN p_content ->> 'group_label' IS NULL THEN ''::pg_catalog.tsvector
                ELSE pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english',
                         pg_catalog.left(p_content ->> 'group_label', 10000)), 'B') END
        || CASE WHEN p_content ->> 'instructions' IS NULL THEN ''::pg_catalog.tsvector
                ELSE pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english',
                         pg_catalog.left(p_content ->> 'instructions', 200000)), 'C') END
        || pg_catalog.to_tsvector('pg_catalog.english', pg_catalog.concat_ws(' ',
               pg_catalog.left(p_content ->> 'help_text', 100000),
               pg_catalog.left(pg_catalog.jsonb_path_query_array(p_content, 'lax $.commands[*].command')::text, 100000)))
$function$;

COMMENT ON FUNCTION stepsync._search_document(text, jsonb) IS
    'Internal: the weighted tsvector of a step''s text (title A, group label B, instructions C, help text and commands D), the text part of step_library.search_vector.';
