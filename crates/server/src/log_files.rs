//! `/log/`: the files of the log directory that the published checkpoint covers, with the cache
//! headers a CDN needs (tiles immutable, the checkpoint briefly).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use saksi_tlog::tile::Tile;

use crate::api_error::ApiError;
use crate::App;

/// A path under `/log/` that names a file of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LogPath {
    /// `checkpoint`: the latest published checkpoint (changes).
    Checkpoint,
    /// `checkpoints/<size>`: a committed checkpoint (never changes).
    CheckpointAt(u64),
    /// `tile/...`: a hash tile or an entry bundle (never changes once published).
    Tile(Tile),
}

impl LogPath {
    /// Only the canonical spelling of each path parses.
    fn parse(path: &str) -> Option<LogPath> {
        if path == "checkpoint" {
            return Some(LogPath::Checkpoint);
        }
        if let Some(n) = path.strip_prefix("checkpoints/") {
            return n
                .parse::<u64>()
                .ok()
                .filter(|v| v.to_string() == n)
                .map(LogPath::CheckpointAt);
        }
        Tile::parse(path).ok().map(LogPath::Tile)
    }

    /// Whether a log published at `size` has this file.
    fn covered_by(&self, size: u64) -> bool {
        match self {
            LogPath::Checkpoint => true,
            LogPath::CheckpointAt(n) => *n <= size,
            LogPath::Tile(tile) => tile.covered_by(size),
        }
    }

    fn content_type(&self) -> &'static str {
        match self {
            LogPath::Tile(_) => "application/octet-stream",
            _ => "text/plain; charset=utf-8",
        }
    }

    /// Published tiles and committed checkpoints never change: CDNs may keep them. The latest
    /// checkpoint does change.
    fn cache_control(&self) -> &'static str {
        match self {
            LogPath::Checkpoint => "public, max-age=2",
            _ => "public, max-age=31536000, immutable",
        }
    }
}

/// Serves a file of the log directory, if the published checkpoint covers it.
pub(crate) async fn log_file(State(app): State<App>, Path(path): Path<String>) -> Response {
    // The checkpoint comes from memory: the latest durable one, the one every API answer names (the
    // file on disk may trail it by up to PUBLISH_INTERVAL, see saksi_recap::publication).
    serve(app.shared.storage.clone(), &app.shared.published(), path).await
}

/// Serves `path` of the log in `storage` as published at `published` (its checkpoint from memory):
/// the main log's `/log/` and a relay's.
pub(crate) async fn serve(
    storage: std::sync::Arc<dyn saksi_tlog::Storage>,
    published: &saksi_tlog::Published,
    path: String,
) -> Response {
    let Some(file) = LogPath::parse(&path).filter(|f| f.covered_by(published.checkpoint.size))
    else {
        return ApiError::NotInLog.response();
    };
    let bytes = if file == LogPath::Checkpoint {
        published.note.clone().into_bytes()
    } else {
        match tokio::task::spawn_blocking(move || storage.read(&path)).await {
            Ok(Ok(Some(bytes))) => bytes,
            _ => return ApiError::NotFound.response(),
        }
    };
    (
        [
            (header::CONTENT_TYPE, file.content_type()),
            (header::CACHE_CONTROL, file.cache_control()),
            // Public, signed data: any site's page may check itself against this log (a mirror
            // for another origin's verifier); nothing here depends on who asks.
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_parse_only_canonically_and_know_their_size() {
        assert_eq!(LogPath::parse("checkpoint"), Some(LogPath::Checkpoint));
        assert_eq!(
            LogPath::parse("checkpoints/12"),
            Some(LogPath::CheckpointAt(12))
        );
        assert_eq!(LogPath::parse("checkpoints/012"), None);
        assert_eq!(LogPath::parse("checkpoints/-1"), None);
        assert_eq!(LogPath::parse("../keys/log.key"), None);
        assert!(LogPath::parse("checkpoints/12").unwrap().covered_by(12));
        assert!(!LogPath::parse("checkpoints/13").unwrap().covered_by(12));
        let tile = LogPath::parse("tile/entries/000.p/5").unwrap();
        assert!(tile.covered_by(5) && !tile.covered_by(4));
        assert_eq!(tile.content_type(), "application/octet-stream");
        assert_eq!(LogPath::Checkpoint.cache_control(), "public, max-age=2");
    }
}
