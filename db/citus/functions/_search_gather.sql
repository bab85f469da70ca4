-- stepsync._search_gather on Citus (docs/contract.md §11.4). The explanation is the comment at the top of
-- its body (\sf shows it). Its result changed in stepsync_0010 (stepsync.search_gathered: the rows as their
-- text, with their ids, instead of stepsync.search_found), and a function's result type can only be dropped:
-- the file drops it first, then that type, which nothing else uses. stepsync_0012: stepsync._search_walk
-- returns a stepsync.search_gathered; p_anchors are the kept ones, which the workers' answers check.
DROP FUNCTION IF EXISTS stepsync._search_gather(stepsync.search_request);
DROP FUNCTION IF EXISTS stepsync._search_gather(stepsync.search_request, uuid[], integer);
DROP TYPE IF EXISTS stepsync.search_found;
CREATE OR REPLACE FUNCTION stepsync._search_gather(p_request stepsync.search_request, p_anchors uuid[],
                                                   p_rows integer)
RETURNS stepsync.search_gathered
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._search_gather(p_request, p_anchors, p_rows): what stepsync._search_walk finds for the search
-- p_request (stepsync._search_ranked makes it; docs/contract.md §6.8) in the library, which on Citus is in
-- the workers' shards of public.step_library (docs/contract.md §11.4) (walk); with p_rows, also the rows of
-- each worker's best p_rows matches (stepsync._search_local says which), read as this function's caller
-- reads them: their ids (found_ids) and each row as the text of a stepsync.search_row (found_rows), which only the
-- rows a search returns are turned back from (stepsync._search_ranked): the workers read more rows than a
-- search returns, and a row type's text is the dearest part of bringing them here (measured: 0.3 ms of a
-- search for 30 rows). p_anchors: the anchors kept in stepsync.search_sample_size (below). Not granted to
-- PUBLIC.
--
-- Each worker walks its own shards (stepsync._search_local), all workers at once, one command each:
-- one query on stepsync.search_anchors filtered on one key a worker (p_anchors), which Citus sends to
-- exactly those workers. A walk over the distributed table instead sends each of its statements to every
-- shard, and each such command costs about 0.4 ms on loopback (measured: a rare word, two statements over
-- 32 shards, 36 ms against 3 ms on one node).
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
-- The anchors are taken as kept, unchecked, and the answers check them: every worker answers with its
-- node's group and the number of shards it walked (stepsync._search_local), and the anchors hold when the
-- answers come from as many nodes as anchors, each once, and together walked every shard of the library
-- once (a shard moved, split or added, a worker added, a shard with two placements: they do not). When
-- they do not hold, or none are kept, stepsync._search_anchors() gives them (it checks the kept ones, and
-- finds others when they no longer hold) and the workers walk again; stepsync.refresh_search_statistics()
-- keeps the new ones, and stepsync doctor says when the kept ones no longer hold. Checking the kept anchors
-- before every search instead cost a catalog query each time (measured: 0.4 ms of a rare word's search at
-- p50, interleaved). If the anchors' rows are missing (a worker returns nothing: stepsync.search_anchors
-- emptied by hand) or the anchors found still do not hold, the coordinator walks the distributed table
-- itself: the same matches, no rows (search_steps reads them), slower; stepsync.refresh_search_statistics()
-- (or an install) puts the anchors back.
DECLARE
    v_request stepsync.search_request := p_request;
    v_anchors uuid[] := NULLIF(p_anchors, '{}');
    v_found_again boolean := false; -- v_anchors are stepsync._search_anchors()'s
    v_fresh uuid[];
    v_round integer := 1;
    v_reached integer;              -- the workers that answered
    v_groups integer[];             -- the node each answer came from
    v_shards integer;               -- the shards they walked, together
    v_answer record;                -- one row of a worker's answer: its walk, or one row it read
    w stepsync.search_walk;         -- a worker's walk
    v_ids uuid[];                   -- the workers' matches, as one walk's
    v_tree_keys uuid[];
    v_tiers integer[];
    v_usage integer[];
    v_ratings numeric[];
    v_classes integer[];
    v_done integer;                 -- the least class any worker reached
    v_all boolean;                  -- every worker has every match
    v_sampled boolean;              -- every worker fetched class 13 first
    v_found_ids uuid[];             -- the rows the workers read: their ids,
    v_found_rows text[];            -- and their text
    v_out stepsync.search_gathered;
