-- Recorded as applied, with the checksum `longrun migrate` verifies.
INSERT INTO __schema__.schema_migrations (version, name, checksum)
VALUES (__version__, '__name__', '__checksum__');
