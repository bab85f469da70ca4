-- stepsync._search_ranked on Citus: the distributed variant of db/functions/_search_ranked.sql (docs/contract.md
-- §6.8, §11.4): the same rule, the same checks, the same rows, with the walk over the library done by every
-- worker over its own shards (stepsync._search_gather); and each match's tree_key in the result, by which
-- search_steps reads the rows. The explanation is the comment at the top of its body (\sf shows it).
-- Its result gained tree_key in stepsync_0008, and a function's result type can only be dropped, not replaced.
DROP FUNCTION IF EXISTS stepsync._search_ranked(uuid, text, text, text, uuid, integer);
CREATE OR REPLACE FUNCTION stepsync._search_ranked(
    p_user_id uuid,
    p_query text,
    p_step_type text,
    p_group_label text,
    p_source_tree_id uuid,
    p_limit integer
)
RETURNS TABLE (id uuid, tier integer, usage_count integer, rating numeric, complete boolean, tree_key uuid)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
ROWS 20         -- what a search returns by default: search_steps then reads each row by its key
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET enable_seqscan = off
SET jit = off  -- with sequential scans off, a catalog look-up's cost estimate passes JIT's threshold (measured: 180 ms)
AS $function$
-- stepsync._search_ranked(...): the work of stepsync.search_steps (its arguments, the rule in its
-- body): the matches it returns, best first, as (id, tier, usage_count, rating, complete, tree_key: the
-- row's distribution key); tier 4
-- is a match on the title alone, 3 on title and group label, 2 with the instructions, 1 anywhere.
-- search_steps reads their rows with its caller's rights.
--
-- Why SECURITY DEFINER: PostgreSQL will not use an index for a condition whose function is not
-- leakproof (the full-text match @@ is not) on a table where row-level security applies to the
-- reader, so under any policy on step_library a search as the caller would read the whole table.
-- Run as the owner, the index works as without row-level security, and this function applies the
-- rules itself:
--  * the caller (the role that called search_steps: the SET ROLE in force, or the session's user)
--    must hold SELECT on public.step_library, as a search with its own rights would (42501);
--  * when stepsync enforces the library's rule as row-level security (stepsync.row_security has a
--    VIEWER, docs/contract.md §12.2) and the caller is not the owner (or a member of it), a
--    superuser or a BYPASSRLS role, a match must also be visible to the user the request acts for
--    (stepsync.current_viewer), whatever p_user_id says;
--  * it reads as the sync (stepsync.sync_writing = 'on', restored before it returns), so that the
--    stepsync_sync policies let it past the application's row-level security (§12.1);
--  * it returns ids and ranks only; search_steps then reads the rows through the caller's rights,
--    so the application's own policies on step_library and trees (the flow's name) hold too.
--
-- How (the rule decides the result; the walk only decides the cost): stepsync._search_gather has every
-- worker walk its own shards for the matches (stepsync._search_walk, the walk of one node's
-- stepsync._search_ranked over the tables it is given; its body says how), from the first popularity
-- class on, until more than T are in hand; the cut, the title rule and the order are taken here from
-- what they found. Every statement is planned for its own values (plan_cache_mode), and without
-- sequential scans (enable_seqscan).
#variable_conflict use_column
DECLARE
    c_lexeme constant text := $re$'(?:[^']|'')*'$re$;
    -- The limits of a query (docs/contract.md §6.8): characters, and terms (lexemes) once parsed.
    c_max_length constant integer := 256;
    c_max_terms constant integer := 16;
    v_setting text := pg_catalog.current_setting('stepsync.search_candidates', true);
    v_override text := pg_catalog.current_setting('stepsync.search_estimate', true);
    v_bound integer := 200;
    v_target bigint;
    v_limit bigint := COALESCE(p_limit, 2147483647);
    v_query pg_catalog.tsquery;
    v_text text;
    v_q_a pg_catalog.tsquery;
    v_q_ab pg_catalog.tsquery;
    v_q_abc pg_catalog.tsquery;
    v_account uuid;
    v_request stepsync.search_request;
    w stepsync.search_walk;         -- what the walk found
    t stepsync.search_walk;         -- the title rule's matches
    v_ids uuid[];
    v_keys uuid[];                  -- each match's tree_key, on Citus (stepsync.search_steps reads the rows by it)
    v_tiers integer[];
    v_usage integer[];
    v_ratings numeric[];
    v_classes integer[];
    v_title_skeleton text;
    v_titles boolean := false;      -- every visible title match is a candidate
    v_cut integer;
    v_complete boolean;
    -- The role that called search_steps (inside this SECURITY DEFINER function current_user is the owner).
    v_caller name := COALESCE(NULLIF(pg_catalog.current_setting('role'), 'none'), session_user);
    v_enforce boolean;              -- stepsync's row-level security holds for the caller
    v_viewer uuid;
    v_viewer_account uuid;
    v_was_writing text := pg_catalog.current_setting('stepsync.sync_writing', true);
