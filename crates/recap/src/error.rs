//! What can go wrong in the engine, by kind: the server answers each kind differently (a reader
//! asking past the end is a 404, a refused statement a 422, everything else a 500), and the binary
//! prints each with its cause.

use std::path::PathBuf;

use saksi_tlog::LogError;

use crate::entry::EntryError;

#[derive(Debug)]
pub enum EngineError {
    /// No entry `index` in the published log of `size` entries (a reader asked past its end).
    NoEntry { index: u64, size: u64 },
    /// A data directory that is not what it should be: already initialised, a key file missing or
    /// unreadable, the election authority's secret key present.
    DataDir { path: PathBuf, problem: String },
    /// Reading or writing a file of the data directory (outside the log) failed.
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The log's own configuration does not let the engine work: no genesis, or a rulebook this
    /// build does not know.
    Config(String),
    /// The log failed or refused (storage, corruption, a batch beyond its limits).
    Log(LogError),
    /// An entry read from the log does not decode, or does not apply to the state.
    Entry(EntryError),
    /// An earlier failure left the state unsure; restart to rebuild it from the log.
    Poisoned(String),
    /// A submitted authority statement that cannot be logged (malformed, not signed by the authority
    /// the genesis names, or a change that does not apply). Nothing was written.
    Statement(String),
}

impl EngineError {
    pub(crate) fn data_dir(path: impl Into<PathBuf>, problem: impl Into<String>) -> EngineError {
        EngineError::DataDir {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// Maps an I/O error to [`EngineError::Io`] saying what was being done.
    pub(crate) fn io(what: &str) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
        move |source| EngineError::Io {
            what: what.to_string(),
            source,
        }
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::NoEntry { index, size } => {
                write!(f, "no entry {index}: the published log has {size}")
            }
            EngineError::DataDir { path, problem } => write!(f, "{}: {problem}", path.display()),
            // The cause is the source, printed after it by whoever prints the chain.
            EngineError::Io { what, .. } => write!(f, "{what}"),
            EngineError::Config(e) => write!(f, "{e}"),
            // Transparent: the log's and the entry's errors say what they are.
            EngineError::Log(e) => write!(f, "{e}"),
            EngineError::Entry(e) => write!(f, "{e}"),
            EngineError::Poisoned(e) => write!(
                f,
                "refusing writes after an earlier failure ({e}); restart to recover"
            ),
            EngineError::Statement(e) => write!(f, "statement refused: {e}"),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Io { source, .. } => Some(source),
            EngineError::Log(e) => e.source(),
            EngineError::Entry(e) => e.source(),
            _ => None,
        }
    }
}

impl From<LogError> for EngineError {
    fn from(e: LogError) -> Self {
        EngineError::Log(e)
    }
}

impl From<EntryError> for EngineError {
    fn from(e: EntryError) -> Self {
        EngineError::Entry(e)
    }
}
