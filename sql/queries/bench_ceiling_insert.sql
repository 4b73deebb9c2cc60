-- Bench: one single-row insert, one commit.
INSERT INTO __table__ (v) VALUES ($1)
