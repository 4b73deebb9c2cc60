-- Subscribes this connection to wake-up hints for the schema (the channel is named after it).
LISTEN __schema__
