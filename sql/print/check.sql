-- Go on only if exactly migrations 1 to __after__ are applied to this schema (none for 0), so
-- that a script is never applied twice, out of order, or over `longrun migrate`'s work.
DO $check$
DECLARE
    applied integer;
    highest integer;
BEGIN
    SELECT count(*), coalesce(max(version), 0) INTO applied, highest
    FROM __schema__.schema_migrations;
    IF applied <> __after__ OR highest <> __after__ THEN
        RAISE EXCEPTION 'schema "__schema_name__" has % migrations applied (up to %), but this script is for a schema at __after__; print what it needs with: longrun --schema __schema_name__ migrate --print --from %',
            applied, highest, highest;
    END IF;
END
$check$;
