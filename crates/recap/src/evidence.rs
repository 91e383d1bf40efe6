//! Evidence photos (of tally sheets, from officers and poll witnesses): stored by content, once,
//! durable before acknowledged. A photo's name is the SHA-256 of its bytes, which is what forms and
//! copies carry in their `evidence` field; the log never holds the photo itself, so anyone can check
//! a served photo against the digest the signed log holds.
//!
//! Layout: `DATA/evidence/sha256/<first two hex digits>/<64 hex digits>` (256 directories, so no
//! directory holds more than a few thousand files at national size). Writes go through the log's
//! [`DirStorage::create_durable`]: a temporary file fsynced, linked to its name (which refuses an
//! existing name), the directory fsynced; a name that already holds the same bytes is accepted, so
//! concurrent uploads of one photo both succeed and store it once.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use saksi_election::form::PhotoDigest;
use saksi_tlog::{DirStorage, Storage};

/// The largest photo accepted: a phone's photo of a sheet at full resolution fits; a video does not.
pub const MAX_PHOTO_BYTES: usize = 8 << 20;

/// The image formats accepted, recognised by their first bytes (never by a name or a header the
/// client chose).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhotoType {
    Jpeg,
    Png,
    Webp,
}

impl PhotoType {
    pub fn sniff(bytes: &[u8]) -> Option<PhotoType> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(PhotoType::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(PhotoType::Png)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(PhotoType::Webp)
        } else {
            None
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            PhotoType::Jpeg => "image/jpeg",
            PhotoType::Png => "image/png",
            PhotoType::Webp => "image/webp",
        }
    }
}

#[derive(Debug)]
pub enum EvidenceError {
    TooLarge { bytes: usize },
    UnsupportedType,
    Io(io::Error),
}

impl std::fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvidenceError::TooLarge { bytes } => write!(
                f,
                "a photo of {bytes} bytes is larger than {MAX_PHOTO_BYTES} bytes"
            ),
            EvidenceError::UnsupportedType => {
                write!(f, "not a JPEG, PNG or WebP image (by its first bytes)")
            }
            EvidenceError::Io(e) => write!(f, "evidence store: {e}"),
        }
    }
}

impl std::error::Error for EvidenceError {}

impl From<io::Error> for EvidenceError {
    fn from(e: io::Error) -> Self {
        EvidenceError::Io(e)
    }
}

/// A photo as stored: its digest and type, and whether this call stored it (false: it was there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub digest: PhotoDigest,
    pub kind: PhotoType,
    pub bytes: usize,
    pub created: bool,
}

pub struct EvidenceStore {
    /// A [`DirStorage`], or a [`saksi_tlog::ReadOnlyDir`] on a read replica (a mirror's copy that
    /// `saksi mirror --evidence` keeps writing).
    storage: Box<dyn Storage>,
    /// The directory, when the photos are files (`None`: in a shared store, or none at all).
    root: Option<std::path::PathBuf>,
    photos: AtomicU64,
    stored_bytes: AtomicU64,
}

fn path_of(digest: &PhotoDigest) -> String {
    let hex = saksi_election::form::hex(&digest.0);
    format!("sha256/{}/{hex}", &hex[..2])
}

impl EvidenceStore {
    /// Opens (creating) the store in `dir`, counting what it holds for the disk-use report.
    pub fn open(dir: &Path) -> io::Result<EvidenceStore> {
        let storage = Box::new(DirStorage::open(dir)?);
        let (mut photos, mut bytes) = (0u64, 0u64);
        for shard in 0..=255u8 {
            let shard_dir = dir.join("sha256").join(format!("{shard:02x}"));
            let Ok(entries) = std::fs::read_dir(&shard_dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(meta) = entry.metadata() {
                    if meta.is_file() {
                        photos += 1;
                        bytes += meta.len();
                    }
                }
            }
        }
        Ok(EvidenceStore {
            storage,
            root: Some(dir.to_path_buf()),
            photos: AtomicU64::new(photos),
            stored_bytes: AtomicU64::new(bytes),
        })
    }

    /// Opens `dir` to serve what another process stores there: no lock, nothing created, and
    /// [`EvidenceStore::put`] refused. (Its usage is not counted: a replica reports none.)
    pub fn open_read_only(dir: &Path) -> EvidenceStore {
        EvidenceStore {
            storage: Box::new(saksi_tlog::ReadOnlyDir::new(dir)),
            root: Some(dir.to_path_buf()),
            photos: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
        }
    }

