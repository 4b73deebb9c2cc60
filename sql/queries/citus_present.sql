-- Whether Citus is installed in this database (its catalog of distributed tables exists): only
-- then does bucket_groups_citus run, which names Citus's catalog and functions.
SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL AS citus
