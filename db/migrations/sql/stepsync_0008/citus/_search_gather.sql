-- stepsync._search_gather on Citus: the distributed variant of db/functions/_search_gather.sql
-- (docs/contract.md §6.8, §11.3). The explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_gather(p_request stepsync.search_request)
RETURNS stepsync.search_walk
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._search_gather(p_request): what stepsync._search_walk finds for the search p_request
-- (stepsync._search_ranked makes it; docs/contract.md §6.8) in the library, which on Citus is in the
-- workers' shards of public.step_library (docs/contract.md §11.3). Not granted to PUBLIC.
--
-- Each worker walks its own shards (stepsync._search_local), all workers at once, one command each:
-- one query on stepsync.search_anchors filtered on one key a worker (stepsync._search_anchors), which
-- Citus sends to exactly those workers. A walk over the distributed table instead sends each of its
-- statements to every shard, and each such command costs about 0.4 ms on loopback (measured: a rare
-- word, two statements over 32 shards, 36 ms against 3 ms on one node).
--
-- The same candidates as one walk over the whole library. A worker stops after the first class where its
-- own matches are more than its target; every match of the classes up to the smallest class a worker
-- stopped at (done, the least of the workers') is then at hand (a worker that did not stop has all its
-- matches). When more than T of them are, the cut of stepsync._search_ranked (the first class where the
-- library's matches are more than T) is among them. So the workers first walk to a quarter more than
-- their share of T (the library's rows are spread evenly over the shards, so together they nearly always
-- pass T); if together they have no more than T up to done, they walk again with T itself: then the
-- worker that stopped first alone has more than T. The title rule's fetch (p_request.title_query) goes
-- to every worker the same way, in one round.
--
-- If the anchors are missing (a worker returns nothing: stepsync.search_anchors emptied by hand, or a
-- worker added since the install), the coordinator walks the distributed table itself: the same rows,
-- slower; `stepsync install` puts the anchors back.
DECLARE
    v_anchors uuid[] := stepsync._search_anchors();
    v_request stepsync.search_request := p_request;
    v_round integer := 1;
    v_walks integer;
    v_row record;
    w stepsync.search_walk;
    v_out stepsync.search_walk;
BEGIN
    IF v_anchors IS NULL THEN
        RETURN ROW('{}', '{}', '{}', '{}', '{}', '{}', NULL, true, true)::stepsync.search_walk;   -- no shards
    END IF;
    IF p_request.title_query IS NULL THEN
        -- The first round: a quarter more than each worker's share of T.
        v_request := pg_catalog.jsonb_populate_record(p_request, pg_catalog.jsonb_build_object(
                         'target', pg_catalog.ceil(1.25 * p_request.target / pg_catalog.cardinality(v_anchors))));
    END IF;
    LOOP
        v_out := ROW('{}', '{}', '{}', '{}', '{}', '{}', NULL, true, true)::stepsync.search_walk;
        v_walks := 0;
        FOR v_row IN SELECT stepsync._search_local(a.tree_key, v_request) AS walk
                       FROM stepsync.search_anchors AS a
                      WHERE a.tree_key = ANY (v_anchors) LOOP
            w := v_row.walk;
            v_walks := v_walks + 1;
            v_out.ids := v_out.ids || w.ids;
            v_out.tree_keys := v_out.tree_keys || w.tree_keys;
            v_out.tiers := v_out.tiers || w.tiers;
            v_out.usage_counts := v_out.usage_counts || w.usage_counts;
            v_out.ratings := v_out.ratings || w.ratings;
            v_out.classes := v_out.classes || w.classes;
            v_out.done := LEAST(v_out.done, w.done);
            v_out.all_matches := v_out.all_matches AND w.all_matches;
            v_out.sampled := v_out.sampled AND w.sampled;
        END LOOP;
        IF v_walks < pg_catalog.cardinality(v_anchors) THEN
            RETURN stepsync._search_walk(ARRAY['public.step_library'::pg_catalog.regclass], p_request);
        END IF;
        EXIT WHEN v_round = 2 OR p_request.title_query IS NOT NULL OR v_out.all_matches
               OR (SELECT pg_catalog.count(*) FROM pg_catalog.unnest(v_out.classes) AS c (class)
                    WHERE c.class <= v_out.done) > p_request.target;
        v_round := 2;               -- fewer than T at hand up to the least class reached: walk with T itself
        v_request := p_request;
    END LOOP;
    RETURN v_out;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_gather(stepsync.search_request) IS
    'Internal: the matches stepsync._search_walk finds for a search in the library, on Citus gathered from every worker''s walk over its own shards (stepsync._search_local, one command a worker through stepsync.search_anchors); stepsync._search_ranked takes the candidates from them (docs/contract.md §6.8, §11.3).';

REVOKE ALL ON FUNCTION stepsync._search_gather(stepsync.search_request) FROM PUBLIC;
