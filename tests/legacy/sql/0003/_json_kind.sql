-- stepsync._json_kind(p_value): how a JSON value reads in an error message:
-- "missing" for SQL NULL (an absent key), "null", "an empty string", "a blank
-- string", "a JSON array", "a JSON number (42)", ... Used only on the error
-- path of stepsync._nodes.
CREATE OR REPLACE FUNCTION stepsync._json_kind(p_value jsonb)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT CASE
        WHEN p_value IS NULL THEN 'missing'
        WHEN pg_catalog.jsonb_typeof(p_value) = 'string' AND p_value #>> '{}' = '' THEN 'an empty string'
        WHEN pg_catalog.jsonb_typeof(p_value) = 'string'
             AND pg_catalog.btrim(p_value #>> '{}', E' \t\r\n') = '' THEN 'a blank string'
        WHEN pg_catalog.jsonb_typeof(p_value) = 'null' THEN 'null'
        WHEN pg_catalog.jsonb_typeof(p_value) IN ('object', 'array') THEN 'a JSON ' || pg_catalog.jsonb_typeof(p_value)
        WHEN pg_catalog.length(p_value::text) > 40
            THEN 'a JSON ' || pg_catalog.jsonb_typeof(p_value) || ' (' || pg_catalog.left(p_value::text, 37) || '...)'
        ELSE 'a JSON ' || pg_catalog.jsonb_typeof(p_value) || ' (' || p_value::text || ')'
    END
$function$;

COMMENT ON FUNCTION stepsync._json_kind(jsonb) IS
    'Internal: describes a JSON value for an error message ("missing", "a JSON number (42)", "a blank string", ...).';
