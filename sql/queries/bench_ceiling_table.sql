-- Bench: the table the commit ceiling inserts into (in the bench's throwaway schema).
CREATE TABLE IF NOT EXISTS __table__ (id bigint GENERATED ALWAYS AS IDENTITY, v bigint NOT NULL);
