-- The bench's own schema: created here, never IF NOT EXISTS, so an existing schema (a user's,
-- whatever its name) makes the bench stop before it touches anything.
CREATE SCHEMA __schema__;
