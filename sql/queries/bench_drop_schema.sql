-- Drop the schema the bench created (only ever one it created itself: see bench::setup).
DROP SCHEMA IF EXISTS __schema__ CASCADE;