BEGIN
    IF NOT pg_catalog.has_table_privilege(v_caller, 'public.step_library', 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table step_library'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'search_steps reads the library with the rights of its caller.';
    END IF;
    v_enforce := (SELECT r.viewer IS NOT NULL FROM stepsync.row_security AS r)
                 AND NOT stepsync._exempt_from_row_security(v_caller);
    IF v_enforce THEN
        v_viewer := stepsync.current_viewer();
        v_viewer_account := stepsync.current_viewer_account();
    END IF;
    IF p_limit < 0 THEN
        RAISE EXCEPTION 'LIMIT must not be negative'
            USING ERRCODE = 'invalid_row_count_in_limit_clause',
                  HINT = 'Pass a limit of 0 or more, or null for every match.';
    END IF;
    -- The limits (the COMMENT states them): a query's cost grows with its terms, so a query beyond them is
    -- refused before it is parsed, rather than answered in seconds.
    IF pg_catalog.length(p_query) > c_max_length THEN
        RAISE EXCEPTION 'search query too long: % characters (at most %)', pg_catalog.length(p_query), c_max_length
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = pg_catalog.format('Search with at most %s characters and %s terms.', c_max_length,
                                           c_max_terms);
    END IF;
    v_query := pg_catalog.websearch_to_tsquery('pg_catalog.english', COALESCE(p_query, ''));
    IF pg_catalog.numnode(v_query) = 0 OR p_limit = 0 THEN
        RETURN;                     -- empty or only stop words
    END IF;
    v_text := v_query::text;
    IF (SELECT pg_catalog.count(*) FROM pg_catalog.regexp_matches(v_text, c_lexeme, 'g')) > c_max_terms THEN
        RAISE EXCEPTION 'search query has too many terms: % (at most %)',
            (SELECT pg_catalog.count(*) FROM pg_catalog.regexp_matches(v_text, c_lexeme, 'g')), c_max_terms
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = 'Every word counts, the words of phrases and excluded words included; stop words do not.',
                  HINT = pg_catalog.format('Search with at most %s terms.', c_max_terms);
    END IF;
    PERFORM pg_catalog.set_config('stepsync.sync_writing', 'on', true);   -- reads as the sync (docs/contract.md §12.1)
    IF v_setting ~ '^[0-9]{1,9}$' THEN
        v_bound := GREATEST(v_setting::integer, 1);
    END IF;
    v_target := GREATEST(v_bound, v_limit);
    -- The query on the title alone (A), on title and group label (AB), and with the instructions (ABC).
    v_q_a := pg_catalog.regexp_replace(v_text, '(' || c_lexeme || ')', '\1:A', 'g')::pg_catalog.tsquery;
    v_q_ab := pg_catalog.regexp_replace(v_text, '(' || c_lexeme || ')', '\1:AB', 'g')::pg_catalog.tsquery;
    v_q_abc := pg_catalog.regexp_replace(v_text, '(' || c_lexeme || ')', '\1:ABC', 'g')::pg_catalog.tsquery;
    v_account := (SELECT u.account_id FROM public.users AS u WHERE u.id = p_user_id);

    -- The walk: its request, with the statistics it estimates from (stepsync._search_statistics): of the most
    -- common elements, those in the query's text (the walk looks up only the query's terms, and the request
    -- travels to every worker).
    SELECT p_user_id, v_account, v_query, v_q_a, v_q_ab, v_q_abc, p_step_type, p_group_label, p_source_tree_id,
           v_target, v_enforce, v_viewer, v_viewer_account, f.elems, f.freqs, st.reltuples,
           CASE WHEN v_override ~ '^[0-9]{1,12}$' THEN v_override::double precision END,
           NULL::pg_catalog.tsquery, NULL::integer, NULL::boolean
      INTO v_request
      FROM stepsync._search_statistics() AS st,
           LATERAL (SELECT pg_catalog.array_agg(e.elem), pg_catalog.array_agg(e.freq)
                      FROM ROWS FROM (pg_catalog.unnest(st.most_common_elems),
                                      pg_catalog.unnest(st.most_common_elem_freqs)) AS e (elem, freq)
                     WHERE pg_catalog.strpos(v_text, e.elem) > 0) AS f (elems, freqs);
    w := stepsync._search_gather(v_request);
    v_ids := w.ids;
    v_keys := w.tree_keys;
    v_tiers := w.tiers;
    v_usage := w.usage_counts;
    v_ratings := w.ratings;
    v_classes := w.classes;
    -- Complete when every match is at hand and no more than T (or all of one flow's); otherwise the rule's
    -- candidates: the cut is the first class at which the matches are more than T (every match of classes
    -- 1 to w.done is at hand, and more than T of them).
    v_complete := p_source_tree_id IS NOT NULL OR (w.all_matches AND pg_catalog.cardinality(v_ids) <= v_target);
    IF NOT v_complete THEN
        SELECT pg_catalog.min(y.class) INTO v_cut
          FROM (SELECT z.class, pg_catalog.sum(z.n) OVER (ORDER BY z.class) AS running
                  FROM (SELECT c.class, pg_catalog.count(*) AS n
                          FROM pg_catalog.unnest(v_classes) AS c (class)
                         WHERE c.class <= w.done GROUP BY c.class) AS z) AS y
         WHERE y.running > v_target;
    END IF;
    IF v_text !~ ' [|] ' THEN
        SELECT pg_catalog.string_agg(''' t' || pg_catalog.substr(m[1], 2), ' & ')
          INTO v_title_skeleton
          FROM pg_catalog.unnest(pg_catalog.string_to_array(v_text, ' & ')) AS i (item),
               LATERAL pg_catalog.regexp_matches(i.item, '(' || c_lexeme || ')', 'g') AS m
         WHERE i.item !~ '^!';
    ELSIF v_text !~ '!' THEN
        v_title_skeleton := pg_catalog.regexp_replace(pg_catalog.regexp_replace(v_text, '<[0-9-]+>', '&', 'g'),
                                                      $re$'((?:[^']|'')*)'$re$, $re$' t\1'$re$, 'g');
    END IF;
    IF v_cut IS NOT NULL
       AND (SELECT pg_catalog.count(*)
              FROM ROWS FROM (pg_catalog.unnest(v_tiers), pg_catalog.unnest(v_classes)) AS u (tier, class)
             WHERE u.tier = 4 AND u.class <= LEAST(v_cut, 12)) < v_limit THEN
        -- Fewer than p_limit title matches among the candidates used 4 times or more: every visible title match
        -- becomes a candidate too. Found through the title keys (' t<lexeme>': the query's terms in the title,
        -- phrases as plain ANDs) by the walk, in the classes it did not fetch; not for a query with an OR and an
        -- excluded term, or only excluded terms.
        v_titles := v_title_skeleton IS NOT NULL;
        IF v_titles AND NOT w.all_matches THEN
            t := stepsync._search_gather(pg_catalog.jsonb_populate_record(v_request, pg_catalog.jsonb_build_object(
                     'title_query', v_title_skeleton, 'title_after', w.done, 'title_sampled', w.sampled)));
            v_ids := v_ids || t.ids;
            v_keys := v_keys || t.tree_keys;
            v_tiers := v_tiers || t.tiers;
            v_usage := v_usage || t.usage_counts;
            v_ratings := v_ratings || t.ratings;
            v_classes := v_classes || t.classes;
        END IF;
    END IF;

    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN QUERY
    SELECT c.id, c.tier, c.usage_count, c.rating, v_complete, c.tree_key
      FROM (SELECT DISTINCT ON (u.tier, u.usage_count, u.rating, u.id) u.id, u.tier, u.usage_count, u.rating,
                   u.tree_key
              FROM ROWS FROM (pg_catalog.unnest(v_ids), pg_catalog.unnest(v_tiers), pg_catalog.unnest(v_usage),
                              pg_catalog.unnest(v_ratings), pg_catalog.unnest(v_classes), pg_catalog.unnest(v_keys))
                   AS u (id, tier, usage_count, rating, class, tree_key)
             WHERE v_cut IS NULL OR u.class <= v_cut OR (v_titles AND u.tier = 4)
             ORDER BY u.tier DESC, u.usage_count DESC, u.rating DESC NULLS LAST, u.id
             LIMIT p_limit) AS c
     ORDER BY c.tier DESC, c.usage_count DESC, c.rating DESC NULLS LAST, c.id;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_ranked(uuid, text, text, text, uuid, integer) IS
    'Internal: the matches stepsync.search_steps returns, best first, as ids and ranks; runs as the owner so that the full-text index works under row-level security, and applies the caller''s rights and stepsync''s row-level security itself (docs/contract.md §6.8, §12.2).';