BEGIN
    IF v_anchors IS NULL THEN
        v_anchors := stepsync._search_anchors();
        v_found_again := true;
    END IF;
    IF v_anchors IS NULL THEN
        RETURN ROW(ROW('{}', '{}', '{}', '{}', '{}', '{}', NULL, true, true, NULL, 0)::stepsync.search_walk,
                   '{}'::uuid[], '{}'::text[])::stepsync.search_gathered;        -- no shards
    END IF;
    WHILE v_round <= 2 LOOP
        IF v_round = 1 AND p_request.title_query IS NULL THEN
            -- The first round: a quarter more than each worker's share of T.
            v_request := pg_catalog.jsonb_populate_record(p_request, pg_catalog.jsonb_build_object(
                             'target', pg_catalog.ceil(1.25 * p_request.target / pg_catalog.cardinality(v_anchors))));
        END IF;
        -- Each worker's walk (its first row) and the rows it read (one row each), taken as they come: the
        -- workers' matches as one walk's (every match of every worker, up to the least class any reached:
        -- done), the rows' ids and text. Not an aggregate over the distributed query: Citus plans that as a
        -- distributed aggregate, every search, and the walks' arrays, once here, are put together faster in
        -- place than unnested and aggregated again (measured on a rare word: 0.3 ms and 0.35 ms less).
        v_reached := 0;
        v_groups := '{}';
        v_shards := 0;
        v_ids := '{}'; v_tree_keys := '{}'; v_tiers := '{}'; v_usage := '{}'; v_ratings := '{}'; v_classes := '{}';
        v_done := NULL; v_all := true; v_sampled := true;
        v_found_ids := '{}';
        v_found_rows := '{}';
        FOR v_answer IN
            SELECT f.walk, f.found_id, f.found_row
              FROM stepsync.search_anchors AS a
             CROSS JOIN LATERAL stepsync._search_local(a.tree_key, v_request, p_rows) AS f
             WHERE a.tree_key = ANY (v_anchors) LOOP
            IF v_answer.found_id IS NOT NULL THEN
                -- array variables, not the fields of v_out: an array variable grows in place, a field is
                -- copied whole at every row (measured: about 0.1 ms a search for 30 rows)
                v_found_ids := v_found_ids || v_answer.found_id;
                v_found_rows := v_found_rows || v_answer.found_row;
            ELSIF (v_answer.walk).ids IS NOT NULL THEN
                w := v_answer.walk;
                v_reached := v_reached + 1;
                v_groups := v_groups || w.node_group;
                v_shards := v_shards + w.shards;
                v_ids := v_ids || w.ids;
                v_tree_keys := v_tree_keys || w.tree_keys;
                v_tiers := v_tiers || w.tiers;
                v_usage := v_usage || w.usage_counts;
                v_ratings := v_ratings || w.ratings;
                v_classes := v_classes || w.classes;
                v_done := LEAST(v_done, w.done);
                v_all := v_all AND w.all_matches;
                v_sampled := v_sampled AND w.sampled;
            END IF;
        END LOOP;
        IF v_reached < pg_catalog.cardinality(v_anchors)
           OR (SELECT pg_catalog.count(DISTINCT g.g) FROM pg_catalog.unnest(v_groups) AS g (g)) < v_reached
           OR v_shards IS DISTINCT FROM (SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_shard AS s
                                          WHERE s.logicalrelid = 'public.step_library'::pg_catalog.regclass) THEN
            -- The anchors do not hold (the header says when): walk again with stepsync._search_anchors()'s,
            -- unless they are these; else the coordinator walks.
            IF NOT v_found_again THEN
                v_found_again := true;
                v_fresh := stepsync._search_anchors();
                IF v_fresh IS DISTINCT FROM v_anchors AND v_fresh IS NOT NULL THEN
                    v_anchors := v_fresh;
                    v_request := p_request;
                    v_round := 1;
                    CONTINUE;
                END IF;
            END IF;
            RETURN ROW((stepsync._search_walk(ARRAY['public.step_library'::pg_catalog.regclass], p_request)).walk,
                       '{}'::uuid[], '{}'::text[])::stepsync.search_gathered;
        END IF;
        v_out := ROW(ROW(v_ids, v_tree_keys, v_tiers, v_usage, v_ratings, v_classes, v_done, v_all,
                         v_sampled, NULL, v_shards)::stepsync.search_walk, v_found_ids,
                     v_found_rows)::stepsync.search_gathered;
        EXIT WHEN p_request.title_query IS NOT NULL OR v_all
               OR (SELECT pg_catalog.count(*) FROM pg_catalog.unnest(v_classes) AS c (class)
                    WHERE c.class <= v_done) > p_request.target;
        v_request := p_request;     -- fewer than T at hand up to the least class reached: walk with T itself
        v_round := v_round + 1;
    END LOOP;
    RETURN v_out;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_gather(stepsync.search_request, uuid[], integer) IS
    'Internal: the matches stepsync._search_walk finds for a search in the library, on Citus gathered from every worker''s walk over its own shards (stepsync._search_local, one command a worker through stepsync.search_anchors), with the rows of each worker''s best matches when asked (their ids, and each row''s text); stepsync._search_ranked takes the candidates from them (docs/contract.md §6.8, §11.4).';

REVOKE ALL ON FUNCTION stepsync._search_gather(stepsync.search_request, uuid[], integer) FROM PUBLIC;
