-- stepsync._search_gather: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_gather(p_request stepsync.search_request)
RETURNS stepsync.search_walk
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._search_gather(p_request): what stepsync._search_walk finds for the search p_request
-- (stepsync._search_ranked makes it; docs/contract.md §6.8) in the library. On one node the library is
-- public.step_library; on Citus, each worker walks its own shards and this gathers their matches
-- (docs/contract.md §11.3). Not granted to PUBLIC.
SELECT stepsync._search_walk(ARRAY['public.step_library'::pg_catalog.regclass], p_request)
$function$;

COMMENT ON FUNCTION stepsync._search_gather(stepsync.search_request) IS
    'Internal: the matches stepsync._search_walk finds for a search in the library (on Citus, gathered from every worker''s walk over its own shards); stepsync._search_ranked takes the candidates from them (docs/contract.md §6.8).';

REVOKE ALL ON FUNCTION stepsync._search_gather(stepsync.search_request) FROM PUBLIC;
