-- stepsync._match_tier: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._match_tier(
    p_vector pg_catalog.tsvector,
    p_title pg_catalog.tsquery,
    p_title_group pg_catalog.tsquery,
    p_with_instructions pg_catalog.tsquery
)
RETURNS integer
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $function$
-- stepsync._match_tier(search_vector, query on A, on AB, on ABC): where a step matches a search, written
-- once for the three ways stepsync.search_steps fetches its candidates: 4 when the query holds on the
-- title alone (weight A), 3 on title and group label (AB), 2 with the instructions too (ABC), 1
-- anywhere (help text and commands included). search_steps ranks 4, 3, 2, 1 as 1.0, 0.4, 0.2, 0.1.
-- Inlined into its caller (no SET clause, no table; operators schema-qualified, see stepsync._may_see).
SELECT CASE WHEN p_vector OPERATOR(pg_catalog.@@) p_title THEN 4
            WHEN p_vector OPERATOR(pg_catalog.@@) p_title_group THEN 3
            WHEN p_vector OPERATOR(pg_catalog.@@) p_with_instructions THEN 2
            ELSE 1
       END
$function$;

COMMENT ON FUNCTION stepsync._match_tier(pg_catalog.tsvector, pg_catalog.tsquery, pg_catalog.tsquery, pg_catalog.tsquery) IS
    'Where a step matches a search: 4 on the title alone, 3 with the group label, 2 with the instructions, 1 anywhere; inlined into stepsync.search_steps.';
