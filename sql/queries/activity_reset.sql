-- Deletes the activity history and its counters (before they are rebuilt from the events).
DELETE FROM __schema__.activity;
DELETE FROM __schema__.step_counts;
DELETE FROM __schema__.version_counts;
