//! The log's [`Storage`] in PostgreSQL: for deployments where one disk is not enough (a synchronous
//! standby keeps every acknowledged entry when the primary is lost; see `docs/operations.md`).
//!
//! # Tables (migrations/, applied in order on connect, each once)
//! - `saksi_log_files(path, data)`: the log's files under their tlog-tiles paths, byte for byte, so
//!   `saksi mirror` and any static host serve the same log.
//! - `saksi_log_state(size, writer)`: one row, the size of the newest `checkpoints/<size>`.
//!
//! # The write protocol (every write: [`Storage::commit`], `write_durable`, `create_durable`,
//! `write_new`, `remove_dir`)
//! 1. Begin a transaction and lock the state row (`SELECT ... FOR UPDATE`): writers queue here.
//! 2. Compare its size with the size this storage last wrote or read (`expected`). Different means
//!    another writer advanced the log since: roll back and fail with [`CONFLICT`] in the message.
//!    The log poisons itself on any storage error, so the loser stops writing and says why; it can
//!    never overwrite a tile that the winner's checkpoint covers, because nothing of its batch lands.
//! 3. Write the files: tiles and `checkpoints/<size>` are created once: inserted if absent,
//!    accepted if present with the same bytes (a retried commit whose acknowledgement was lost),
//!    refused with `AlreadyExists` if present with other bytes (only a fork could write them);
//!    `checkpoint` is replaced.
//! 4. Advance the state row to the largest `checkpoints/<size>` created, then commit. PostgreSQL's
//!    commit is the durability point: with `synchronous_commit = on` the WAL is fsynced on the primary
//!    (and on a synchronous standby, where one is named) before the commit returns.
//!
//! Because a whole batch is one transaction, the directory store's step ordering (tiles durable
//! before their checkpoint) holds trivially: a checkpoint row is never visible without its tiles.
//! A commit whose outcome is unknown (the connection dropped during COMMIT) is an error like any
//! other; the log poisons itself and recovers on reopen from whatever the database holds.
//!
//! # Connections
//! Each connection lives on a thread of its own and runs one job at a time, so a caller on one of
//! tokio's workers blocks only itself, as it would on a file read. A dropped connection is
//! reconnected for the next job; a multi-host URL with `target_session_attrs=read-write` finds the
//! primary after a failover.
//!
//! # TLS
//! `sslrootcert=FILE` in the URL turns TLS on: every connection is encrypted (`sslmode=require` is
//! implied; `prefer` would fall back to plain text) and the server's certificate must chain to a CA
//! in FILE and name the host. `sslmode=require` without a CA is refused rather than half-done
//! (encrypted to a server nobody checked). Without either, connections are plain: for a private
//! network only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use postgres::{Client, Config, NoTls};
use saksi_tlog::Storage;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// The schema, in order; a database records the versions it has (`saksi_schema_migrations`).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "log", include_str!("../migrations/0001_log.sql")),
    (2, "files", include_str!("../migrations/0002_files.sql")),
];
/// Serializes migrations between servers that start together on an empty database.
const MIGRATION_LOCK_KEY: i64 = 0x7361_6b73_6901;
/// The advisory lock that makes one server of several the writer.
const WRITER_LOCK_KEY: i64 = 0x7361_6b73_6902;
/// The phrase every lost compare-and-swap carries, for callers and operators to recognise it.
pub const CONFLICT: &str = "another writer advanced the log";
/// Connections per storage: reads of tiles for proofs and pages run in parallel up to this.
pub const DEFAULT_CONNECTIONS: usize = 4;
/// A bound on the threads and connections one storage opens.
pub const MAX_CONNECTIONS: usize = 64;

#[derive(Debug)]
pub enum StoreError {
    /// The connection string does not parse.
    Url(String),
    Db(postgres::Error),
    /// The schema in the database is newer than this binary knows.
    SchemaTooNew {
        found: i32,
        known: i32,
    },
    Io(io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Url(e) => write!(f, "not a PostgreSQL connection string: {e}"),
            StoreError::Db(e) => write!(f, "PostgreSQL: {}", describe(e)),
            StoreError::SchemaTooNew { found, known } => write!(
                f,
                "the database's saksi schema is version {found}, this binary knows up to {known}: upgrade saksi"
            ),
            StoreError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A PostgreSQL error with its SQLSTATE and server message where there is one.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        // The causes too: "error performing TLS handshake" alone does not say that the certificate
        // was signed by an unknown CA.
        None => {
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(inner) = cause {
                text = format!("{text}: {inner}");
                cause = inner.source();
            }
            text
        }
    }
}

