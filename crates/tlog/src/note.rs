//! C2SP signed notes (c2sp.org/signed-note), byte-compatible with Go's `golang.org/x/mod/sumdb/note`:
//! Ed25519 note signatures (type 0x01), timestamped Ed25519 cosignatures (type 0x04,
//! c2sp.org/tlog-cosignature), verifier keys (`name+hash+base64(type || key)`) and signer keys
//! (`PRIVATE+KEY+name+hash+base64(type || seed)`).
//!
//! Opening a note follows the spec and Go: every signature line must be well formed; signatures from
//! unknown keys are kept aside, unverified; a known key whose signature fails rejects the whole note;
//! a note with no verified signature is rejected.

use std::fmt;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest, Sha256};

/// Most signature lines we read in one note (Go's limit; the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;
/// Largest note we read, in bytes: a checkpoint with 100 cosignatures is under 15 KB.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

pub const TYPE_ED25519: u8 = 0x01;
pub const TYPE_COSIGNATURE_V1: u8 = 0x04;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoteError {
    Malformed(String),
    BadKey(String),
    /// A signature by a known key did not verify.
    InvalidSignature {
        name: String,
        id: u32,
    },
    /// No signature by any known key.
    Unverified,
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoteError::Malformed(why) => write!(f, "malformed note: {why}"),
            NoteError::BadKey(why) => write!(f, "bad key: {why}"),
            NoteError::InvalidSignature { name, id } => {
                write!(f, "invalid signature by {name}+{id:08x}")
            }
            NoteError::Unverified => write!(f, "note has no signature from a known key"),
        }
    }
}

impl std::error::Error for NoteError {}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Key names: non-empty, valid UTF-8 (it is a &str), no Unicode white space, no '+'.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// SHA-256(name || "\n" || type || key)[:4], big-endian.
pub fn key_id(name: &str, kind: u8, key: &[u8]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([kind]);
    hasher.update(key);
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A public key that can check note signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    pub name: String,
    pub id: u32,
    pub kind: u8,
    pub key: [u8; 32],
}

impl Verifier {
    /// Parses `name+hash+base64(type || key)`; the hash must match the key.
    pub fn parse(vkey: &str) -> Result<Verifier, NoteError> {
        let bad = |why: &str| NoteError::BadKey(format!("{why}: {vkey:?}"));
        // Base64 may contain '+': the key is everything after the second '+'.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hash), Some(key64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected name+hash+key"));
        };
        if !is_valid_name(name) || hash.len() != 8 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("bad name or key hash"));
        }
        let id = u32::from_str_radix(hash, 16).map_err(|_| bad("bad key hash"))?;
        let raw = b64().decode(key64).map_err(|_| bad("key is not base64"))?;
        let (&kind, key) = raw.split_first().ok_or_else(|| bad("empty key"))?;
        if kind != TYPE_ED25519 && kind != TYPE_COSIGNATURE_V1 {
            return Err(bad("unsupported key type"));
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&key)
            .map_err(|_| bad("not an Ed25519 public key"))?;
        if key_id(name, kind, &key) != id {
            return Err(bad("key hash does not match the key"));
        }
        Ok(Verifier {
            name: name.to_string(),
            id,
            kind,
            key,
        })
    }

    pub fn new(name: &str, kind: u8, key: [u8; 32]) -> Result<Verifier, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::BadKey(format!("invalid key name {name:?}")));
        }
        Ok(Verifier {
            name: name.to_string(),
            id: key_id(name, kind, &key),
            kind,
            key,
        })
    }

    /// The vkey string.
    pub fn encode(&self) -> String {
        let mut raw = vec![self.kind];
        raw.extend_from_slice(&self.key);
        format!("{}+{:08x}+{}", self.name, self.id, b64().encode(raw))
    }

    /// Checks `signature` (the bytes after the 4-byte key ID) over a note's `text`.
    pub fn verify(&self, text: &str, signature: &[u8]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.key) else {
            return false;
        };
        match self.kind {
            TYPE_ED25519 => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                key.verify(text.as_bytes(), &sig).is_ok()
            }
            TYPE_COSIGNATURE_V1 => {
                let Some((timestamp, sig)) = split_cosignature(signature) else {
                    return false;
                };
                let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
                    return false;
                };
                key.verify(&cosigned_message(timestamp, text), &sig).is_ok()
            }
            _ => false,
        }
    }
}

