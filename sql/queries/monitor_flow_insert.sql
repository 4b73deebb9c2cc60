-- Writes a flow's stages, in order.
INSERT INTO __schema__.monitor_flows (flow, position, milestone, limit_seconds)
SELECT $1, u.position, u.milestone, u.limit_seconds
FROM unnest($2::int[], $3::text[], $4::bigint[]) AS u(position, milestone, limit_seconds)
