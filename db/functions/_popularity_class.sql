-- stepsync._popularity_class: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._popularity_class(p_usage_count integer, p_id uuid)
RETURNS integer
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $function$
-- stepsync._popularity_class(usage_count, id): the popularity class of a library step, written once
-- for stepsync.search_steps (which walks the classes in order) and the search-vector trigger
-- (which keys each step by its class, through stepsync._class_key). Classes 1 to 12 hold the steps
-- used 4 times or more, by floor(log2(usage_count)) - 1 counted down from 12: class 1 for 8,192
-- uses and more, class 2 for 4,096 to 8,191, ..., class 12 for 4 to 7. Classes 13 to 76 hold the
-- steps used fewer than 4 times, in 64 parts by the first 6 bits of their id (13 + the part).
--
-- No SET clause and no table, so PostgreSQL inlines it into the calling query: it costs what the
-- expression costs. Its operators are schema-qualified instead of a pinned search_path (see
-- stepsync._may_see).
-- (An OPERATOR() construct has no precedence of its own: the parentheses group what they must.)
SELECT CASE WHEN p_usage_count OPERATOR(pg_catalog.>=) 4
            THEN 13 OPERATOR(pg_catalog.-) LEAST(pg_catalog.length(pg_catalog.ltrim(
                     p_usage_count::pg_catalog.bit(32)::pg_catalog.text, '0')) OPERATOR(pg_catalog.-) 2, 12)
            ELSE 13 OPERATOR(pg_catalog.+)
                 (pg_catalog.get_byte(pg_catalog.uuid_send(p_id), 0) OPERATOR(pg_catalog./) 4)
       END
$function$;

COMMENT ON FUNCTION stepsync._popularity_class(integer, uuid) IS
    'The popularity class of a step: 1-12 by usage_count (4 uses and more, most used first), 13-76 by the first 6 bits of the id (fewer than 4 uses); inlined into its callers.';