/// What a job can fail with.
enum JobError {
    Db(postgres::Error),
    /// The state row's size is not the one this storage expected.
    Conflict {
        expected: i64,
        found: i64,
        writer: String,
    },
    /// A create-once path holds other bytes.
    Exists(String),
}

impl From<postgres::Error> for JobError {
    fn from(e: postgres::Error) -> JobError {
        JobError::Db(e)
    }
}

impl JobError {
    fn into_io(self, what: &str) -> io::Error {
        match self {
            JobError::Db(e) => io::Error::other(format!("PostgreSQL, {what}: {}", describe(&e))),
            JobError::Conflict {
                expected,
                found,
                writer,
            } => io::Error::other(format!(
                "{CONFLICT} ({what}): this server wrote up to size {expected}, the database is at {found} (last advanced by {writer}); this server stops writing"
            )),
            JobError::Exists(path) => io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{path} already holds other bytes; it is never overwritten"),
            ),
        }
    }
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Where a storage connects: the parsed URL and, with `sslrootcert`, its TLS connector.
#[derive(Clone)]
struct Target {
    config: Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Target {
    /// Parses `url`, taking out `sslrootcert=FILE` (which the driver does not know) to build the
    /// TLS connector from.
    fn parse(url: &str) -> Result<Target, StoreError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut root_file = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslrootcert", file)) => root_file = Some(file.to_string()),
                _ => kept.push(pair),
            }
        }
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: Config = url.parse().map_err(|e| StoreError::Url(format!("{e}")))?;
        let Some(root_file) = root_file else {
            if config.get_ssl_mode() == postgres::config::SslMode::Require {
                return Err(StoreError::Url(
                    "sslmode=require needs sslrootcert=FILE: saksi verifies the server's certificate against that CA".into(),
                ));
            }
            // Plain connections, said so: "prefer" (the driver's default) without a connector
            // is plain anyway.
            config.ssl_mode(postgres::config::SslMode::Disable);
            return Ok(Target { config, tls: None });
        };
        let mut roots = rustls::RootCertStore::empty();
        use rustls_pki_types::pem::PemObject;
        let certificates = rustls_pki_types::CertificateDer::pem_file_iter(&root_file)
            .map_err(|e| StoreError::Url(format!("sslrootcert {root_file}: {e}")))?;
        for certificate in certificates {
            let certificate = certificate
                .map_err(|e| StoreError::Url(format!("sslrootcert {root_file}: {e}")))?;
            roots
                .add(certificate)
                .map_err(|e| StoreError::Url(format!("sslrootcert {root_file}: {e}")))?;
        }
        if roots.is_empty() {
            return Err(StoreError::Url(format!(
                "sslrootcert {root_file} holds no certificate"
            )));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Url(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.ssl_mode(postgres::config::SslMode::Require);
        Ok(Target {
            config,
            tls: Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls)),
        })
    }

    fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
    }
}

/// One connection, reconnected when it drops.
struct Connection {
    target: Target,
    client: Option<Client>,
}

impl Connection {
    fn client(&mut self) -> Result<&mut Client, postgres::Error> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.client = Some(self.target.connect()?);
        }
        Ok(self.client.as_mut().expect("connected just above"))
    }

    /// One run of `job`; a connection found closed afterwards is dropped (`client` becomes `None`).
    fn attempt<T>(
        &mut self,
        job: &impl Fn(&mut Client) -> Result<T, JobError>,
    ) -> Result<T, JobError> {
        let outcome = match self.client() {
            Ok(client) => job(client),
            Err(e) => Err(JobError::Db(e)),
        };
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
        }
        outcome
    }
}

/// The log's files in PostgreSQL. See the module docs for the write protocol.
pub struct PgStorage {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// One more connection, kept only for the writer's advisory lock: a session lock lives as long
    /// as its connection, so a writer whose process dies (or whose connection drops) releases it and
    /// a standby takes over.
    /// `None` on a read-only storage, which never writes.
    lock_jobs: Option<Mutex<mpsc::Sender<Job>>>,
    /// The tree size this storage last wrote or read from the state row: the compare in
    /// compare-and-swap. Held for the whole of each write, so this storage's own writes are serial.
    expected: Mutex<i64>,
    /// Written into the state row with each advance: which process wrote last.
    writer: String,
    /// The connection string without its password, for messages.
    target: String,
}

