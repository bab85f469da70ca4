-- stepsync._prepared: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._prepared(p_sql text, p_types text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._prepared(p_sql, p_types): the name of a prepared statement of this session whose text is
-- p_sql, with parameters of the types p_types (a list, as PREPARE takes it), prepared now unless it is
-- there already; run it with EXECUTE name (...). For statements that run many times in a session over
-- many tables, where planning costs more than running (on a Citus worker, over its shards: docs/contract.md
-- §11.4). The name is stepsync_ and the md5 of the types and text, and a statement of that name is taken
-- only if it was prepared from this very text (else it is prepared again): one prepared by anyone else in
-- the session under that name is never run. Names are resolved as this function's search_path says, once.
-- It prepares the text it is given: stepsync's functions give texts they build from constants, catalog
-- names (regclass) and %I; a role that calls it itself prepares, with its own rights, what it could
-- prepare anyway. So plpgsql_check's check of EXECUTE's text is off here:
-- @plpgsql_check_options: security_warnings = false
DECLARE
    v_name text := 'stepsync_' || pg_catalog.md5(p_types || ' ' || p_sql);
    v_prepare text := pg_catalog.format('PREPARE %I (%s) AS %s', v_name, p_types, p_sql);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements AS p
                    WHERE p.name = v_name AND p.statement = v_prepare) THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements AS p WHERE p.name = v_name) THEN
            EXECUTE pg_catalog.format('DEALLOCATE %I', v_name);
        END IF;
        EXECUTE v_prepare;
    END IF;
    RETURN v_name;
END;
$function$;

COMMENT ON FUNCTION stepsync._prepared(text, text) IS
    'Internal: the name of a prepared statement of the session made from exactly the given text and parameter types, prepared now if it is not there (docs/contract.md §11.4).';
