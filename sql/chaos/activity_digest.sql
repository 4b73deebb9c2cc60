-- A digest of the activity history, to compare the live projection with its rebuild.
SELECT coalesce(md5(string_agg(a::text, '|' ORDER BY instance_id, seq)), ''), count(*)
FROM __schema__.activity a
