-- No statement timeout for a migration (the tool runs it in a transaction of its own).
SET LOCAL statement_timeout = 0;
