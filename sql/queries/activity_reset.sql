-- Deletes the activity history (before it is rebuilt from the events).
DELETE FROM __schema__.activity
