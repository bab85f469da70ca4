-- stepsync._class_key: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._class_key(p_class integer)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $function$
-- stepsync._class_key(class): how a popularity class (stepsync._popularity_class) is spelled in the
-- keys of search_vector, written once for the search-vector trigger (which stores the keys) and
-- stepsync.search_steps (which looks them up): 'c1' (4 to 7 uses) to 'c12' (8,192 and more) for
-- classes 12 down to 1, 'n0' to 'n63' for the parts of classes 13 to 76. Inlined into its callers
-- (no SET clause, no table; operators schema-qualified, see stepsync._may_see).
SELECT CASE WHEN p_class OPERATOR(pg_catalog.<=) 12
            THEN 'c' OPERATOR(pg_catalog.||) (13 OPERATOR(pg_catalog.-) p_class)::pg_catalog.text
            ELSE 'n' OPERATOR(pg_catalog.||) (p_class OPERATOR(pg_catalog.-) 13)::pg_catalog.text
       END
$function$;

COMMENT ON FUNCTION stepsync._class_key(integer) IS
    'How a popularity class is spelled in search_vector''s keys: c1-c12 for classes 12-1, n0-n63 for classes 13-76; inlined into its callers.';
