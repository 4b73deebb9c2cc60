-- The migration lock is held: the session's lock_timeout applies again to the DDL.
SET LOCAL lock_timeout = DEFAULT
