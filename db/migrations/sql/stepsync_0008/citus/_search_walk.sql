-- stepsync._search_walk (Citus only): the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_walk(p_from regclass[], p_request stepsync.search_request,
                                                 p_cached boolean DEFAULT false)
RETURNS stepsync.search_walk
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off  -- with sequential scans off, a catalog look-up's cost estimate passes JIT's threshold (measured: 180 ms)
AS $function$
-- stepsync._search_walk(p_from, p_request): the visible matches of the search p_request
-- (stepsync._search_ranked makes it; docs/contract.md §6.8, §11.4) in the tables p_from, which hold the
-- library's rows: the shards of it one worker holds (stepsync._search_local), or the distributed table
-- itself (stepsync._search_gather, when the workers cannot be reached one by one). The walk is one
-- node's (db/functions/_search_ranked.sql), statement for statement, over the tables given. It returns the matches it fetched (stepsync.search_walk): every match of
-- the popularity classes 1 to done, of class 13 too when sampled, every match at all when
-- all_matches; it stops after the first batch of classes in which they are more than
-- p_request.target (T), and stepsync._search_ranked takes the rule's candidates from there. With
-- p_request.source_tree_id, every match of that flow. With p_request.title_query, the title rule's
-- matches instead (below). Runs with its caller's rights
-- (stepsync._search_ranked runs as the owner and checks the caller's); not granted to PUBLIC. Every
-- statement is dynamic, for p_from (stepsync._search_fetch): planned for its own values, or with
-- p_cached (a Citus worker) prepared once a session.
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
-- is estimated (from the statistics in p_request) in few rows is answered by one
-- scan of it (path A). Otherwise the classes are walked in batches, each one
-- index scan of the condition AND the viewer's audience keys of those classes,
-- so a common word costs what its most used matches cost (path B); part 0 is
-- looked at first, and when it shows the walk would go through most parts,
-- every row matching the condition is fetched in one scan instead (rest).
-- Tiers come from the stored weights: nothing is parsed again. Every statement
-- is planned for its own values (EXECUTE): a generic plan of the
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
    -- Who may see a row, the filters and the query (the rule of stepsync.visible_steps, docs/contract.md
    -- §6.8), as the statements below say it ($4 to $11 of every one of them).
    c_visible constant text := $sql$
           stepsync._may_see(s.visibility, s.account_id, s.created_by, $4, $5)
       AND (NOT $6 OR stepsync._may_see(s.visibility, s.account_id, s.created_by, $7, $8))
       AND ($9::text IS NULL OR s.step_type = $9)
       AND ($10::text IS NULL OR s.content ->> 'group_label' = $10)
       AND pg_catalog.ts_match_vq(s.search_vector, $11)$sql$;
    r stepsync.search_request := p_request;
    v_from text;
    c_key constant text := 's.tree_key';   -- each match's distribution key (docs/contract.md §11.1)
    v_text text := p_request.query::text;
    v_mce text[] := p_request.most_common_elems;
    v_mcf real[] := p_request.most_common_elem_freqs;
    v_reltuples double precision := p_request.reltuples;
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
    v_audiences text[];
    v_kinds text[];
    v_keys pg_catalog.tsquery;
    v_count bigint;
    v_ids uuid[] := '{}'::uuid[];
    v_tree_keys uuid[] := '{}'::uuid[];
    v_tiers integer[] := '{}'::integer[];
    v_usage integer[] := '{}'::integer[];
    v_ratings numeric[] := '{}'::numeric[];
    v_classes integer[] := '{}'::integer[];
    b_ids uuid[];
    b_tree_keys uuid[];
    b_tiers integer[];
    b_usage integer[];
    b_ratings numeric[];
    b_classes integer[];
    v_sample integer;               -- rows found in class 13 when it was fetched first (the sample)
    v_all boolean := false;         -- every visible match is in the arrays
    v_batch integer;
    v_first integer;
    v_last integer;
    v_done integer := 0;            -- classes 1..v_done are in the arrays (and class 13 when v_sample is set)
    v_rest boolean := false;
    v_enough boolean := false;      -- more than T matches in classes 1..v_done
BEGIN
    -- The tables, as one: a single table as itself, several as their UNION ALL (the planner scans each
    -- one's index for every condition below).
    v_from := CASE WHEN pg_catalog.cardinality(p_from) = 1 THEN p_from[1]::text
                   ELSE '(' || (SELECT pg_catalog.string_agg('SELECT * FROM ' || t.t::text, ' UNION ALL ')
                                  FROM pg_catalog.unnest(p_from) AS t (t)) || ')' END;
    v_audiences := ARRAY[' p'] || CASE WHEN r.account_id IS NOT NULL THEN ARRAY[' a' || r.account_id::text] END
                   || CASE WHEN r.user_id IS NOT NULL THEN ARRAY[' u' || r.user_id::text] END;
    v_kinds := CASE WHEN r.step_type IS NULL THEN ARRAY['action', 'solution']
                    WHEN r.step_type = 'solution' THEN ARRAY['solution'] ELSE ARRAY['action'] END;

    -- Every statement below runs through stepsync._search_fetch (its body says how, and what $1-$16 are), and
    -- returns the rows it looked at and the matches.
    IF r.title_query IS NOT NULL THEN
        -- The title rule's fetch (stepsync._search_ranked): every visible match on the title alone in the classes
        -- after title_after (class 13 left out when title_sampled), found through the title keys (title_query).
        SELECT f.ids, f.keys, f.tiers, f.usage_counts, f.ratings, f.classes
          INTO b_ids, b_tree_keys, b_tiers, b_usage, b_ratings, b_classes
          FROM stepsync._search_fetch(pg_catalog.format($sql$
            SELECT pg_catalog.count(*), COALESCE(pg_catalog.array_agg(m.id), '{}'), pg_catalog.array_agg(m.key),
                   pg_catalog.array_agg(4), pg_catalog.array_agg(m.usage_count), pg_catalog.array_agg(m.rating),
                   pg_catalog.array_agg(m.class)
              FROM (SELECT s.id, %3$s AS key, s.usage_count, s.rating,
                           stepsync._popularity_class(s.usage_count, s.id) AS class
                      FROM %1$s AS s
                     WHERE s.is_active AND s.search_vector @@ $12 AND pg_catalog.ts_match_vq(s.search_vector, $1)
                       AND %2$s) AS m
             WHERE m.class > $13 AND (NOT $14 OR m.class <> 13)$sql$, v_from, c_visible, c_key),
               p_cached, r, r.title_query, r.title_after, r.title_sampled, NULL) AS f;
        RETURN ROW(b_ids, COALESCE(b_tree_keys, '{}'), COALESCE(b_tiers, '{}'), COALESCE(b_usage, '{}'),
                   COALESCE(b_ratings, '{}'), COALESCE(b_classes, '{}'), NULL, false, false)::stepsync.search_walk;
    END IF;

    -- The index condition (v_skeleton: implied by the query, without excluded and dense terms) and how many rows
    -- it matches (v_estimate), from the share of rows each term is in (the column's most common elements; a term
    -- that is not among them counts as rare) and the table's size (p_request, from stepsync._search_statistics).
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
    v_estimate := COALESCE(r.estimate, v_estimate);    -- tests: take path A, the sample or the plain walk
    v_index := v_skeleton::pg_catalog.tsquery;
    v_index_big := CASE WHEN v_dense IS NULL THEN v_index WHEN v_index IS NULL THEN v_dense::pg_catalog.tsquery
                        ELSE v_index && v_dense::pg_catalog.tsquery END;
    v_index_small := CASE WHEN v_dense_phrase IS NULL THEN v_index WHEN v_index IS NULL
                          THEN v_dense_phrase::pg_catalog.tsquery ELSE v_index && v_dense_phrase::pg_catalog.tsquery END;

    IF r.source_tree_id IS NOT NULL OR (v_skeleton IS NOT NULL AND v_estimate <= c_rare) THEN
        -- One flow, or path A: the rows matching the index condition (at most c_probe of them for path A).
        SELECT f.n, f.ids, f.keys, f.tiers, f.usage_counts, f.ratings, f.classes
          INTO v_count, b_ids, b_tree_keys, b_tiers, b_usage, b_ratings, b_classes
          FROM stepsync._search_fetch(pg_catalog.format($sql$
            SELECT pg_catalog.count(*),
                   COALESCE(pg_catalog.array_agg(m.id) FILTER (WHERE m.visible), '{}'),
                   pg_catalog.array_agg(m.key) FILTER (WHERE m.visible),
                   pg_catalog.array_agg(stepsync._match_tier(m.search_vector, $1, $2, $3)) FILTER (WHERE m.visible),
                   pg_catalog.array_agg(m.usage_count) FILTER (WHERE m.visible),
                   pg_catalog.array_agg(m.rating) FILTER (WHERE m.visible),
                   pg_catalog.array_agg(m.class) FILTER (WHERE m.visible)
              FROM (SELECT s.id, %3$s AS key, s.usage_count, s.rating, s.search_vector, %2$s AS visible,
                           stepsync._popularity_class(s.usage_count, s.id) AS class
                      FROM %1$s AS s
                     WHERE s.is_active AND %4$s
                     LIMIT $15) AS m$sql$,
            v_from, c_visible, c_key,
            CASE WHEN r.source_tree_id IS NOT NULL THEN 's.source_tree_id = $16' ELSE 's.search_vector @@ $12' END),
               p_cached, r, v_index, v_done, v_sample IS NOT NULL,
               CASE WHEN r.source_tree_id IS NULL THEN c_probe + 1 END) AS f;
        IF r.source_tree_id IS NOT NULL OR v_count <= c_probe THEN
            v_ids := b_ids;
            v_tree_keys := b_tree_keys;
            v_tiers := b_tiers;
            v_usage := b_usage;
            v_ratings := b_ratings;
            v_classes := b_classes;
            v_all := true;
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
            v_last := LEAST(76, v_first - 1 + GREATEST(LEAST(pg_catalog.ceil(1.25 * (r.target + 1
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
            b_tree_keys := NULL; b_tiers := NULL; b_usage := NULL; b_ratings := NULL; b_classes := NULL;
        ELSE
            -- The words first: GIN evaluates the left side of an AND first, and the words rule out most of the rows
            -- the audience keys let through in one or two look-ups, where the keys are dozens of ORs.
            v_cond := CASE WHEN v_first >= 11 THEN v_index_big ELSE v_index_small END;
            v_cond := CASE WHEN v_cond IS NULL THEN v_keys ELSE v_cond && v_keys END;
            SELECT f.ids, f.keys, f.tiers, f.usage_counts, f.ratings, f.classes
              INTO b_ids, b_tree_keys, b_tiers, b_usage, b_ratings, b_classes
              FROM stepsync._search_fetch(pg_catalog.format($sql$
                SELECT pg_catalog.count(*), COALESCE(pg_catalog.array_agg(s.id), '{}'), pg_catalog.array_agg(%3$s),
                       pg_catalog.array_agg(x.tier), pg_catalog.array_agg(s.usage_count), pg_catalog.array_agg(s.rating),
                       pg_catalog.array_agg(x.class)
                  FROM %1$s AS s,
                       LATERAL (SELECT stepsync._match_tier(s.search_vector, $1, $2, $3) AS tier,
                                       stepsync._popularity_class(s.usage_count, s.id) AS class) AS x
                 WHERE s.is_active AND s.search_vector @@ $12 AND %2$s$sql$, v_from, c_visible, c_key),
                   p_cached, r, v_cond, v_done, v_sample IS NOT NULL, NULL) AS f;
        END IF;
        v_ids := v_ids || b_ids;
        v_tree_keys := v_tree_keys || COALESCE(b_tree_keys, '{}');
        v_tiers := v_tiers || COALESCE(b_tiers, '{}');
        v_usage := v_usage || COALESCE(b_usage, '{}');
        v_ratings := v_ratings || COALESCE(b_ratings, '{}');
        v_classes := v_classes || COALESCE(b_classes, '{}');
        IF v_batch = 0 THEN
            v_sample := pg_catalog.cardinality(b_ids);
            v_yield := v_sample;
            v_rest := 64 * v_sample <= r.target;
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
           > r.target THEN
            v_enough := true;       -- enough candidates: stepsync._search_ranked cuts at the first class beyond T
            EXIT;
        ELSIF v_first <= 13 AND v_last >= 13 AND v_index IS NOT NULL AND v_estimate <= c_rest_max THEN
            -- Part 0 says how many parts are still needed. Walking one costs about what fetching 1/4000 of the
            -- table's rows costs (it reads the part's audience keys), fetching all matches of the condition what
            -- fetching that many rows does: take the cheaper.
            v_rest := COALESCE(LEAST(pg_catalog.ceil((r.target + 1 - pg_catalog.cardinality(v_ids))
                                                     / GREATEST(v_yield, 0.5)), 63) * v_reltuples / 4000 > v_estimate,
                               false);
        END IF;
        v_first := v_last + 1;
        v_batch := v_batch + 1;
    END LOOP;
    IF NOT v_all AND NOT v_rest AND NOT v_enough THEN
        v_all := true;              -- the walk went through every class
    END IF;

    IF v_rest THEN
        -- The rest at once: every visible row matching the query in the classes not yet in the arrays.
        SELECT f.ids, f.keys, f.tiers, f.usage_counts, f.ratings, f.classes
          INTO b_ids, b_tree_keys, b_tiers, b_usage, b_ratings, b_classes
          FROM stepsync._search_fetch(pg_catalog.format($sql$
            SELECT pg_catalog.count(*), COALESCE(pg_catalog.array_agg(m.id), '{}'), pg_catalog.array_agg(m.key),
                   pg_catalog.array_agg(stepsync._match_tier(m.search_vector, $1, $2, $3)),
                   pg_catalog.array_agg(m.usage_count), pg_catalog.array_agg(m.rating), pg_catalog.array_agg(m.class)
              FROM (SELECT s.id, %3$s AS key, s.usage_count, s.rating, s.search_vector,
                           stepsync._popularity_class(s.usage_count, s.id) AS class
                      FROM %1$s AS s
                     WHERE s.is_active AND s.search_vector @@ $12 AND %2$s) AS m
             WHERE m.class > $13 AND (NOT $14 OR m.class <> 13)$sql$, v_from, c_visible, c_key),
               p_cached, r, v_index, v_done, v_sample IS NOT NULL, NULL) AS f;
        v_ids := v_ids || b_ids;
        v_tree_keys := v_tree_keys || COALESCE(b_tree_keys, '{}');
        v_tiers := v_tiers || COALESCE(b_tiers, '{}');
        v_usage := v_usage || COALESCE(b_usage, '{}');
        v_ratings := v_ratings || COALESCE(b_ratings, '{}');
        v_classes := v_classes || COALESCE(b_classes, '{}');
        v_all := true;
    END IF;
    RETURN ROW(v_ids, v_tree_keys, v_tiers, v_usage, v_ratings, v_classes, CASE WHEN v_all THEN 76 ELSE v_done END, v_all,
               v_sample IS NOT NULL)::stepsync.search_walk;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_walk(regclass[], stepsync.search_request, boolean) IS
    'Internal: the visible matches of a search (stepsync._search_ranked) in the given tables (public.step_library, or on Citus a worker''s shards of it), walked by popularity class until more than the target are in hand (docs/contract.md §6.8).';

REVOKE ALL ON FUNCTION stepsync._search_walk(regclass[], stepsync.search_request, boolean) FROM PUBLIC;
