-- The migrations already applied, in order.
SELECT version, name, checksum FROM __schema__.schema_migrations ORDER BY version
