//! The recapitulation engine: what the log's entries are, the state (registry, TPS histories, tallies
//! at every level) derived from them, and the one writer that keeps log and state in step. Knows
//! nothing of HTTP.

mod batch;
pub mod contact;
mod cosign;
pub mod datadir;
pub mod engine;
pub mod entry;
mod error;
pub mod evidence;
pub mod inflation;
pub mod keyfile;
pub mod publication;
pub mod relay;
pub mod replay;
pub mod replica;
pub mod report_texts;
mod shared;
pub mod state;
pub mod statements;
pub mod verify;

pub use datadir::{DataDir, ServerKeys};
pub use engine::{Engine, EngineError, IngestOutcome, LogStore, Shared};
pub use entry::Entry;
pub use shared::{Event, Observer, Role};
pub use state::{State, Tally};
