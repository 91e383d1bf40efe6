//! C2SP tlog-tiles resources: tile paths (`tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`), tile
//! arithmetic, and entry bundles (big-endian uint16 length-prefixed entries).

use std::fmt;

use crate::hash::{Hash, HASH_SIZE};

/// Hashes in a full tile, entries in a full bundle.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels one tile spans.
pub const TILE_HEIGHT: u32 = 8;
/// Largest entry: the bundle's length prefix is 16 bits.
pub const MAX_ENTRY_BYTES: usize = 65_535;
/// Highest tile level the spec allows.
pub const MAX_TILE_LEVEL: u8 = 63;

/// What a tile holds: Merkle tree hashes at a level, or entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    Hashes { level: u8 },
    Entries,
}

/// One tile resource. `width` is 256 for a full tile, 1..=255 for a partial one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub kind: TileKind,
    pub index: u64,
    pub width: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TilePathError(pub String);

impl fmt::Display for TilePathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad tile path: {}", self.0)
    }
}

impl std::error::Error for TilePathError {}

/// `x001/x234/067` for 1234067.
pub fn encode_index(index: u64) -> String {
    let mut text = format!("{:03}", index % 1000);
    let mut rest = index / 1000;
    while rest > 0 {
        text = format!("x{:03}/{text}", rest % 1000);
        rest /= 1000;
    }
    text
}

impl Tile {
    pub fn is_full(&self) -> bool {
        self.width as u64 == TILE_WIDTH
    }

    /// Whether the tree of `size` entries has this tile: full, or a partial one of this width or
    /// narrower. Such a path holds final bytes once a checkpoint of that size is published.
    pub fn covered_by(&self, size: u64) -> bool {
        let available = match self.kind {
            TileKind::Entries => size,
            TileKind::Hashes { level } => stored_hashes_at(level, size),
        };
        // Checked: a parsed index may be up to 10^18-ish, and index * 256 overflows u64.
        self.index
            .checked_mul(TILE_WIDTH)
            .and_then(|start| start.checked_add(self.width as u64))
            .is_some_and(|end| end <= available)
    }

    /// The path relative to the log prefix.
    pub fn path(&self) -> String {
        let kind = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".to_string(),
        };
        let mut path = format!("tile/{kind}/{}", encode_index(self.index));
        if !self.is_full() {
            path.push_str(&format!(".p/{}", self.width));
        }
        path
    }

    /// Parses a path relative to the log prefix; accepts only the canonical spelling.
    pub fn parse(path: &str) -> Result<Tile, TilePathError> {
        let bad = |why: &str| TilePathError(format!("{why}: {path:?}"));
        if path.len() > 128 {
            return Err(bad("too long"));
        }
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| bad("must start with tile/"))?;
        let (kind_text, rest) = rest.split_once('/').ok_or_else(|| bad("no index"))?;
        let kind = if kind_text == "entries" {
            TileKind::Entries
        } else {
            let canonical = !kind_text.is_empty()
                && kind_text.bytes().all(|b| b.is_ascii_digit())
                && (kind_text == "0" || !kind_text.starts_with('0'));
            let level: u8 = if canonical {
                kind_text.parse().map_err(|_| bad("bad level"))?
            } else {
                return Err(bad("bad level"));
            };
            if level > MAX_TILE_LEVEL {
                return Err(bad("level above 63"));
            }
            TileKind::Hashes { level }
        };
        let (index_text, width) = match rest.split_once(".p/") {
            None => (rest, TILE_WIDTH as u16),
            Some((index_text, width_text)) => {
                let canonical = !width_text.is_empty()
                    && width_text.bytes().all(|b| b.is_ascii_digit())
                    && !width_text.starts_with('0');
                let width: u16 = if canonical {
                    width_text.parse().map_err(|_| bad("bad width"))?
                } else {
                    return Err(bad("bad width"));
                };
                if !(1..TILE_WIDTH as u16).contains(&width) {
                    return Err(bad("partial width must be 1..=255"));
                }
                (index_text, width)
            }
        };
        let elements: Vec<&str> = index_text.split('/').collect();
        let mut index: u64 = 0;
        for (i, element) in elements.iter().enumerate() {
            let last = i + 1 == elements.len();
            let digits = if last {
                *element
            } else {
                element
                    .strip_prefix('x')
                    .ok_or_else(|| bad("inner index elements start with x"))?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("index elements are 3 digits"));
            }
            index = index
                .checked_mul(1000)
                .and_then(|n| n.checked_add(digits.parse::<u64>().ok()?))
                .ok_or_else(|| bad("index out of range"))?;
        }
        let tile = Tile { kind, index, width };
        if tile.path() != path {
            return Err(bad("not the canonical spelling"));
        }
        Ok(tile)
    }
}

/// The tile at `level` (tile level, not tree level) holding stored hash `n` for a tree of `size`
/// leaves: full if the tree has filled it, partial otherwise. `None` if the tree has no such hash.
pub fn tile_for(level: u8, n: u64, size: u64) -> Option<Tile> {
    let count = stored_hashes_at(level, size);
    if n >= count {
        return None;
    }
    let index = n / TILE_WIDTH;
    let width = (count - index * TILE_WIDTH).min(TILE_WIDTH) as u16;
    Some(Tile {
        kind: TileKind::Hashes { level },
        index,
        width,
    })
}

/// How many hashes a tree of `size` leaves stores at tile level `level`: nodes at tree level
/// 8 * level, each covering 256^level leaves.
pub fn stored_hashes_at(level: u8, size: u64) -> u64 {
    let shift = TILE_HEIGHT as u64 * level as u64;
    if shift >= 64 {
        0
    } else {
        size >> shift
    }
}

