//! Reporters' contact details, for the oversight body only: encrypted on the reporter's side to the
//! oversight body's age X25519 recipient (`age1...`, enrolled in the registry by the authority), so
//! the public log holds only ciphertext. The oversight body opens them with its identity
//! (`AGE-SECRET-KEY-1...`) using `saksi contact` or any age tool (`age -d -i key.txt`).

use std::str::FromStr;

use age::secrecy::ExposeSecret as _;

/// Longest contact details, in bytes of UTF-8 (a name, a telephone number and an address): the
/// ciphertext then fits [`saksi_election::report::MAX_CONTACT_BYTES`].
pub const MAX_CONTACT_TEXT_BYTES: usize = 512;

/// Checks an age X25519 recipient (`age1...`).
pub fn check_recipient(recipient: &str) -> Result<(), String> {
    age::x25519::Recipient::from_str(recipient)
        .map(|_| ())
        .map_err(|e| format!("not an age X25519 recipient (age1...): {e}"))
}

/// Encrypts contact details to `recipient` (an age file, binary).
pub fn seal(recipient: &str, details: &str) -> Result<Vec<u8>, String> {
    if details.trim().is_empty() || details.len() > MAX_CONTACT_TEXT_BYTES {
        return Err(format!(
            "contact details are 1 to {MAX_CONTACT_TEXT_BYTES} bytes"
        ));
    }
    saksi_election::canonical::check_free_text("contact details", details)?;
    let recipient = age::x25519::Recipient::from_str(recipient)
        .map_err(|e| format!("not an age X25519 recipient (age1...): {e}"))?;
    let sealed = age::encrypt(&recipient, details.as_bytes()).map_err(|e| e.to_string())?;
    if sealed.len() > saksi_election::report::MAX_CONTACT_BYTES {
        return Err("the encrypted contact details are too long".into());
    }
    Ok(sealed)
}

/// Sealed details as a report carries them (standard base64).
pub fn to_base64(sealed: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(sealed)
}

/// Decrypts contact details with the oversight body's identity (`AGE-SECRET-KEY-1...`).
pub fn open(identity: &str, sealed: &[u8]) -> Result<String, String> {
    let identity = age::x25519::Identity::from_str(identity.trim())
        .map_err(|e| format!("not an age X25519 identity: {e}"))?;
    let plain = age::decrypt(&identity, sealed).map_err(|e| e.to_string())?;
    String::from_utf8(plain).map_err(|_| "the contact details are not UTF-8".into())
}

/// A new identity for an oversight body: (identity, recipient).
pub fn generate() -> (String, String) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    (identity.to_string().expose_secret().to_string(), recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_details_open_only_with_the_identity() {
        let (identity, recipient) = generate();
        let sealed = seal(&recipient, "Siti, 0812-0000-0000").unwrap();
        assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
        assert!(!sealed.windows(4).any(|w| w == b"Siti"));
        assert_eq!(open(&identity, &sealed).unwrap(), "Siti, 0812-0000-0000");
        let (other, _) = generate();
        assert!(open(&other, &sealed).is_err());
        assert!(seal(&recipient, &"x".repeat(MAX_CONTACT_TEXT_BYTES + 1)).is_err());
        assert!(seal("age1notakey", "Siti").is_err());
        let longest = seal(&recipient, &"x".repeat(MAX_CONTACT_TEXT_BYTES)).unwrap();
        assert!(longest.len() <= saksi_election::report::MAX_CONTACT_BYTES);
    }
}