/// A cosignature's signed bytes are u64 timestamp (big-endian) || 64-byte signature.
fn split_cosignature(signature: &[u8]) -> Option<(u64, &[u8])> {
    if signature.len() != 8 + 64 {
        return None;
    }
    let timestamp = u64::from_be_bytes(signature[..8].try_into().ok()?);
    (timestamp <= i64::MAX as u64).then_some((timestamp, &signature[8..]))
}

/// The message a tlog-cosignature/v1 signs: header, time line, then the checkpoint's note text.
pub fn cosigned_message(timestamp: u64, text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

/// A private key that signs notes (type 0x01) or cosignatures (type 0x04).
pub struct Signer {
    pub name: String,
    pub kind: u8,
    key: ed25519_dalek::SigningKey,
}

impl Signer {
    pub fn new(name: &str, kind: u8, seed: [u8; 32]) -> Result<Signer, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::BadKey(format!("invalid key name {name:?}")));
        }
        if kind != TYPE_ED25519 && kind != TYPE_COSIGNATURE_V1 {
            return Err(NoteError::BadKey("unsupported key type".into()));
        }
        Ok(Signer {
            name: name.to_string(),
            kind,
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    pub fn generate(name: &str, kind: u8) -> Result<Signer, NoteError> {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        Signer::new(name, kind, seed)
    }

    /// Parses Go's `PRIVATE+KEY+name+hash+base64(type || seed)`.
    pub fn parse(skey: &str) -> Result<Signer, NoteError> {
        let bad = |why: &str| NoteError::BadKey(why.to_string());
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("a signer key starts with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hash), Some(key64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected PRIVATE+KEY+name+hash+key"));
        };
        let raw = b64().decode(key64).map_err(|_| bad("key is not base64"))?;
        let (&kind, seed) = raw.split_first().ok_or_else(|| bad("empty key"))?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| bad("an Ed25519 seed is 32 bytes"))?;
        let signer = Signer::new(name, kind, seed)?;
        if format!("{:08x}", signer.verifier().id) != hash {
            return Err(bad("key hash does not match the key"));
        }
        Ok(signer)
    }

    pub fn encode(&self) -> String {
        let mut raw = vec![self.kind];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.verifier().id,
            b64().encode(raw)
        )
    }

    pub fn verifier(&self) -> Verifier {
        let key = self.key.verifying_key().to_bytes();
        Verifier {
            name: self.name.clone(),
            id: key_id(&self.name, self.kind, &key),
            kind: self.kind,
            key,
        }
    }

    /// The signature line for `text` (type 0x01), or for a cosignature at `timestamp` (type 0x04).
    pub fn sign_line(&self, text: &str, timestamp: u64) -> String {
        let mut raw = self.verifier().id.to_be_bytes().to_vec();
        match self.kind {
            TYPE_COSIGNATURE_V1 => {
                raw.extend_from_slice(&timestamp.to_be_bytes());
                raw.extend_from_slice(
                    &self.key.sign(&cosigned_message(timestamp, text)).to_bytes(),
                );
            }
            _ => raw.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes()),
        }
        format!("\u{2014} {} {}\n", self.name, b64().encode(raw))
    }
}

/// A signature line as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureLine {
    pub name: String,
    pub id: u32,
    /// The base64 text after the name, as it appeared.
    pub base64: String,
}

impl SignatureLine {
    pub fn encode(&self) -> String {
        format!("\u{2014} {} {}\n", self.name, self.base64)
    }

    /// The timestamp of a cosignature line (the 8 bytes after the key ID).
    pub fn cosignature_timestamp(&self) -> Option<u64> {
        let raw = b64().decode(&self.base64).ok()?;
        split_cosignature(raw.get(4..)?).map(|(t, _)| t)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    pub verified: Vec<SignatureLine>,
    pub unverified: Vec<SignatureLine>,
}

/// Checks note text is signable: valid UTF-8 (a &str), no control characters but newline, ends in a
/// newline.
pub fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end in a newline".into()));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed(
            "text contains a control character".into(),
        ));
    }
    Ok(())
}

/// A signed note: text, blank line, one signature line per signer.
pub fn sign(text: &str, signers: &[&Signer], timestamp: u64) -> Result<String, NoteError> {
    check_text(text)?;
    if text.contains("\n\n") && text.ends_with("\n\n") {
        return Err(NoteError::Malformed(
            "text cannot end in a blank line".into(),
        ));
    }
    let mut out = String::with_capacity(text.len() + 100 * signers.len().max(1));
    out.push_str(text);
    out.push('\n');
    for signer in signers {
        out.push_str(&signer.sign_line(text, timestamp));
    }
    Ok(out)
}

