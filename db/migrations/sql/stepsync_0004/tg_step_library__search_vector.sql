-- stepsync.tg_step_library__search_vector(): BEFORE INSERT / UPDATE row
-- trigger function on public.step_library that stores search_vector, what
-- stepsync.search_steps searches (through the GIN index
-- step_library_search_vector_idx). It runs only when what the vector is made
-- of changes (the triggers' UPDATE OF lists and WHEN clauses): a usage_count
-- increment that stays in its popularity class never gets here, so it stays a
-- HOT update.
--
-- The vector is the weighted text (the expression of
-- stepsync._search_document(title, content), written out here; keep the two
-- equal, a test compares them) plus keys that no text can produce (they start
-- with a space, which the parser never puts in a lexeme):
--  * one audience key per way of seeing the step, each combined with the
--    step's popularity class and kind: ' p <class> <kind>' for a public step,
--    ' a<account_id> <class> <kind>' for a team step of an account,
--    ' u<created_by> <class> <kind>' for every step that is not public (its
--    creator always sees it);
--  * ' t<lexeme>' for each lexeme of the title, so that title matches can be
--    found without reading the rows.
-- The popularity class is stepsync._popularity_class, spelled by
-- stepsync._class_key (' c1' for 4 to 7 uses up to ' c12' for 8,192 and more;
-- ' n0' to ' n63' for the parts of the steps used fewer than 4 times), the
-- rule stepsync.search_steps walks by. The kind is 'solution' for solutions,
-- 'action' for everything else.
-- Runs as the writer; it only sets a column of the row being written.
CREATE OR REPLACE FUNCTION stepsync.tg_step_library__search_vector()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- Stores search_vector: the weighted text of the step plus its audience, popularity and title keys.
DECLARE
    v_popularity integer;
    v_class text;
    v_title pg_catalog.tsvector;
BEGIN
    IF TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW' OR TG_OP NOT IN ('INSERT', 'UPDATE') THEN
        RAISE EXCEPTION 'stepsync.tg_step_library__search_vector must be a BEFORE INSERT or UPDATE row trigger, not % % %',
            TG_WHEN, TG_LEVEL, TG_OP
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    -- Two statements, so that each helper is inlined (an expensive argument used twice is not).
    v_popularity := stepsync._popularity_class(NEW.usage_count, NEW.id);
    v_class := ' ' || stepsync._class_key(v_popularity)
               || CASE WHEN NEW.step_type = 'solution' THEN ' solution' ELSE ' action' END;
    -- The text part is stepsync._search_document(NEW.title, NEW.content), written out (one call less a row).
    v_title := pg_catalog.to_tsvector('pg_catalog.english', pg_catalog.left(COALESCE(NEW.title, ''), 10000));
    NEW.search_vector :=
           pg_catalog.setweight(v_title, 'A')
        || CASE WHEN NEW.content ->> 'group_label' IS NULL THEN ''::pg_catalog.tsvector
                ELSE pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english',
                         pg_catalog.left(NEW.content ->> 'group_label', 10000)), 'B') END
        || CASE WHEN NEW.content ->> 'instructions' IS NULL THEN ''::pg_catalog.tsvector
                ELSE pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.english',
                         pg_catalog.left(NEW.content ->> 'instructions', 200000)), 'C') END
        || pg_catalog.to_tsvector('pg_catalog.english', pg_catalog.concat_ws(' ',
               pg_catalog.left(NEW.content ->> 'help_text', 100000),
               pg_catalog.left(pg_catalog.jsonb_path_query_array(NEW.content, 'lax $.commands[*].command')::text, 100000)))
        || pg_catalog.array_to_tsvector(pg_catalog.array_remove(ARRAY[
               CASE WHEN NEW.visibility = 'public' THEN ' p' || v_class END,
               CASE WHEN NEW.visibility = 'team' THEN ' a' || NEW.account_id::text || v_class END,
               CASE WHEN NEW.visibility IS DISTINCT FROM 'public' THEN ' u' || NEW.created_by::text || v_class END],
               NULL)
           || pg_catalog.string_to_array(' t' || NULLIF(pg_catalog.array_to_string(
                  pg_catalog.tsvector_to_array(v_title), E'\x1f t'), ''), E'\x1f'));
    RETURN NEW;
END;
$function$;

COMMENT ON FUNCTION stepsync.tg_step_library__search_vector() IS
    'Trigger function: stores step_library.search_vector (the weighted text and the audience, popularity and title keys stepsync.search_steps walks).';

REVOKE ALL ON FUNCTION stepsync.tg_step_library__search_vector() FROM PUBLIC;