impl fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgStorage({})", self.target)
    }
}

impl PgStorage {
    /// Connects with `connections` connections (at least 1, at most [`MAX_CONNECTIONS`]), applies
    /// any migration the database lacks, and reads the tree size this storage will write from.
    pub fn connect(url: &str, connections: usize) -> Result<PgStorage, StoreError> {
        let parsed = Target::parse(url)?;
        let target = redacted(&parsed);
        let sender =
            connection_threads(&parsed, "saksi-pg", connections.clamp(1, MAX_CONNECTIONS))?;
        let lock_sender = connection_threads(&parsed, "saksi-pg-lock", 1)?;
        let storage = PgStorage {
            jobs: Mutex::new(sender),
            lock_jobs: Some(Mutex::new(lock_sender)),
            expected: Mutex::new(-1),
            writer: format!("process {} on {}", std::process::id(), hostname()),
            target,
        };
        storage
            .run("applying migrations", |client| {
                migrate(client).map_err(JobError::Db)
            })
            .map_err(StoreError::Io)?
            .map_err(|found| StoreError::SchemaTooNew {
                found,
                known: MIGRATIONS.len() as i32,
            })?;
        storage.refresh().map_err(StoreError::Io)?;
        Ok(storage)
    }

    /// Connects to read only: a read replica's view of the log, on the primary or on a hot standby
    /// (which refuses every write). Nothing is written, not even a migration, and no writer's lock
    /// is ever asked for; every write is refused. The schema must be one this binary knows.
    pub fn connect_read_only(url: &str, connections: usize) -> Result<PgStorage, StoreError> {
        let parsed = Target::parse(url)?;
        let target = redacted(&parsed);
        let sender = connection_threads(
            &parsed,
            "saksi-pg-read",
            connections.clamp(1, MAX_CONNECTIONS),
        )?;
        let storage = PgStorage {
            jobs: Mutex::new(sender),
            lock_jobs: None,
            expected: Mutex::new(-1),
            writer: String::new(),
            target,
        };
        let found = storage
            .run("reading the schema version", |client| {
                Ok(client
                    .query_one(
                        "SELECT coalesce(max(version), 0) FROM saksi_schema_migrations",
                        &[],
                    )?
                    .get::<_, i32>(0))
            })
            .map_err(StoreError::Io)?;
        let known = MIGRATIONS.len() as i32;
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        Ok(storage)
    }

    /// Re-reads the tree size from the database: what a server does before it starts writing a log
    /// that another server may have advanced (taking over as the writer).
    pub fn refresh(&self) -> io::Result<i64> {
        let size = self.run("reading the tree size", |client| {
            Ok(client
                .query_one("SELECT size FROM saksi_log_state", &[])?
                .get::<_, i64>(0))
        })?;
        *self.expected.lock().expect("not poisoned") = size;
        Ok(size)
    }