/// Parses a signed note and verifies it against `known` keys.
pub fn open(message: &[u8], known: &[Verifier]) -> Result<Note, NoteError> {
    let malformed = |why: &str| NoteError::Malformed(why.to_string());
    if message.len() > MAX_NOTE_BYTES {
        return Err(malformed("too large"));
    }
    let message = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    if message.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed("control character"));
    }
    let split = message
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let (text, signatures) = (&message[..split + 1], &message[split + 2..]);
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err(malformed("signature block must end in a newline"));
    }
    let mut note = Note {
        text: text.to_string(),
        verified: Vec::new(),
        unverified: Vec::new(),
    };
    let mut count = 0;
    for line in signatures[..signatures.len() - 1].split('\n') {
        let body = line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| malformed("signature line must start with an em dash and a space"))?;
        let (name, sig64) = body
            .split_once(' ')
            .ok_or_else(|| malformed("signature line has no signature"))?;
        let raw = b64()
            .decode(sig64)
            .map_err(|_| malformed("signature is not base64"))?;
        if !is_valid_name(name) || sig64.is_empty() || raw.len() < 5 {
            return Err(malformed("bad signature line"));
        }
        count += 1;
        if count > MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
        let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let entry = SignatureLine {
            name: name.to_string(),
            id,
            base64: sig64.to_string(),
        };
        match known.iter().find(|v| v.name == name && v.id == id) {
            None => {
                if !note.unverified.contains(&entry) {
                    note.unverified.push(entry);
                }
            }
            Some(verifier) => {
                if note.verified.iter().any(|s| s.name == name && s.id == id) {
                    continue;
                }
                if !verifier.verify(text, &raw[4..]) {
                    return Err(NoteError::InvalidSignature {
                        name: name.to_string(),
                        id,
                    });
                }
                note.verified.push(entry);
            }
        }
    }
    if note.verified.is_empty() {
        return Err(NoteError::Unverified);
    }
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_verifies() {
        let vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let verifier = Verifier::parse(vkey).unwrap();
        assert_eq!(verifier.encode(), vkey);
        let opened = open(note.as_bytes(), std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(opened.text, "This is an example message.\n");
        let tampered = note.replace("example message", "example massage");
        assert!(matches!(
            open(tampered.as_bytes(), &[verifier]),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn sign_open_round_trip_and_cosignatures() {
        let log = Signer::new("example.com/log", TYPE_ED25519, [1; 32]).unwrap();
        let witness = Signer::new("witness.example", TYPE_COSIGNATURE_V1, [2; 32]).unwrap();
        assert_eq!(
            Signer::parse(&log.encode()).unwrap().verifier(),
            log.verifier()
        );
        let text = "example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let signed = sign(text, &[&log, &witness], 1_700_000_000).unwrap();
        let note = open(signed.as_bytes(), &[log.verifier(), witness.verifier()]).unwrap();
        assert_eq!(note.verified.len(), 2);
        assert_eq!(
            note.verified[1].cosignature_timestamp(),
            Some(1_700_000_000)
        );
        // Unknown keys are set aside, not trusted.
        let note = open(signed.as_bytes(), &[log.verifier()]).unwrap();
        assert_eq!((note.verified.len(), note.unverified.len()), (1, 1));
        assert_eq!(open(signed.as_bytes(), &[]), Err(NoteError::Unverified));
        // A cosignature is not a note signature: the same key under type 0x01 has another ID.
        let mut as_note_key = witness.verifier();
        as_note_key.kind = TYPE_ED25519;
        assert!(!as_note_key.verify(text, b"anything"));
    }

    #[test]
    fn malformed_notes() {
        let log = Signer::new("example.com/log", TYPE_ED25519, [1; 32]).unwrap();
        let signed = sign("hello\n", &[&log], 0).unwrap();
        for bad in [
            signed.replace("\n\n", "\n"),
            signed.replace('\u{2014}', "-"),
            format!("{signed}extra"),
            signed.replace("hello", "hel\u{7}lo"),
        ] {
            assert!(open(bad.as_bytes(), &[log.verifier()]).is_err(), "{bad:?}");
        }
        assert!(sign("no newline", &[&log], 0).is_err());
    }
}
