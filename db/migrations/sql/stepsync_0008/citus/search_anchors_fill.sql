-- The rows of stepsync.search_anchors (search_anchors.sql): the keys stepsync._search_anchor(0 .. 4095).
INSERT INTO stepsync.search_anchors (tree_key)
SELECT stepsync._search_anchor(n) FROM pg_catalog.generate_series(0, 4095) AS n
    ON CONFLICT (tree_key) DO NOTHING;
