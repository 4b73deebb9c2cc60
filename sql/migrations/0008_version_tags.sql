-- longrun migration 0008: named tags on process versions.
--
-- Purpose: a tag (`stable`, `canary`) names one version of a process; starting an instance by
-- tag starts that version. Moving a tag changes which version new instances get; running
-- instances stay on theirs.
-- Locks: creates a table only.

CREATE TABLE __schema__.definition_tags (
    process_id text        NOT NULL,
    tag        text        NOT NULL CHECK (tag ~ '^[a-z][a-z0-9_-]{0,62}$'),
    version    integer     NOT NULL,
    tagged_at  timestamptz NOT NULL,
    PRIMARY KEY (process_id, tag),
    FOREIGN KEY (process_id, version) REFERENCES __schema__.definitions (process_id, version)
);
COMMENT ON TABLE __schema__.definition_tags IS
    'Named tags on process versions: a start by tag starts the tagged version.';
COMMENT ON COLUMN __schema__.definition_tags.process_id IS 'The process.';
COMMENT ON COLUMN __schema__.definition_tags.tag IS 'The tag, e.g. stable (lowercase letters, digits, _ and -).';
COMMENT ON COLUMN __schema__.definition_tags.version IS 'The version it names.';
COMMENT ON COLUMN __schema__.definition_tags.tagged_at IS 'When the tag was last set (engine clock).';
