-- Whether the engine's role is a superuser, and whether it owns the schema or is a member of
-- its owner (both more than an engine needs: see migration 0009 for the runtime role).
SELECT r.rolsuper, coalesce(pg_has_role(r.oid, n.nspowner, 'MEMBER'), false) AS owner
FROM pg_roles r LEFT JOIN pg_namespace n ON n.nspname = $1
WHERE r.rolname = current_user
