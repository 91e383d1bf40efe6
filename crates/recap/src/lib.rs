//! The recapitulation engine: what the log's entries are, the state (registry, TPS histories, tallies
//! at every level) derived from them, and the one writer that keeps log and state in step. Knows
//! nothing of HTTP.

pub mod engine;
pub mod entry;
pub mod inflation;
pub mod keyfile;
pub mod state;
pub mod verify;

pub use engine::{Engine, EngineError, IngestOutcome, Shared};
pub use entry::Entry;
pub use state::{State, Tally};
