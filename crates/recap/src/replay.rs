//! Replay: the state rebuilt from the log's entries alone, as on every open. Decoding runs on every
//! core; applying runs in log order.

use std::sync::Arc;

use saksi_tlog::{Storage, TileReader};

use crate::entry::Entry;
use crate::error::EngineError;
use crate::state::State;

/// Entries decoded per parallel step of a replay.
const REPLAY_CHUNK_BUNDLES: u64 = 128;

/// Rebuilds the state from the first `size` entries of the log. Decoding runs on every core; applying
/// runs in log order.
pub fn replay(storage: Arc<dyn Storage>, size: u64) -> Result<State, EngineError> {
    let mut state = State::default();
    let bundles = size.div_ceil(saksi_tlog::tile::TILE_WIDTH);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let mut next = 0u64;
    while next < bundles {
        let end = (next + REPLAY_CHUNK_BUNDLES * workers).min(bundles);
        let per = (end - next).div_ceil(workers);
        let decoded: Vec<Result<Vec<Entry>, EngineError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let storage = storage.clone();
                    let from = next + w * per;
                    let to = (from + per).min(end);
                    scope.spawn(move || -> Result<Vec<Entry>, EngineError> {
                        let mut reader = TileReader::new(storage, size);
                        let mut out = Vec::new();
                        for bundle in from..to {
                            for bytes in reader.bundle(bundle)? {
                                out.push(Entry::decode(&bytes)?);
                            }
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("replay worker panicked"))
                .collect()
        });
        for part in decoded {
            for entry in part? {
                let index = state.size;
                state.apply(index, &entry)?;
            }
        }
        next = end;
    }
    Ok(state)
}
