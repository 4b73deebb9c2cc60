-- Records one applied migration.
INSERT INTO __schema__.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)
