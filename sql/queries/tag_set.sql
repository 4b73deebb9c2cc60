-- Points a tag at a version (creating or moving it).
INSERT INTO __schema__.definition_tags (process_id, tag, version, tagged_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (process_id, tag) DO UPDATE SET version = EXCLUDED.version, tagged_at = EXCLUDED.tagged_at
