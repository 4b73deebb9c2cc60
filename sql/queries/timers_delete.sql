-- Cancels timers (a batch), in the transaction that ends the wait they guard.
DELETE FROM __schema__.timers WHERE timer_id = ANY ($1::uuid[])
