//! Ed25519 keys and signatures of the people who write forms.
//!
//! **Domain separation.** Every signature saksi makes or checks signs `context || payload`, where the
//! context is one of the `CONTEXT_*` strings below and ends in a newline. No context is a prefix of
//! another, and none can start a C2SP signed note (those start with the origin line of a checkpoint, which
//! never begins with "saksi/sig/"), so a signature made for one purpose is never valid for another.
//!
//! **What "valid" means.** A form signature is valid when it passes ZIP-215 verification (cofactored
//! Ed25519 with canonical `s`, as in Zcash's ed25519-zebra). Every signature an honest RFC 8032 signer
//! makes passes it. We use this definition because it is the one under which batch verification provably
//! agrees with one-by-one verification: with the cofactorless equation that most libraries use for a
//! single signature, a crafted signature can pass or fail a batch depending on which other signatures share
//! it, and a verdict must never depend on that.
//!
//! **Weak keys.** Enrolment refuses keys that are not canonical point encodings or that have small order
//! (these verify signatures on many messages at once).

use std::fmt;

use base64::Engine as _;
use ed25519_dalek::Signer as _;

/// Context for a TPS tally sheet (form C.Hasil) signed by a KPPS officer.
pub const CONTEXT_C_HASIL: &[u8] = b"saksi/sig/v1/c-hasil\n";

/// Upper bound on the signatures checked as one batch: a failing batch costs one single verification
/// per member, so a small batch bounds that cost (64 is a choice, not a measured optimum).
pub const MAX_BATCH: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Not base64 of exactly the right number of bytes.
    Encoding,
    /// Not the canonical encoding of a curve point.
    NotAPoint,
    /// A point of small order: such a key "verifies" signatures on many messages.
    Weak,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Encoding => write!(f, "not base64 of the expected length"),
            KeyError::NotAPoint => write!(f, "not a canonical Ed25519 public key"),
            KeyError::Weak => write!(f, "a weak (small-order) Ed25519 public key"),
        }
    }
}

impl std::error::Error for KeyError {}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl PublicKey {
    pub fn to_base64(&self) -> String {
        b64().encode(self.0)
    }

    /// Parses standard base64 (with padding) of 32 bytes. Says nothing about the key's strength: see
    /// [`PublicKey::check_enrollable`].
    pub fn from_base64(text: &str) -> Result<PublicKey, KeyError> {
        let bytes = b64().decode(text).map_err(|_| KeyError::Encoding)?;
        Ok(PublicKey(bytes.try_into().map_err(|_| KeyError::Encoding)?))
    }

    /// The checks a key must pass before anyone may enrol it.
    pub fn check_enrollable(&self) -> Result<(), KeyError> {
        // One decompression serves both checks (it is the expensive part: a field inversion).
        let point = curve25519_point(&self.0).ok_or(KeyError::NotAPoint)?;
        if point.compress().to_bytes() != self.0 {
            return Err(KeyError::NotAPoint);
        }
        if point.is_small_order() {
            return Err(KeyError::Weak);
        }
        Ok(())
    }
}

fn curve25519_point(bytes: &[u8; 32]) -> Option<curve25519_dalek::edwards::EdwardsPoint> {
    curve25519_dalek::edwards::CompressedEdwardsY(*bytes).decompress()
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl Signature {
    pub fn to_base64(&self) -> String {
        b64().encode(self.0)
    }

    pub fn from_base64(text: &str) -> Result<Signature, KeyError> {
        let bytes = b64().decode(text).map_err(|_| KeyError::Encoding)?;
        Ok(Signature(bytes.try_into().map_err(|_| KeyError::Encoding)?))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_base64())
    }
}

/// An officer's signing key. Deliberately not `Debug`, `Clone`-free printing, and no serialisation: the
/// secret leaves memory only through [`SecretKey::seed`], which callers must mean to call.
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub fn generate() -> SecretKey {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        SecretKey::from_seed(seed)
    }

    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `context || payload`.
    pub fn sign(&self, context: &[u8], payload: &[u8]) -> Signature {
        let mut message = Vec::with_capacity(context.len() + payload.len());
        message.extend_from_slice(context);
        message.extend_from_slice(payload);
        Signature(self.0.sign(&message).to_bytes())
    }
}

