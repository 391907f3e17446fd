-- Every reading published under sensors/, into the built-in SQLite sink `weir_db`: the table
-- `telemetry` of data_dir/weir.db (data/weir.db by default). See the rows with
--   sqlite3 data/weir.db 'SELECT * FROM telemetry'
INSERT INTO weir_db
SELECT timestamp AS received_at, clientid, topic, payload
FROM "sensors/#"