/// The tiles and bundles a tree of `size` leaves publishes at its right edge: every partial tile
/// (the full ones are shared with larger trees).
pub fn partial_tiles(size: u64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    let entries_width = size % TILE_WIDTH;
    if entries_width > 0 {
        tiles.push(Tile {
            kind: TileKind::Entries,
            index: size / TILE_WIDTH,
            width: entries_width as u16,
        });
    }
    for level in 0..=MAX_TILE_LEVEL {
        let count = stored_hashes_at(level, size);
        if count == 0 {
            break;
        }
        let width = count % TILE_WIDTH;
        if width > 0 {
            tiles.push(Tile {
                kind: TileKind::Hashes { level },
                index: count / TILE_WIDTH,
                width: width as u16,
            });
        }
    }
    tiles
}

pub fn encode_hashes(hashes: &[Hash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hashes.len() * HASH_SIZE);
    for hash in hashes {
        out.extend_from_slice(&hash.0);
    }
    out
}

pub fn decode_hashes(bytes: &[u8], width: u16) -> Result<Vec<Hash>, TilePathError> {
    if bytes.len() != width as usize * HASH_SIZE {
        return Err(TilePathError(format!(
            "tile has {} bytes, expected {}",
            bytes.len(),
            width as usize * HASH_SIZE
        )));
    }
    Ok(bytes
        .chunks_exact(HASH_SIZE)
        .map(|c| Hash(c.try_into().expect("chunks of 32")))
        .collect())
}

/// Appends one entry to a bundle. The caller has checked `entry.len() <= MAX_ENTRY_BYTES`.
pub fn push_entry(bundle: &mut Vec<u8>, entry: &[u8]) {
    debug_assert!(entry.len() <= MAX_ENTRY_BYTES);
    bundle.extend_from_slice(&(entry.len() as u16).to_be_bytes());
    bundle.extend_from_slice(entry);
}

/// Splits a bundle into its entries; it must hold exactly `width` of them and nothing else.
pub fn decode_bundle(bytes: &[u8], width: u16) -> Result<Vec<&[u8]>, TilePathError> {
    let mut entries = Vec::with_capacity(width as usize);
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(TilePathError(
                "entry bundle ends inside a length prefix".into(),
            ));
        }
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + len {
            return Err(TilePathError("entry bundle ends inside an entry".into()));
        }
        entries.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
        if entries.len() > width as usize {
            break;
        }
    }
    if entries.len() != width as usize {
        return Err(TilePathError(format!(
            "entry bundle has {} entries, expected {width}",
            entries.len()
        )));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covered_by_never_overflows_on_a_huge_parsed_index() {
        // Index 999...999 (18 digits) times 256 is beyond u64: not covered, and no panic in debug.
        let path = "tile/entries/x999/x999/x999/x999/x999/999";
        let tile = Tile::parse(path).unwrap();
        assert!(!tile.covered_by(u64::MAX));
        let tile = Tile::parse("tile/0/x999/x999/x999/x999/x999/999.p/7").unwrap();
        assert!(!tile.covered_by(u64::MAX));
        assert!(Tile::parse("tile/entries/001").unwrap().covered_by(512));
    }

    #[test]
    fn paths() {
        assert_eq!(encode_index(1234067), "x001/x234/067");
        assert_eq!(encode_index(0), "000");
        let tile = Tile {
            kind: TileKind::Hashes { level: 1 },
            index: 1234067,
            width: 17,
        };
        assert_eq!(tile.path(), "tile/1/x001/x234/067.p/17");
        assert_eq!(Tile::parse(&tile.path()).unwrap(), tile);
        let bundle = Tile {
            kind: TileKind::Entries,
            index: 5,
            width: 256,
        };
        assert_eq!(Tile::parse("tile/entries/005").unwrap(), bundle);
        for bad in [
            "tile/1/x000/005",
            "tile/01/005",
            "tile/1/5",
            "tile/1/005.p/0",
            "tile/1/005.p/256",
            "tile/1/005.p/07",
            "tile/64/000",
            "tile/entries/x1/000",
            "tiles/0/000",
            "tile/0/000/",
            "tile/0/x001",
            "tile/-1/000",
        ] {
            assert!(Tile::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_example_70000() {
        // 273 full level-0 tiles, a partial of 112, a full level-1 tile, a partial of 17, a level-2 of 1.
        let tiles = partial_tiles(70_000);
        let widths: Vec<(TileKind, u64, u16)> =
            tiles.iter().map(|t| (t.kind, t.index, t.width)).collect();
        assert_eq!(
            widths,
            vec![
                (TileKind::Entries, 273, 112),
                (TileKind::Hashes { level: 0 }, 273, 112),
                (TileKind::Hashes { level: 1 }, 1, 17),
                (TileKind::Hashes { level: 2 }, 0, 1),
            ]
        );
        assert_eq!(
            partial_tiles(256),
            vec![Tile {
                kind: TileKind::Hashes { level: 1 },
                index: 0,
                width: 1
            }]
        );
    }

    #[test]
    fn bundles() {
        let mut bundle = Vec::new();
        push_entry(&mut bundle, b"one");
        push_entry(&mut bundle, b"");
        assert_eq!(
            decode_bundle(&bundle, 2).unwrap(),
            vec![&b"one"[..], &b""[..]]
        );
        assert!(decode_bundle(&bundle, 3).is_err());
        assert!(decode_bundle(&bundle[..bundle.len() - 1], 2).is_err());
    }
}
