-- Records how far a projection has applied each instance's stream.
INSERT INTO __schema__.projection_progress (bucket, name, instance_id, seq)
SELECT __schema__.bucket_of(u.instance_id), $1, u.instance_id, u.seq FROM unnest($2::uuid[], $3::bigint[]) AS u(instance_id, seq)
ON CONFLICT (bucket, name, instance_id) DO UPDATE SET seq = EXCLUDED.seq