    /// The connection string without its password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `job` on one connection's thread and waits for it. A job that finds its connection
    /// dropped (the server restarted, or failed over) runs once more on a new one when `retry` says
    /// so: reads only, since a write whose connection dropped may or may not have committed, and the
    /// log recovers from that by reopening, not by guessing.
    fn run_with<T: Send + 'static>(
        &self,
        what: &'static str,
        retry: bool,
        job: impl Fn(&mut Client) -> Result<T, JobError> + Send + 'static,
    ) -> io::Result<T> {
        run_on(&self.jobs, what, retry, job)
    }

    /// The store of photos or report texts (`kind`: "evidence", "report-texts") beside this log,
    /// on the same connections. Read-only when this storage is.
    pub fn files(&self, kind: &'static str) -> PgFiles {
        PgFiles {
            jobs: Mutex::new(self.jobs.lock().expect("not poisoned").clone()),
            prefix: kind,
            read_only: self.lock_jobs.is_none(),
        }
    }

    fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        job: impl Fn(&mut Client) -> Result<T, JobError> + Send + 'static,
    ) -> io::Result<T> {
        self.run_with(what, true, job)
    }

    /// Steps 1 to 4 of the write protocol.
    fn write(
        &self,
        what: &'static str,
        upserted: Vec<(String, Vec<u8>)>,
        created: Vec<(String, Vec<u8>)>,
        removed_dirs: Vec<String>,
    ) -> io::Result<()> {
        let Some(_) = self.lock_jobs else {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "this PostgreSQL store was opened read-only",
            ));
        };
        let mut expected = self.expected.lock().expect("not poisoned");
        let from = *expected;
        let to = created
            .iter()
            .filter_map(|(path, _)| path.strip_prefix("checkpoints/")?.parse::<i64>().ok())
            .max();
        let writer = self.writer.clone();
        let (tiles, upserted): (Vec<_>, Vec<_>) = upserted
            .into_iter()
            .partition(|(path, _)| path.starts_with("tile/"));
        let advanced = self.run_with(what, false, move |client| {
            let mut tx = client.transaction()?;
            let row = tx.query_one("SELECT size, writer FROM saksi_log_state FOR UPDATE", &[])?;
            let (found, last_writer): (i64, String) = (row.get(0), row.get(1));
            if found != from {
                return Err(JobError::Conflict {
                    expected: from,
                    found,
                    writer: last_writer,
                });
            }
            // Tiles are created once, like checkpoints: in this store every row is part of a
            // committed tree (a transaction lands whole or not at all), so a tile path that
            // already holds other bytes can only be a fork, and is refused. Other files (the
            // `checkpoint` a publication replaces) are upserted; later files of one call win, as
            // they would on disk, and no row is touched twice (which ON CONFLICT DO UPDATE refuses).
            create_once(&mut tx, "saksi_log_files", &tiles)?;
            let upserted: BTreeMap<&str, &[u8]> = upserted
                .iter()
                .map(|(p, d)| (p.as_str(), d.as_slice()))
                .collect();
            if !upserted.is_empty() {
                let (paths, data): (Vec<&str>, Vec<&[u8]>) = upserted.into_iter().unzip();
                tx.execute(
                    "INSERT INTO saksi_log_files (path, data) SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
                     ON CONFLICT (path) DO UPDATE SET data = EXCLUDED.data",
                    &[&paths, &data],
                )?;
            }
            create_once(&mut tx, "saksi_log_files", &created)?;
            for dir in &removed_dirs {
                let (low, high) = prefix_range(dir);
                tx.execute(
                    "DELETE FROM saksi_log_files WHERE path >= $1 AND path < $2",
                    &[&low, &high],
                )?;
            }
            let advanced = to.filter(|&to| to > found);
            if let Some(to) = advanced {
                tx.execute(
                    "UPDATE saksi_log_state SET size = $1, writer = $2, updated_at = now()",
                    &[&to, &writer],
                )?;
            }
            tx.commit()?;
            Ok(advanced)
        })?;
        if let Some(to) = advanced {
            *expected = to;
        }
        Ok(())
    }
}

fn run_on<T: Send + 'static>(
    queue: &Mutex<mpsc::Sender<Job>>,
    what: &'static str,
    retry: bool,
    job: impl Fn(&mut Client) -> Result<T, JobError> + Send + 'static,
) -> io::Result<T> {
    let (done, result) = mpsc::sync_channel(1);
    let job: Job = Box::new(move |connection: &mut Connection| {
        let mut outcome = connection.attempt(&job);
        if retry && connection.client.is_none() {
            outcome = connection.attempt(&job);
        }
        let _ = done.send(outcome);
    });
    queue
        .lock()
        .expect("not poisoned")
        .send(job)
        .map_err(|_| io::Error::other("the PostgreSQL connection threads have stopped"))?;
    result
        .recv()
        .map_err(|_| io::Error::other("a PostgreSQL connection thread died"))?
        .map_err(|e| e.into_io(what))
}

/// Evidence photos or report texts in `saksi_files`, under `<kind>/` (see [`PgStorage::files`]).
/// Files are created once, each in a transaction of its own: durable (and on a synchronous standby)
/// when `create_durable` returns. No compare-and-swap: these files are named by their content's
/// digest, so two servers writing one name write the same bytes.
pub struct PgFiles {
    jobs: Mutex<mpsc::Sender<Job>>,
    prefix: &'static str,
    read_only: bool,
}

impl PgFiles {
    fn path(&self, path: &str) -> String {
        format!("{}/{path}", self.prefix)
    }