/// Checks one signature over `context || payload` (ZIP-215 semantics, see the module docs).
pub fn verify(key: &PublicKey, context: &[u8], payload: &[u8], signature: &Signature) -> bool {
    let mut message = Vec::with_capacity(context.len() + payload.len());
    message.extend_from_slice(context);
    message.extend_from_slice(payload);
    verify_message(key, &message, signature)
}

fn verify_message(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    let Ok(key) = ed25519_zebra::VerificationKey::try_from(key.0) else {
        return false;
    };
    key.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
        .is_ok()
}

/// One signature to check: the message is the full `context || payload`.
pub struct BatchItem<'a> {
    pub key: PublicKey,
    pub message: &'a [u8],
    pub signature: Signature,
}

/// [`verify_batch`] with the items split evenly across `workers` threads; verdicts in item order.
pub fn verify_batch_parallel(items: &[BatchItem<'_>], workers: usize) -> Vec<bool> {
    let per = items.len().div_ceil(workers.max(1)).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(per)
            .map(|part| scope.spawn(move || verify_batch(part)))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("a verifier thread panicked"))
            .collect()
    })
}

/// Checks many signatures, `MAX_BATCH` at a time. When a batch fails, each of its members is checked alone,
/// so the answer for each item is exactly [`verify`]'s, whatever else shares its batch.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Vec<bool> {
    let mut verdicts = Vec::with_capacity(items.len());
    for chunk in items.chunks(MAX_BATCH) {
        let mut batch = ed25519_zebra::batch::Verifier::new();
        for item in chunk {
            let key = ed25519_zebra::VerificationKeyBytes::from(item.key.0);
            let signature = ed25519_zebra::Signature::from_bytes(&item.signature.0);
            batch.queue((key, signature, item.message));
        }
        if batch.verify(rand_core::OsRng).is_ok() {
            verdicts.extend(std::iter::repeat_n(true, chunk.len()));
        } else {
            verdicts.extend(
                chunk
                    .iter()
                    .map(|item| verify_message(&item.key, item.message, &item.signature)),
            );
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }

    #[test]
    fn sign_and_verify_with_domain_separation() {
        let k = key(1);
        let sig = k.sign(CONTEXT_C_HASIL, b"payload");
        assert!(verify(&k.public(), CONTEXT_C_HASIL, b"payload", &sig));
        assert!(!verify(
            &k.public(),
            b"saksi/sig/v1/other\n",
            b"payload",
            &sig
        ));
        assert!(!verify(&k.public(), CONTEXT_C_HASIL, b"payloaD", &sig));
        assert!(!verify(&key(2).public(), CONTEXT_C_HASIL, b"payload", &sig));
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (small order) and an all-zero y with sign bit: classic weak keys.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey(identity).check_enrollable(), Err(KeyError::Weak));
        assert_eq!(PublicKey([0u8; 32]).check_enrollable(), Err(KeyError::Weak));
        // A y coordinate >= p is a non-canonical encoding.
        assert!(PublicKey([0xff; 32]).check_enrollable().is_err());
        assert_eq!(key(3).public().check_enrollable(), Ok(()));
        assert_eq!(PublicKey::from_base64("AAAA"), Err(KeyError::Encoding));
    }

    #[test]
    fn batch_verdicts_match_single_verdicts() {
        let messages: Vec<Vec<u8>> = (0..150u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let keys: Vec<SecretKey> = (0..150).map(|i| key((i % 250) as u8 + 1)).collect();
        let mut items: Vec<BatchItem> = messages
            .iter()
            .zip(&keys)
            .map(|(m, k)| BatchItem {
                key: k.public(),
                message: m,
                signature: k.sign(b"", m),
            })
            .collect();
        items[7].signature.0[3] ^= 1;
        items[100].key = keys[101].public();
        let verdicts = verify_batch(&items);
        for (i, item) in items.iter().enumerate() {
            assert_eq!(
                verdicts[i],
                verify_message(&item.key, item.message, &item.signature),
                "item {i}"
            );
            assert_eq!(verdicts[i], i != 7 && i != 100);
        }
    }
}
