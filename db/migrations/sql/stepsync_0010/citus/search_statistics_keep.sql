-- The statistics of stepsync.search_sample where a search reads them (stepsync._search_statistics_keep):
-- for a sample taken before stepsync_0010 kept them there.
SELECT stepsync._search_statistics_keep();