    fn refuse_if_read_only(&self) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "this PostgreSQL store was opened read-only",
            ));
        }
        Ok(())
    }

    /// Files and their bytes, counted in the database (sizes from the row headers; nothing is read).
    pub fn usage(&self) -> io::Result<(u64, u64)> {
        let (low, high) = prefix_range(self.prefix);
        run_on(&self.jobs, "counting files", true, move |client| {
            let row = client.query_one(
                "SELECT count(*), coalesce(sum(octet_length(data)), 0)::bigint FROM saksi_files \
                 WHERE path >= $1 AND path < $2",
                &[&low, &high],
            )?;
            Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
        })
    }
}

impl Storage for PgFiles {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        let path = self.path(path);
        run_on(&self.jobs, "reading a file", true, move |client| {
            read_file(client, "saksi_files", &path)
        })
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let dir = self.path(dir);
        run_on(&self.jobs, "listing files", true, move |client| {
            list_dir(client, "saksi_files", &dir)
        })
    }

    /// Replacing is not what these files are for; `create_durable` is. Kept for the contract:
    /// an upsert in one transaction.
    fn write_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.refuse_if_read_only()?;
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, d)| (self.path(p), d.clone()))
            .collect();
        run_on(&self.jobs, "writing files", false, move |client| {
            let mut tx = client.transaction()?;
            for (path, data) in &files {
                tx.execute(
                    "INSERT INTO saksi_files (path, data) VALUES ($1, $2) \
                     ON CONFLICT (path) DO UPDATE SET data = EXCLUDED.data",
                    &[path, data],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn create_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.refuse_if_read_only()?;
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, d)| (self.path(p), d.clone()))
            .collect();
        run_on(&self.jobs, "creating files", false, move |client| {
            let mut tx = client.transaction()?;
            create_once(&mut tx, "saksi_files", &files)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn remove_dir(&self, dir: &str) -> io::Result<()> {
        self.refuse_if_read_only()?;
        let (low, high) = prefix_range(&self.path(dir));
        run_on(&self.jobs, "removing files", false, move |client| {
            client.execute(
                "DELETE FROM saksi_files WHERE path >= $1 AND path < $2",
                &[&low, &high],
            )?;
            Ok(())
        })
    }
}

/// `count` threads, each with a connection of its own, taking jobs from one queue.
fn connection_threads(
    target: &Target,
    name: &str,
    count: usize,
) -> Result<mpsc::Sender<Job>, StoreError> {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..count {
        let receiver = receiver.clone();
        let mut connection = Connection {
            target: target.clone(),
            client: None,
        };
        thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || loop {
                // The lock is held only while waiting for a job, so idle threads queue for it.
                let job = match receiver.lock() {
                    Ok(receiver) => receiver.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(&mut connection),
                    Err(_) => return, // the storage is gone
                }
            })
            .map_err(StoreError::Io)?;
    }
    Ok(sender)
}

/// Inserts each file that is absent; a present one must hold the same bytes.
fn create_once(
    tx: &mut postgres::Transaction<'_>,
    table: &'static str,
    files: &[(String, Vec<u8>)],
) -> Result<(), JobError> {
    if files.is_empty() {
        return Ok(());
    }
    let (paths, data): (Vec<&str>, Vec<&[u8]>) = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .unzip();
    let inserted: BTreeSet<String> = tx
        .query(
            &format!(
                "INSERT INTO {table} (path, data) SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
                 ON CONFLICT (path) DO NOTHING RETURNING path"
            ),
            &[&paths, &data],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let present: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| !inserted.contains(*p))
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let stored: BTreeMap<String, Vec<u8>> = tx
        .query(
            &format!("SELECT path, data FROM {table} WHERE path = ANY($1)"),
            &[&present],
        )?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    for (path, bytes) in files {
        if stored.get(path).is_some_and(|s| s != bytes) {
            return Err(JobError::Exists(path.clone()));
        }
    }
    Ok(())
}

/// The file at `path` in `table` (`saksi_log_files` or `saksi_files`).
fn read_file(
    client: &mut Client,
    table: &'static str,
    path: &str,
) -> Result<Option<Vec<u8>>, JobError> {
    Ok(client
        .query_opt(
            &format!("SELECT data FROM {table} WHERE path = $1"),
            &[&path],
        )?
        .map(|row| row.get(0)))
}

/// The names directly under `dir/` in `table`, in order: a range scan on the primary key.
fn list_dir(client: &mut Client, table: &'static str, dir: &str) -> Result<Vec<String>, JobError> {
    let (low, high) = prefix_range(dir);
    let rows = client.query(
        &format!("SELECT path FROM {table} WHERE path >= $1 AND path < $2 ORDER BY path"),
        &[&low, &high],
    )?;
    let mut names: Vec<String> = rows
        .iter()
        .map(|row| row.get::<_, String>(0)[low.len()..].to_string())
        .filter_map(|rest| rest.split('/').next().map(str::to_string))
        .collect();
    names.dedup();
    Ok(names)
}

/// The half-open range of paths under `dir/`: '0' is the byte after '/'.
fn prefix_range(dir: &str) -> (String, String) {
    (format!("{dir}/"), format!("{dir}0"))
}

/// Applies the migrations the database lacks, under an advisory lock. `Ok(Err(version))` when the
/// database has a newer schema than this binary.
fn migrate(client: &mut Client) -> Result<Result<(), i32>, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS saksi_schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM saksi_schema_migrations",
            &[],
        )?
        .get(0);
    if current > MIGRATIONS.len() as i32 {
        return Ok(Err(current));
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO saksi_schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )?;
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// host:port list and database, never the password.
fn redacted(target: &Target) -> String {
    let config = &target.config;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
            postgres::config::Host::Unix(p) => format!("{}:{port}", p.display()),
        })
        .collect();
    format!(
        "postgres://{}@{}/{}{}",
        config.get_user().unwrap_or("?"),
        hosts.join(","),
        config.get_dbname().unwrap_or(""),
        if target.tls.is_some() { " (TLS)" } else { "" }
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "an unknown host".into())
}

