-- stepsync._search_ranked: the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_ranked(
    p_user_id uuid,
    p_query text,
    p_step_type text,
    p_group_label text,
    p_source_tree_id uuid,
    p_limit integer
)
RETURNS TABLE (id uuid, tier integer, usage_count integer, rating numeric, complete boolean)
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
-- body): the matches it returns, best first, as (id, tier, usage_count, rating, complete); tier 4
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
-- How (the rule decides the result; this only decides the cost):
-- public.step_library.search_vector holds the weighted text and, per way of
-- seeing the step, an audience key combined with its popularity class and
-- kind (stepsync.tg_step_library__search_vector), all in the GIN index
-- step_library_search_vector_idx. The index condition is the query without
-- its excluded terms and without terms in more than 15% of the rows (skipping
-- through such a posting list costs more than checking the rows), but for the
-- words of a phrase: a phrase holds in few of the rows that have its words, so
-- they are checked in the index however common; the rows fetched are checked
-- against the whole query. A query whose index condition
-- is estimated (from the column's statistics) in few rows is answered by one
-- scan of it (path A). Otherwise the classes are walked in batches, each one
-- index scan of the condition AND the viewer's audience keys of those classes,
-- so a common word costs what its most used matches cost (path B); part 0 is
-- looked at first, and when it shows the walk would go through most parts,
-- every row matching the condition is fetched in one scan instead (rest).
-- Tiers come from the stored weights: nothing is parsed again. Every statement
-- is planned for its own values (plan_cache_mode): a generic plan of the
-- index scans, which cannot see how rare the query is, reads far more rows;
-- and without sequential scans (enable_seqscan): when the audience keys of a
-- batch are among the column's most common elements the planner would read
-- the whole table for each batch, which the walk exists to avoid.
#variable_conflict use_column
DECLARE
    -- Path A when the index condition is estimated in at most c_rare rows; it then reads at most c_probe of them.
    c_rare constant double precision := 3000;
    c_probe constant integer := 4000;
    -- The rest at once only when the index condition is estimated in at most this many rows.
    c_rest_max constant double precision := 40000;
    -- Terms in more than this share of the rows are checked on the rows only, but for the big classes (from
    -- class 11, 8 to 15 uses, on), where the index skips through them cheaply, when in at most c_dense_big.
    c_dense constant real := 0.15;
    c_dense_big constant real := 0.5;
    -- The words of a phrase join the condition of every batch when in at most c_dense_phrase of the rows: the
    -- phrase holds in few of the rows that have its words, and every row the index lets through is fetched.
    c_dense_phrase constant real := 0.95;
    -- Batches of the walk: the last class of each (classes 1-12 by usage, 13-76 the parts).
    c_lasts constant integer[] := ARRAY[6, 8, 9, 10, 11, 12, 13, 14, 16, 20, 28, 44, 76];
    -- ... and when dense terms join the condition (each batch then reads their posting lists once): fewer.
    c_lasts_dense constant integer[] := ARRAY[6, 8, 9, 10, 14, 20, 28, 44, 76];
    -- ... and with the words of a phrase in every batch: the classes used 16 times or more in one.
    c_lasts_phrase constant integer[] := ARRAY[10, 12, 14, 20, 28, 44, 76];
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
    v_mce text[];
    v_mcf real[];
    v_item text;
    v_token text;
    v_freq real;
    v_share double precision;
    v_skeleton text;
    v_words text;                   -- every word the query requires (AND), common ones included
    v_words_share double precision; -- the share of rows holding them all, as if independent
    v_words_required boolean := false;  -- v_words has a word the query requires
    v_index pg_catalog.tsquery;
    v_dense text;
    v_index_big pg_catalog.tsquery;
    v_dense_phrase text;
    v_index_small pg_catalog.tsquery;
    v_cond pg_catalog.tsquery;
    v_lasts integer[];
    v_yield numeric;
    v_parts integer;
    v_estimate double precision;
    v_reltuples double precision;
    v_audiences text[];
    v_kinds text[];
    v_keys pg_catalog.tsquery;
    v_count bigint;
    v_ids uuid[] := '{}'::uuid[];
    v_tiers integer[] := '{}'::integer[];
    v_usage integer[] := '{}'::integer[];
    v_ratings numeric[] := '{}'::numeric[];
    v_classes integer[] := '{}'::integer[];
    b_ids uuid[];
    b_tiers integer[];
    b_usage integer[];
    b_ratings numeric[];
    b_classes integer[];
    v_sample integer;               -- rows found in class 13 when it was fetched first (the sample)
    v_all boolean := false;         -- every visible match is in the arrays
    v_title_skeleton text;
    v_titles boolean := false;      -- every visible title match is a candidate
    v_batch integer;
    v_first integer;
    v_last integer;
    v_done integer := 0;            -- classes 1..v_done are in the arrays (and class 13 when v_sample is set)
    v_rest boolean := false;
    v_cut integer;
    v_complete boolean := true;
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
    v_audiences := ARRAY[' p'] || CASE WHEN v_account IS NOT NULL THEN ARRAY[' a' || v_account::text] END
                   || CASE WHEN p_user_id IS NOT NULL THEN ARRAY[' u' || p_user_id::text] END;
    v_kinds := CASE WHEN p_step_type IS NULL THEN ARRAY['action', 'solution']
                    WHEN p_step_type = 'solution' THEN ARRAY['solution'] ELSE ARRAY['action'] END;

    -- The index condition (v_skeleton: implied by the query, without excluded and dense terms) and how many rows
    -- it matches (v_estimate), from the share of rows each term is in (the column's most common elements; a term
    -- that is not among them counts as rare) and the table's size (stepsync._search_statistics).
    SELECT st.most_common_elems, st.most_common_elem_freqs, st.reltuples
      INTO v_mce, v_mcf, v_reltuples
      FROM stepsync._search_statistics() AS st;
    IF v_text ~ ' [|] ' THEN
        v_skeleton := v_text;       -- with an OR, the whole query
        v_share := 0;
        FOR v_token IN SELECT m[1] FROM pg_catalog.regexp_matches(v_text, '(' || c_lexeme || ')', 'g') AS m LOOP
            v_share := v_share + COALESCE(v_mcf[pg_catalog.array_position(v_mce,
                           pg_catalog.replace(pg_catalog.replace(pg_catalog.substr(v_token, 2,
                               pg_catalog.length(v_token) - 2), '''''', ''''), '\\', '\'))], 0);
        END LOOP;
    ELSE
        FOREACH v_item IN ARRAY pg_catalog.string_to_array(v_text, ' & ') LOOP
            IF v_item ~ ('^!' || c_lexeme || '$') THEN
                -- An excluded word narrows nothing in the walk, but GIN can rule it out from its own
                -- posting list: it joins v_words (below), at the share of rows without it.
                v_words := pg_catalog.concat_ws(' & ', v_words, v_item);
                v_words_share := COALESCE(v_words_share, 1) * (1 - COALESCE(v_mcf[pg_catalog.array_position(v_mce,
                                     pg_catalog.replace(pg_catalog.replace(pg_catalog.substr(v_item, 3,
                                         pg_catalog.length(v_item) - 3), '''''', ''''), '\\', '\'))], 0));
            END IF;
            CONTINUE WHEN v_item ~ '^!';    -- an excluded term or phrase narrows nothing in the walk's condition
            FOR v_token IN SELECT m[1] FROM pg_catalog.regexp_matches(v_item, '(' || c_lexeme || ')', 'g') AS m LOOP
                v_freq := COALESCE(v_mcf[pg_catalog.array_position(v_mce,
                              pg_catalog.replace(pg_catalog.replace(pg_catalog.substr(v_token, 2,
                                  pg_catalog.length(v_token) - 2), '''''', ''''), '\\', '\'))], 0);
                v_words := pg_catalog.concat_ws(' & ', v_words, v_token);
                v_words_share := COALESCE(v_words_share, 1) * v_freq;
                v_words_required := true;
                IF v_freq <= c_dense THEN
                    v_skeleton := pg_catalog.concat_ws(' & ', v_skeleton, v_token);
                    v_share := COALESCE(v_share, 1) * v_freq;
                ELSIF v_item ~ ' <[0-9-]+> ' AND v_freq <= c_dense_phrase THEN
                    v_dense := pg_catalog.concat_ws(' & ', v_dense, v_token);
                    v_dense_phrase := pg_catalog.concat_ws(' & ', v_dense_phrase, v_token);
                ELSIF v_freq <= c_dense_big THEN
                    v_dense := pg_catalog.concat_ws(' & ', v_dense, v_token);
                END IF;
            END LOOP;
        END LOOP;
    END IF;
    -- Several common words together can be rare although none of them is (and so can a common word without
    -- others): when the share of rows that hold them all and none of the excluded words (as if they were
    -- independent) puts them in few rows, every one of them joins the condition, so that one scan (path A)
    -- reads each posting list once rather than a walk checking row after row. GIN evaluates such a
    -- condition exactly (no weights, no phrase), excluded words included.
    IF v_words_required AND v_words_share * v_reltuples <= c_rare AND v_words IS DISTINCT FROM v_skeleton THEN
        v_skeleton := v_words;
        v_share := v_words_share;
    END IF;
    v_estimate := LEAST(v_share, 1) * v_reltuples;
    IF v_override ~ '^[0-9]{1,12}$' THEN
        v_estimate := v_override::double precision;     -- tests: take path A, the sample or the plain walk
    END IF;
    v_index := v_skeleton::pg_catalog.tsquery;
    v_index_big := CASE WHEN v_dense IS NULL THEN v_index WHEN v_index IS NULL THEN v_dense::pg_catalog.tsquery
                        ELSE v_index && v_dense::pg_catalog.tsquery END;
    v_index_small := CASE WHEN v_dense_phrase IS NULL THEN v_index WHEN v_index IS NULL
                          THEN v_dense_phrase::pg_catalog.tsquery ELSE v_index && v_dense_phrase::pg_catalog.tsquery END;

    IF p_source_tree_id IS NOT NULL OR (v_skeleton IS NOT NULL AND v_estimate <= c_rare) THEN
        -- One flow, or path A: the rows matching the index condition (at most c_probe of them for path A).
        SELECT pg_catalog.count(*),
               COALESCE(pg_catalog.array_agg(m.id) FILTER (WHERE m.visible), '{}'),
               pg_catalog.array_agg(stepsync._match_tier(m.search_vector, v_q_a, v_q_ab, v_q_abc)) FILTER (WHERE m.visible),
               pg_catalog.array_agg(m.usage_count) FILTER (WHERE m.visible),
               pg_catalog.array_agg(m.rating) FILTER (WHERE m.visible),
               pg_catalog.array_agg(m.class) FILTER (WHERE m.visible)
          INTO v_count, b_ids, b_tiers, b_usage, b_ratings, b_classes
          FROM (SELECT s.id, s.usage_count, s.rating, s.search_vector,
                       stepsync._may_see(s.visibility, s.account_id, s.created_by, p_user_id, v_account)
                       AND (NOT v_enforce OR stepsync._may_see(s.visibility, s.account_id, s.created_by, v_viewer,
                                                               v_viewer_account))
                       AND (p_step_type IS NULL OR s.step_type = p_step_type)
                       AND (p_group_label IS NULL OR s.content ->> 'group_label' = p_group_label)
                       AND pg_catalog.ts_match_vq(s.search_vector, v_query) AS visible,
                       stepsync._popularity_class(s.usage_count, s.id) AS class
                  FROM public.step_library AS s
                 WHERE s.is_active
                   AND (p_source_tree_id IS NULL OR s.source_tree_id = p_source_tree_id)
                   AND (p_source_tree_id IS NOT NULL OR s.search_vector @@ v_index)
                 LIMIT CASE WHEN p_source_tree_id IS NULL THEN c_probe + 1 END) AS m;
        IF p_source_tree_id IS NOT NULL OR v_count <= c_probe THEN
            v_ids := b_ids;
            v_tiers := b_tiers;
            v_usage := b_usage;
            v_ratings := b_ratings;
            v_classes := b_classes;
            v_all := true;
            v_complete := p_source_tree_id IS NOT NULL OR pg_catalog.cardinality(v_ids) <= v_target;
        END IF;
    END IF;

    -- Path B: the classes in order, a batch at a time, through the viewer's audience keys. When the condition is
    -- estimated in few enough rows to fetch them all, part 0 (class 13: a sample of 1/64 of the steps used fewer
    -- than 4 times) is fetched first, and if 64 parts like it would not hold more than T matches, everything is
    -- fetched at once instead (the rest).
    -- Batches: the fixed ones; with dense terms in the condition (each batch then reads their long posting
    -- lists once), after the first part as many parts as the matches per part seen so far (v_yield) say are
    -- still needed, with a quarter more.
    v_batch := CASE WHEN v_all THEN -1 WHEN v_index IS NOT NULL AND v_estimate <= c_rest_max THEN 0 ELSE 1 END;
    v_lasts := CASE WHEN v_dense_phrase IS NOT NULL THEN c_lasts_phrase WHEN v_dense IS NULL THEN c_lasts
                    ELSE c_lasts_dense END;
    v_first := 1;
    WHILE v_batch >= 0 AND v_first <= 76 AND NOT v_rest LOOP
        IF v_batch = 0 THEN
            v_first := 13;
            v_last := 13;
        ELSIF v_first <= 13 OR v_yield IS NULL OR v_dense IS NULL THEN
            v_last := (SELECT pg_catalog.min(l.last) FROM pg_catalog.unnest(v_lasts) AS l (last)
                        WHERE l.last >= v_first);
        ELSE
            v_last := LEAST(76, v_first - 1 + GREATEST(LEAST(pg_catalog.ceil(1.25 * (v_target + 1
                          - (SELECT pg_catalog.count(*) FROM pg_catalog.unnest(v_classes) AS c (class)
                              WHERE c.class < v_first)) / GREATEST(v_yield, 0.5)), 76)::integer, 1));
        END IF;
        -- The batch's audience keys (class 13 left out when the sample holds it already).
        SELECT ('(' || pg_catalog.string_agg('''' || a.audience || ' '
                                             || stepsync._class_key(o)
                                             || ' ' || k.kind || '''', ' | ') || ')')::pg_catalog.tsquery
          INTO v_keys
          FROM pg_catalog.generate_series(v_first, v_last) AS o,
               pg_catalog.unnest(v_audiences) AS a (audience),
               pg_catalog.unnest(v_kinds) AS k (kind)
         WHERE o <> 13 OR v_sample IS NULL;
        IF v_keys IS NULL THEN
            b_ids := '{}';          -- already in the arrays
            b_tiers := NULL; b_usage := NULL; b_ratings := NULL; b_classes := NULL;
        ELSE
            -- The words first: GIN evaluates the left side of an AND first, and the words rule out most of the rows
            -- the audience keys let through in one or two look-ups, where the keys are dozens of ORs.
            v_cond := CASE WHEN v_first >= 11 THEN v_index_big ELSE v_index_small END;
            v_cond := CASE WHEN v_cond IS NULL THEN v_keys ELSE v_cond && v_keys END;
            SELECT COALESCE(pg_catalog.array_agg(s.id), '{}'), pg_catalog.array_agg(x.tier),
                   pg_catalog.array_agg(s.usage_count), pg_catalog.array_agg(s.rating), pg_catalog.array_agg(x.class)
              INTO b_ids, b_tiers, b_usage, b_ratings, b_classes
              FROM public.step_library AS s,
                   LATERAL (SELECT stepsync._match_tier(s.search_vector, v_q_a, v_q_ab, v_q_abc) AS tier,
                                   stepsync._popularity_class(s.usage_count, s.id) AS class) AS x
             WHERE s.is_active
               AND s.search_vector @@ v_cond
               AND pg_catalog.ts_match_vq(s.search_vector, v_query)
               AND stepsync._may_see(s.visibility, s.account_id, s.created_by, p_user_id, v_account)
               AND (NOT v_enforce OR stepsync._may_see(s.visibility, s.account_id, s.created_by, v_viewer, v_viewer_account))
               AND (p_step_type IS NULL OR s.step_type = p_step_type)
               AND (p_group_label IS NULL OR s.content ->> 'group_label' = p_group_label);
        END IF;
        v_ids := v_ids || b_ids;
        v_tiers := v_tiers || COALESCE(b_tiers, '{}');
        v_usage := v_usage || COALESCE(b_usage, '{}');
        v_ratings := v_ratings || COALESCE(b_ratings, '{}');
        v_classes := v_classes || COALESCE(b_classes, '{}');
        IF v_batch = 0 THEN
            v_sample := pg_catalog.cardinality(b_ids);
            v_yield := v_sample;
            v_rest := 64 * v_sample <= v_target;
            v_first := 1;
            v_batch := 1;
            CONTINUE;
        END IF;
        v_done := v_last;
        IF v_last >= 13 THEN        -- matches per part in this batch (the sample's part counted apart)
            v_parts := v_last - GREATEST(v_first, 13) + 1
                       - CASE WHEN v_sample IS NOT NULL AND v_first <= 13 THEN 1 ELSE 0 END;
            IF v_parts > 0 THEN
                v_yield := (SELECT pg_catalog.count(*) FROM pg_catalog.unnest(b_classes) AS c (class)
                             WHERE c.class >= 13) / v_parts::numeric;
            END IF;
        END IF;
        IF (SELECT pg_catalog.count(*) FROM pg_catalog.unnest(v_classes) AS c (class) WHERE c.class <= v_done)
           > v_target THEN
            -- Enough candidates: the cut is the first class at which they are more than T.
            v_complete := false;
            SELECT pg_catalog.min(y.class) INTO v_cut
              FROM (SELECT z.class, pg_catalog.sum(z.n) OVER (ORDER BY z.class) AS running
                      FROM (SELECT c.class, pg_catalog.count(*) AS n
                              FROM pg_catalog.unnest(v_classes) AS c (class)
                             WHERE c.class <= v_done GROUP BY c.class) AS z) AS y
             WHERE y.running > v_target;
            EXIT;
        ELSIF v_first <= 13 AND v_last >= 13 AND v_index IS NOT NULL AND v_estimate <= c_rest_max THEN
            -- Part 0 says how many parts are still needed. Walking one costs about what fetching 1/4000 of the
            -- table's rows costs (it reads the part's audience keys), fetching all matches of the condition what
            -- fetching that many rows does: take the cheaper.
            v_rest := COALESCE(LEAST(pg_catalog.ceil((v_target + 1 - pg_catalog.cardinality(v_ids))
                                                     / GREATEST(v_yield, 0.5)), 63) * v_reltuples / 4000 > v_estimate,
                               false);
        END IF;
        v_first := v_last + 1;
        v_batch := v_batch + 1;
    END LOOP;
    IF NOT v_all AND NOT v_rest AND v_cut IS NULL THEN
        v_all := true;              -- the walk went through every class
    END IF;

    IF v_rest THEN
        -- The rest at once: every visible row matching the query in the classes not yet in the arrays.
        SELECT COALESCE(pg_catalog.array_agg(m.id), '{}'),
               pg_catalog.array_agg(stepsync._match_tier(m.search_vector, v_q_a, v_q_ab, v_q_abc)),
               pg_catalog.array_agg(m.usage_count), pg_catalog.array_agg(m.rating), pg_catalog.array_agg(m.class)
          INTO b_ids, b_tiers, b_usage, b_ratings, b_classes
          FROM (SELECT s.id, s.usage_count, s.rating, s.search_vector,
                       stepsync._popularity_class(s.usage_count, s.id) AS class
                  FROM public.step_library AS s
                 WHERE s.is_active
                   AND s.search_vector @@ v_index
                   AND pg_catalog.ts_match_vq(s.search_vector, v_query)
                   AND stepsync._may_see(s.visibility, s.account_id, s.created_by, p_user_id, v_account)
                   AND (NOT v_enforce OR stepsync._may_see(s.visibility, s.account_id, s.created_by, v_viewer, v_viewer_account))
                   AND (p_step_type IS NULL OR s.step_type = p_step_type)
                   AND (p_group_label IS NULL OR s.content ->> 'group_label' = p_group_label)) AS m
         WHERE m.class > v_done AND (v_sample IS NULL OR m.class <> 13);
        v_ids := v_ids || b_ids;
        v_tiers := v_tiers || COALESCE(b_tiers, '{}');
        v_usage := v_usage || COALESCE(b_usage, '{}');
        v_ratings := v_ratings || COALESCE(b_ratings, '{}');
        v_classes := v_classes || COALESCE(b_classes, '{}');
        v_all := true;
    END IF;

    IF v_all AND NOT (p_source_tree_id IS NOT NULL) AND pg_catalog.cardinality(v_ids) > v_target THEN
        -- Every match at hand, more than T of them: the rule's candidates.
        v_complete := false;
        SELECT pg_catalog.min(y.class) INTO v_cut
          FROM (SELECT z.class, pg_catalog.sum(z.n) OVER (ORDER BY z.class) AS running
                  FROM (SELECT c.class, pg_catalog.count(*) AS n
                          FROM pg_catalog.unnest(v_classes) AS c (class) GROUP BY c.class) AS z) AS y
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
        -- phrases as plain ANDs); not for a query with an OR and an excluded term, or only excluded terms.
        v_titles := v_title_skeleton IS NOT NULL;
        IF v_titles AND NOT v_all THEN
            SELECT COALESCE(pg_catalog.array_agg(m.id), '{}'), pg_catalog.array_agg(4),
                   pg_catalog.array_agg(m.usage_count), pg_catalog.array_agg(m.rating), pg_catalog.array_agg(m.class)
              INTO b_ids, b_tiers, b_usage, b_ratings, b_classes
              FROM (SELECT s.id, s.usage_count, s.rating,
                           stepsync._popularity_class(s.usage_count, s.id) AS class
                      FROM public.step_library AS s
                     WHERE s.is_active
                       AND s.search_vector @@ v_title_skeleton::pg_catalog.tsquery
                       AND pg_catalog.ts_match_vq(s.search_vector, v_q_a)
                       AND pg_catalog.ts_match_vq(s.search_vector, v_query)
                       AND stepsync._may_see(s.visibility, s.account_id, s.created_by, p_user_id, v_account)
                       AND (NOT v_enforce OR stepsync._may_see(s.visibility, s.account_id, s.created_by, v_viewer, v_viewer_account))
                       AND (p_step_type IS NULL OR s.step_type = p_step_type)
                       AND (p_group_label IS NULL OR s.content ->> 'group_label' = p_group_label)) AS m
             WHERE m.class > v_done AND (v_sample IS NULL OR m.class <> 13);
            v_ids := v_ids || b_ids;
            v_tiers := v_tiers || COALESCE(b_tiers, '{}');
            v_usage := v_usage || COALESCE(b_usage, '{}');
            v_ratings := v_ratings || COALESCE(b_ratings, '{}');
            v_classes := v_classes || COALESCE(b_classes, '{}');
        END IF;
    END IF;

    PERFORM pg_catalog.set_config('stepsync.sync_writing', COALESCE(v_was_writing, ''), true);
    RETURN QUERY
    SELECT c.id, c.tier, c.usage_count, c.rating, v_complete
      FROM (SELECT DISTINCT ON (u.tier, u.usage_count, u.rating, u.id) u.id, u.tier, u.usage_count, u.rating
              FROM ROWS FROM (pg_catalog.unnest(v_ids), pg_catalog.unnest(v_tiers), pg_catalog.unnest(v_usage),
                              pg_catalog.unnest(v_ratings), pg_catalog.unnest(v_classes))
                   AS u (id, tier, usage_count, rating, class)
             WHERE v_cut IS NULL OR u.class <= v_cut OR (v_titles AND u.tier = 4)
             ORDER BY u.tier DESC, u.usage_count DESC, u.rating DESC NULLS LAST, u.id
             LIMIT p_limit) AS c
     ORDER BY c.tier DESC, c.usage_count DESC, c.rating DESC NULLS LAST, c.id;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_ranked(uuid, text, text, text, uuid, integer) IS
    'Internal: the matches stepsync.search_steps returns, best first, as ids and ranks; runs as the owner so that the full-text index works under row-level security, and applies the caller''s rights and stepsync''s row-level security itself (docs/contract.md §6.8, §12.2).';
