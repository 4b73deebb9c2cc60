-- The fencing test's engine says its handler started (the test listens on fence_started).
SELECT pg_notify('fence_started', $1)
