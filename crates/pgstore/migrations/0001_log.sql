-- The log's files, exactly as tlog-tiles lays them out (checkpoint, checkpoints/<size>,
-- tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>]): one row per file, so the store can be mirrored
-- to a static host byte for byte. COLLATE "C" makes the primary key's order byte order, which
-- listing a directory (a range scan on the prefix) relies on.
CREATE TABLE saksi_log_files (
    path text COLLATE "C" PRIMARY KEY,
    data bytea NOT NULL
);

-- The tree size of the newest checkpoints/<size> row: the compare-and-swap every write goes through.
-- One row, locked FOR UPDATE by each writing transaction. -1: no checkpoint yet.
CREATE TABLE saksi_log_state (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    size bigint NOT NULL CHECK (size >= -1),
    -- Who last advanced it (host and process), for the operator reading an alarm.
    writer text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO saksi_log_state (size, writer) VALUES (-1, 'none');
