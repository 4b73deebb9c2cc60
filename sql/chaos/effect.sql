-- Records a side effect once per idempotency key; returns whether this call performed it.
INSERT INTO __app__.effects (key, kind) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET attempts = effects.attempts + 1
RETURNING attempts = 1
