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
-- one query on stepsync.search_anchors filtered on one key a worker (stepsync._search_anchor, taken in
-- order until every worker that holds shards of the library has one), which Citus sends to exactly those
-- workers. A walk over the distributed table instead sends each of its statements to every shard, and
-- each such command costs about 0.4 ms on loopback (measured: a rare word, two statements over 32
-- shards, 36 ms against 3 ms on one node).
--
-- The same candidates as one walk over the whole library: every worker walks with the same target T
-- and stops after the first class where its own matches are more than T. Where the whole library's are
-- more than T is then at or before that class, so every match of the classes up to the smallest class a
-- worker stopped at (done, the least of the workers') is at hand, and more than T of them: the cut of
-- stepsync._search_ranked is among them. Every worker that did not stop has all its matches.
-- The title rule's fetch (p_request.title_query) goes to every worker the same way.
--
-- If the anchors are missing (a worker returns nothing: stepsync.search_anchors emptied by hand, or a
-- worker added since the install), the coordinator walks the distributed table itself: the same rows,
-- slower; `stepsync install` puts the anchors back.
DECLARE
    v_groups integer[];             -- the groups (nodes) that hold shards of public.step_library
    v_reached integer[] := '{}';
    v_anchors uuid[] := '{}';
    v_key uuid;
    v_group integer;
    v_walks integer := 0;
    v_row record;
    w stepsync.search_walk;
    v_out stepsync.search_walk := ROW('{}', '{}', '{}', '{}', '{}', '{}', NULL, true, true)::stepsync.search_walk;
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT p.groupid) INTO v_groups
      FROM pg_catalog.pg_dist_shard AS s
      JOIN pg_catalog.pg_dist_placement AS p ON p.shardid = s.shardid
     WHERE s.logicalrelid = 'public.step_library'::pg_catalog.regclass;
    IF v_groups IS NULL THEN
        RETURN v_out;               -- no shards: no matches
    END IF;
    FOR n IN 0..4095 LOOP
        v_key := stepsync._search_anchor(n);
        v_group := (SELECT p.groupid FROM pg_catalog.pg_dist_placement AS p
                     WHERE p.shardid = pg_catalog.get_shard_id_for_distribution_column('public.step_library', v_key));
        IF v_group <> ALL (v_reached) THEN
            v_reached := v_reached || v_group;
            v_anchors := v_anchors || v_key;
            EXIT WHEN pg_catalog.cardinality(v_reached) >= pg_catalog.cardinality(v_groups);
        END IF;
    END LOOP;
    FOR v_row IN SELECT stepsync._search_local(a.tree_key, p_request) AS walk
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
    IF v_walks < pg_catalog.cardinality(v_groups) THEN
        RETURN stepsync._search_walk(ARRAY['public.step_library'::pg_catalog.regclass], p_request);
    END IF;
    RETURN v_out;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_gather(stepsync.search_request) IS
    'Internal: the matches stepsync._search_walk finds for a search in the library, on Citus gathered from every worker''s walk over its own shards (stepsync._search_local, one command a worker through stepsync.search_anchors); stepsync._search_ranked takes the candidates from them (docs/contract.md §6.8, §11.3).';

REVOKE ALL ON FUNCTION stepsync._search_gather(stepsync.search_request) FROM PUBLIC;