    /// Photos in `storage` (a shared store's, beside the log), holding `usage` (photos, bytes).
    pub fn in_storage(storage: Box<dyn Storage>, usage: (u64, u64)) -> EvidenceStore {
        EvidenceStore {
            storage,
            root: None,
            photos: AtomicU64::new(usage.0),
            stored_bytes: AtomicU64::new(usage.1),
        }
    }

    /// A store that holds no photo and takes none: a replica started without `--evidence`.
    pub fn none() -> EvidenceStore {
        EvidenceStore {
            storage: Box::new(crate::replica::NoFiles),
            root: None,
            photos: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
        }
    }

    /// Stores `bytes` if it is a photo within the limit; durable when this returns `Ok`.
    pub fn put(&self, bytes: &[u8]) -> Result<Stored, EvidenceError> {
        if bytes.len() > MAX_PHOTO_BYTES {
            return Err(EvidenceError::TooLarge { bytes: bytes.len() });
        }
        let kind = PhotoType::sniff(bytes).ok_or(EvidenceError::UnsupportedType)?;
        let digest = PhotoDigest::of(bytes);
        let path = path_of(&digest);
        let stored = |created| Stored {
            digest,
            kind,
            bytes: bytes.len(),
            created,
        };
        // Already there with these bytes: nothing to write (the file was durable when stored).
        if self.storage.read(&path)?.as_deref() == Some(bytes) {
            return Ok(stored(false));
        }
        // Two uploads of one photo may both get here; the second finds the same bytes under the
        // name and succeeds without a second copy. Other bytes under the name would be a corrupted
        // store: create_durable refuses to overwrite them, and the caller answers 500.
        self.storage.create_durable(&[(path, bytes.to_vec())])?;
        self.photos.fetch_add(1, Ordering::Relaxed);
        self.stored_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(stored(true))
    }

    /// The photo named `digest`, if stored, with its type; a file that does not hash to its name
    /// is reported as an error, never served.
    pub fn get(&self, digest: &PhotoDigest) -> io::Result<Option<(Vec<u8>, PhotoType)>> {
        let Some(bytes) = self.storage.read(&path_of(digest))? else {
            return Ok(None);
        };
        if PhotoDigest::of(&bytes) != *digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "stored photo {} does not hash to its name",
                    digest.to_text()
                ),
            ));
        }
        let kind = PhotoType::sniff(&bytes).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "a stored photo is not an image")
        })?;
        Ok(Some((bytes, kind)))
    }

    /// Whether a photo of this digest is stored (its name only: [`EvidenceStore::get`] checks the
    /// bytes when it is served).
    pub fn contains(&self, digest: &PhotoDigest) -> bool {
        match &self.root {
            Some(root) => root.join(path_of(digest)).is_file(),
            None => self
                .storage
                .read(&path_of(digest))
                .is_ok_and(|b| b.is_some()),
        }
    }

    /// Photos stored and their bytes (a concurrent duplicate may count twice until a restart).
    pub fn usage(&self) -> (u64, u64) {
        (
            self.photos.load(Ordering::Relaxed),
            self.stored_bytes.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(extra: u8) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 13, b'I', b'H', b'D', b'R', extra]);
        bytes
    }

    #[test]
    fn photos_are_sniffed_stored_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("saksi-evidence-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = EvidenceStore::open(&dir).unwrap();
        assert_eq!(
            PhotoType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(PhotoType::Jpeg)
        );
        assert_eq!(
            PhotoType::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(PhotoType::Webp)
        );
        assert_eq!(PhotoType::sniff(b"GIF89a"), None);
        assert!(matches!(
            store.put(b"GIF89a...."),
            Err(EvidenceError::UnsupportedType)
        ));
        let big = [png(1), vec![0; MAX_PHOTO_BYTES]].concat();
        assert!(matches!(
            store.put(&big),
            Err(EvidenceError::TooLarge { .. })
        ));

        let first = store.put(&png(1)).unwrap();
        assert!(first.created);
        assert_eq!(first.kind, PhotoType::Png);
        assert!(!store.put(&png(1)).unwrap().created, "stored once");
        assert_eq!(store.usage(), (1, png(1).len() as u64));
        assert_eq!(
            store.get(&first.digest).unwrap(),
            Some((png(1), PhotoType::Png))
        );
        assert_eq!(store.get(&PhotoDigest::of(b"absent")).unwrap(), None);

        // Concurrent uploads of one photo: every one succeeds, one file results.
        let photo = png(2);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| store.put(&photo).unwrap());
            }
        });
        drop(store);
        let reopened = EvidenceStore::open(&dir).unwrap();
        assert_eq!(reopened.usage().0, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
