//! Any string as a tile path: never a panic, and whatever parses prints back to the same path.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(tile) = saksi_tlog::tile::Tile::parse(text) {
            assert_eq!(tile.path(), text);
        }
        let _ = saksi_election::Code::parse(text);
    }
});
