-- Evidence photos and report texts beside the log, by SHA-256 (evidence/sha256/<2 hex>/<64 hex>,
-- report-texts/sha256/...), so that every server of a shared store serves the same ones and a
-- synchronous standby holds each one a server acknowledged. Created once: a name never changes bytes.
CREATE TABLE saksi_files (
    path text COLLATE "C" PRIMARY KEY,
    data bytea NOT NULL
);
