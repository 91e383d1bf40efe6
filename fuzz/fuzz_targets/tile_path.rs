//! Any string as a tile path: never a panic (overflow checks on), whatever parses prints back to the
//! same path, and asking whether any tree size covers it never overflows.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(tile) = saksi_tlog::tile::Tile::parse(text) {
            assert_eq!(tile.path(), text);
            for size in [0, 1, 255, 256, u64::MAX / 256, u64::MAX - 1, u64::MAX] {
                let _ = tile.covered_by(size);
            }
        }
        let _ = saksi_election::Code::parse(text);
    }
});
