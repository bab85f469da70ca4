-- The rows of stepsync.search_anchors (search_anchors.sql), put back if any is missing.
SELECT stepsync._search_anchors_fill();
