//! Report texts by SHA-256, beside the log: a report entry names its text's digest, so a moderator
//! can stop serving a text while the log keeps the digest and the reporter's signature. Each text
//! is created once through the log's durable create (temp file, fsync, link, directory fsync).

use std::io;
use std::path::Path;

use saksi_tlog::{DirStorage, Storage};

use saksi_election::form::hex;
use saksi_election::report::{check_text, text_digest};

pub struct ReportTexts {
    /// A [`DirStorage`], or a [`saksi_tlog::ReadOnlyDir`] on a read replica.
    storage: Box<dyn Storage>,
}

fn path_of(digest: &[u8; 32]) -> String {
    let hex = hex(digest);
    format!("sha256/{}/{hex}", &hex[..2])
}

impl ReportTexts {
    pub fn open(dir: &Path) -> io::Result<ReportTexts> {
        Ok(ReportTexts {
            storage: Box::new(DirStorage::open(dir)?),
        })
    }

    /// Texts in `storage` (a shared store's, beside the log).
    pub fn in_storage(storage: Box<dyn Storage>) -> ReportTexts {
        ReportTexts { storage }
    }

    /// No text, and none taken: a replica started without `--reports`.
    pub fn none() -> ReportTexts {
        ReportTexts {
            storage: Box::new(crate::replica::NoFiles),
        }
    }

    /// Opens `dir` to serve what another process stores there (`saksi mirror --reports`): no lock,
    /// nothing created, every write refused.
    pub fn open_read_only(dir: &Path) -> ReportTexts {
        ReportTexts {
            storage: Box::new(saksi_tlog::ReadOnlyDir::new(dir)),
        }
    }

    /// Stores a text (checked by [`check_text`]); durable when this returns. Returns its digest.
    pub fn put(&self, text: &str) -> io::Result<[u8; 32]> {
        check_text(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let digest = text_digest(text);
        let path = path_of(&digest);
        if self.storage.read(&path)?.as_deref() == Some(text.as_bytes()) {
            return Ok(digest);
        }
        self.storage
            .create_durable(&[(path, text.as_bytes().to_vec())])?;
        Ok(digest)
    }

    /// The text named `digest`, if stored; one that does not hash to its name is an error.
    pub fn get(&self, digest: &[u8; 32]) -> io::Result<Option<String>> {
        let Some(bytes) = self.storage.read(&path_of(digest))? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes)
            .ok()
            .filter(|t| text_digest(t) == *digest)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "stored report text {} does not hash to its name",
                        hex(digest)
                    ),
                )
            })?;
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_once_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("saksi-texts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let texts = ReportTexts::open(&dir).unwrap();
        let digest = texts.put("Kotak suara dibuka sebelum waktunya.").unwrap();
        assert_eq!(
            texts.put("Kotak suara dibuka sebelum waktunya.").unwrap(),
            digest
        );
        assert_eq!(
            texts.get(&digest).unwrap().as_deref(),
            Some("Kotak suara dibuka sebelum waktunya.")
        );
        assert!(texts.get(&[0; 32]).unwrap().is_none());
        assert!(texts.put("bad \u{202e} text").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
