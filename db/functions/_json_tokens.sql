-- stepsync._json_tokens: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._json_tokens(p_text text)
RETURNS TABLE (
    n bigint,
    at bigint,
    len integer,
    depth bigint,
    step integer,
    kind text,
    tail text,
    txt text,
    next_txt text
)
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._json_tokens(text): the tokens of a jsonb value's text form (jsonb::text), in text order,
-- for the walks that must locate a node in a deep document without copying subtrees
-- (stepsync._walk_troubleshooting's exact walk and stepsync._nodes's JSON paths). jsonb's text form
-- writes every container's members in walk order, with ": " after a key and ", " between elements,
-- so one pass over it in order finds every node and every ancestor. A token is a string with the
-- ": " or ", " after it, another scalar with its ", ", a bracket with its ", ", a lone ":" or ","
-- or a run of spaces. Each row: n (the token's rank), at (its byte offset, 0-based), len (its
-- length in bytes), depth (the containers open before it), step (+1 for "{" and "[", -1 for "}" and
-- "]", else 0), kind (its first character), tail (its last two characters), txt (the token when
-- it is at most 24 bytes: keys and short values), next_txt (the next token's txt).
-- Linear in the text's size: regexp_matches streams the tokens, numbered by WITH ORDINALITY, and
-- the windows run over that order.
SELECT t.n,
       pg_catalog.sum(t.len) OVER w - t.len,
       t.len,
       pg_catalog.sum(t.step) OVER w - t.step,
       t.step, t.kind, t.tail, t.txt,
       pg_catalog.lead(t.txt) OVER w
  FROM (SELECT m.n, pg_catalog.octet_length(m.tok[1]) AS len, pg_catalog.left(m.tok[1], 1) AS kind,
               pg_catalog.right(m.tok[1], 2) AS tail,
               CASE WHEN pg_catalog.octet_length(m.tok[1]) <= 24 THEN m.tok[1] END AS txt,
               CASE pg_catalog.left(m.tok[1], 1) WHEN '{' THEN 1 WHEN '[' THEN 1
                                                 WHEN '}' THEN -1 WHEN ']' THEN -1 ELSE 0 END AS step
          FROM pg_catalog.regexp_matches(
                   p_text, '"(?:[^"\\]|\\.)*"(?:: |, )?|[^][{},:" ]+(?:, )?|[][{}](?:, )?|[,:] ?| +', 'g')
               WITH ORDINALITY AS m (tok, n)) AS t
WINDOW w AS (ORDER BY t.n ROWS UNBOUNDED PRECEDING)
$function$;

COMMENT ON FUNCTION stepsync._json_tokens(text) IS
    'Internal: the tokens of a jsonb value''s text form in order, with byte offsets and nesting depth, for locating nodes in deep documents in linear time.';