fn owned(files: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    files.to_vec()
}

impl Storage for PgStorage {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        let path = path.to_string();
        self.run("reading a file", move |client| {
            read_file(client, "saksi_log_files", &path)
        })
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let dir = dir.to_string();
        self.run("listing files", move |client| {
            list_dir(client, "saksi_log_files", &dir)
        })
    }

    fn write_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.write("writing files", owned(files), Vec::new(), Vec::new())
    }

    fn write_new(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.write("writing new files", owned(files), Vec::new(), Vec::new())
    }

    fn create_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.write("creating files", Vec::new(), owned(files), Vec::new())
    }

    fn commit(
        &self,
        new: &[(String, Vec<u8>)],
        created: &[(String, Vec<u8>)],
        replaced: &[(String, Vec<u8>)],
    ) -> io::Result<()> {
        let mut upserted = owned(new);
        upserted.extend_from_slice(replaced);
        self.write("committing", upserted, owned(created), Vec::new())
    }

    /// One transaction: the commit and the removal of the partial tiles it completed (each
    /// transaction waits for a synchronous standby's flush, so this halves the round trips).
    fn commit_and_prune(
        &self,
        new: &[(String, Vec<u8>)],
        created: &[(String, Vec<u8>)],
        replaced: &[(String, Vec<u8>)],
        pruned: &[String],
    ) -> io::Result<()> {
        let mut upserted = owned(new);
        upserted.extend_from_slice(replaced);
        self.write("committing", upserted, owned(created), pruned.to_vec())
    }

    fn remove_dir(&self, dir: &str) -> io::Result<()> {
        self.write(
            "removing files",
            Vec::new(),
            Vec::new(),
            vec![dir.to_string()],
        )
    }

    /// Takes (or re-takes: session advisory locks nest) the writer's lock on the lock connection.
    /// Asked again by a writer, it confirms the lock: a lock connection that dropped and came back
    /// holds nothing, and if another server took the lock meanwhile the answer is `false`. On
    /// becoming the writer, the tree size is re-read, so the compare-and-swap starts from the log
    /// as the previous writer left it.
    fn try_become_writer(&self) -> io::Result<bool> {
        let Some(lock_jobs) = &self.lock_jobs else {
            return Ok(false);
        };
        let held = run_on(lock_jobs, "taking the writer's lock", true, |client| {
            Ok(client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK_KEY])?
                .get::<_, bool>(0))
        })?;
        if held {
            self.refresh()?;
        }
        Ok(held)
    }
}
