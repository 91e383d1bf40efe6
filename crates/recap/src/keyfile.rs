//! Key files, in one format and written one way: `saksi-secret-key-v1 <base64 seed>` for Ed25519
//! keys (officers, commissions, the authority, the operator), the Go note format for signer keys
//! (the log's, a witness's). A secret is written only to a new file (never over one), mode 0600,
//! and fsynced before it is used: a key that signed something must not be lost to a crash.

use std::io::{self, Write};
use std::path::Path;

use saksi_election::sign::SecretKey;

const SECRET_KEY_PREFIX: &str = "saksi-secret-key-v1 ";

/// The file text of an Ed25519 key.
pub fn secret_key_text(key: &SecretKey) -> String {
    use base64::Engine as _;
    format!(
        "{SECRET_KEY_PREFIX}{}\n",
        base64::engine::general_purpose::STANDARD.encode(key.seed())
    )
}

/// An Ed25519 key from its file text, or `None` if the text is not one.
pub fn parse_secret_key(text: &str) -> Option<SecretKey> {
    use base64::Engine as _;
    let seed: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(text.trim().strip_prefix(SECRET_KEY_PREFIX)?)
        .ok()?
        .try_into()
        .ok()?;
    Some(SecretKey::from_seed(seed))
}

/// Reads an Ed25519 key file; the error names the file and what is wrong with it.
pub fn read_secret_key(path: &Path) -> Result<SecretKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_secret_key(&text).ok_or_else(|| format!("{}: not a saksi secret key", path.display()))
}

/// Writes a secret to a new file: refused if the file exists, mode 0600, fsynced.
pub fn write_new_secret(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// A new Ed25519 key, written to a new file.
pub fn generate_secret_key_file(path: &Path) -> io::Result<SecretKey> {
    let key = SecretKey::generate();
    write_new_secret(path, &secret_key_text(&key))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_round_trips_and_junk_is_not_a_key() {
        let key = SecretKey::from_seed([3; 32]);
        let text = secret_key_text(&key);
        assert_eq!(parse_secret_key(&text).unwrap().public(), key.public());
        assert!(parse_secret_key("saksi-secret-key-v1 AAAA").is_none());
        assert!(parse_secret_key("ssh-ed25519 AAAA").is_none());
    }
}
