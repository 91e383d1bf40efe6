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
use std::hash::BuildHasherDefault;

use base64::Engine as _;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity as _, VartimeMultiscalarMul as _};
use ed25519_dalek::Signer as _;
use sha2::{Digest as _, Sha512};

use crate::parallel::map_chunks;
use crate::registry::RegistryHasher;

/// Context for a TPS tally sheet (form C.Hasil) signed by a KPPS officer.
pub const CONTEXT_C_HASIL: &[u8] = b"saksi/sig/v1/c-hasil\n";

/// Most signatures checked as one batch equation. Larger batches amortise more of the multiscalar
/// multiplication (Pippenger's method pays off from about 190 points, and a batch of n has 2n + 1); a
/// failing batch is split in halves rather than checked one by one, so a bad signature costs about two
/// batches' work, not 256 single checks. ed25519-dalek's own batch verification at 256 is the
/// independent floor `saksi bench signatures` prints.
pub const MAX_BATCH: usize = 256;

/// Below this many signatures a failing batch is settled by single checks rather than split again.
const SPLIT_FLOOR: usize = 4;

#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PublicKey(pub [u8; 32]);

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

// serde derives arrays up to 32 bytes: a signature travels as its two halves (R and s).
impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (r, s) = self.0.split_at(32);
        let r: [u8; 32] = r.try_into().expect("32 bytes");
        let s: [u8; 32] = s.try_into().expect("32 bytes");
        (r, s).serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (r, s): ([u8; 32], [u8; 32]) = serde::Deserialize::deserialize(deserializer)?;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice(&s);
        Ok(Signature(bytes))
    }
}

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
        self.enrollable_point().map(|_| ())
    }

    /// [`PublicKey::check_enrollable`], keeping the decompressed point for signature checks (a
    /// verifier that checks every enrolled key anyway then never decompresses it again).
    pub fn enrollable_point(&self) -> Result<KeyPoint, KeyError> {
        // Canonical encoding, read off the bytes: y < p, and no "negative zero" x. Re-compressing the
        // point would say the same at the cost of a field inversion.
        if !y_is_canonical(&self.0) {
            return Err(KeyError::NotAPoint);
        }
        let point = KeyPoint::decompress(self).ok_or(KeyError::NotAPoint)?;
        // x = 0 only for y = 1 or y = -1; with the sign bit set, that is a second encoding of the
        // same point.
        let sign_bit = self.0[31] >> 7 == 1;
        if sign_bit && (self.0 == ONE_ENCODING || self.0 == MINUS_ONE_ENCODING_SIGNED) {
            return Err(KeyError::NotAPoint);
        }
        if point.0.is_small_order() {
            return Err(KeyError::Weak);
        }
        Ok(point)
    }
}

/// y = 1 with the sign bit set.
const ONE_ENCODING: [u8; 32] = {
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    bytes[31] = 0x80;
    bytes
};

/// y = p - 1 = 2^255 - 20 with the sign bit set.
const MINUS_ONE_ENCODING_SIGNED: [u8; 32] = {
    let mut bytes = [0xffu8; 32];
    bytes[0] = 0xec;
    bytes
};

/// Whether the 255-bit y of an encoding is below p = 2^255 - 19.
fn y_is_canonical(bytes: &[u8; 32]) -> bool {
    // y >= p only when y is one of p..2^255-1: bytes 1..=30 all 0xff, byte 31 (without the sign bit)
    // 0x7f, and byte 0 at least 0xed.
    let top_ones = bytes[1..31].iter().all(|b| *b == 0xff) && bytes[31] & 0x7f == 0x7f;
    !(top_ones && bytes[0] >= 0xed)
}

/// A public key's curve point, decompressed once (the costly step of using a key: a square root in
/// the field) and reused for every signature it checks.
#[derive(Clone, Copy, Debug)]
pub struct KeyPoint(EdwardsPoint);

impl KeyPoint {
    /// ZIP-215 decoding: any encoding of a curve point, canonical or not (enrolment is stricter).
    pub fn decompress(key: &PublicKey) -> Option<KeyPoint> {
        CompressedEdwardsY(key.0).decompress().map(KeyPoint)
    }
}

/// Keys' points, decompressed once and kept for every signature the keys check: a cache of each
/// key's decompression and nothing else. A verdict never depends on what it holds; a key it lacks is
/// decompressed per signature. Its keys come from the authority's registry, never from submitters,
/// so it grows only when the authority enrols someone.
#[derive(Default)]
pub struct KeyPoints {
    points: std::collections::HashMap<PublicKey, KeyPoint, BuildHasherDefault<RegistryHasher>>,
}

impl KeyPoints {
    pub fn get(&self, key: &PublicKey) -> Option<&KeyPoint> {
        self.points.get(key)
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn insert(&mut self, key: PublicKey, point: KeyPoint) {
        self.points.insert(key, point);
    }

    /// Moves every point of `other` into this one. The larger map is kept and the smaller moved
    /// into it: a writer's first fill (~820,000 points) lands in an empty cache under its lock, and
    /// moving them one by one held signature checks back for hundreds of milliseconds.
    pub fn merge(&mut self, mut other: KeyPoints) {
        if other.points.len() > self.points.len() {
            std::mem::swap(self, &mut other);
        }
        self.points.extend(other.points);
    }

    /// Decompresses `keys`, split over `workers` threads, and keeps them. A key that is not a
    /// point is skipped (its signatures fail whatever the cache holds).
    pub fn add_keys(&mut self, mut missing: Vec<PublicKey>, workers: usize) {
        missing.sort_unstable();
        missing.dedup();
        missing.retain(|key| !self.points.contains_key(key));
        let decompressed = map_chunks(&missing, workers, |part| {
            part.iter()
                .filter_map(|key| Some((*key, KeyPoint::decompress(key)?)))
                .collect()
        });
        self.points.reserve(decompressed.len());
        self.points.extend(decompressed);
    }
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
    let item = BatchItem {
        key: *key,
        point: None,
        message,
        signature: *signature,
    };
    Decoded::new(&item).is_some_and(|decoded| decoded.verify_alone())
}

/// One signature to check: the message is the full `context || payload`.
pub struct BatchItem<'a> {
    pub key: PublicKey,
    /// `key`'s point when the caller has it already ([`PublicKey::enrollable_point`]); it must be
    /// `key`'s decompression (checked in debug builds).
    pub point: Option<&'a KeyPoint>,
    pub message: &'a [u8],
    pub signature: Signature,
}

/// A signature decoded for the verification equation [8][s]B = [8]R + [8][k]A.
struct Decoded {
    key: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    /// k = SHA-512(R || A || M) mod l, over the bytes as sent (ZIP-215 hashes the encodings).
    k: Scalar,
}

impl Decoded {
    /// None when the signature cannot be valid: `s` not below the group order, or `R` or `A` not
    /// an encoding of a curve point (non-canonical encodings are accepted, as ZIP-215 requires).
    fn new(item: &BatchItem<'_>) -> Option<Decoded> {
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(
            item.signature.0[32..].try_into().expect("32 bytes"),
        ))?;
        let r_bytes: [u8; 32] = item.signature.0[..32].try_into().expect("32 bytes");
        let r = CompressedEdwardsY(r_bytes).decompress()?;
        let key = match item.point {
            Some(point) => {
                debug_assert!(KeyPoint::decompress(&item.key).is_some_and(|p| p.0 == point.0));
                point.0
            }
            None => KeyPoint::decompress(&item.key)?.0,
        };
        let hash = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(item.key.0)
            .chain_update(item.message)
            .finalize();
        let k = Scalar::from_bytes_mod_order_wide(&hash.into());
        Some(Decoded { key, r, s, k })
    }

    /// The cofactored single equation: [8](R - ([s]B - [k]A)) = 0.
    fn verify_alone(&self) -> bool {
        let r_expected =
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &-self.key, &self.s);
        (self.r - r_expected).mul_by_cofactor().is_identity()
    }
}

/// The batch equation over `signatures` with fresh random 128-bit weights z_i:
/// [8]([-sum z_i s_i]B + sum [z_i]R_i + sum [z_i k_i]A_i) = 0. It holds whenever every member's
/// single equation holds; when one fails, it fails except with probability about 2^-125.
fn verify_together(signatures: &[&Decoded]) -> bool {
    let mut weights = vec![0u8; 16 * signatures.len()];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut weights);
    let mut scalars = Vec::with_capacity(2 * signatures.len() + 1);
    let mut points = Vec::with_capacity(2 * signatures.len() + 1);
    let mut basepoint = Scalar::ZERO;
    for (signature, weight) in signatures.iter().zip(weights.chunks_exact(16)) {
        let z = Scalar::from(u128::from_le_bytes(weight.try_into().expect("16 bytes")));
        basepoint -= z * signature.s;
        scalars.push(z);
        points.push(signature.r);
        scalars.push(z * signature.k);
        points.push(signature.key);
    }
    scalars.push(basepoint);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}

/// Settles `members` (indices into `decoded`): one batch equation, and if it fails, each half on its
/// own, down to single checks below SPLIT_FLOOR.
fn settle(decoded: &[Option<Decoded>], members: &[usize], verdicts: &mut [bool]) {
    if members.len() < SPLIT_FLOOR {
        for &i in members {
            verdicts[i] = decoded[i].as_ref().is_some_and(Decoded::verify_alone);
        }
        return;
    }
    let together: Vec<&Decoded> = members
        .iter()
        .map(|&i| decoded[i].as_ref().expect("only decoded members"))
        .collect();
    if verify_together(&together) {
        for &i in members {
            verdicts[i] = true;
        }
    } else {
        let (left, right) = members.split_at(members.len() / 2);
        settle(decoded, left, verdicts);
        settle(decoded, right, verdicts);
    }
}

/// [`verify_batch`] with the items split evenly across `workers` threads; verdicts in item order.
pub fn verify_batch_parallel(items: &[BatchItem<'_>], workers: usize) -> Vec<bool> {
    map_chunks(items, workers, verify_batch)
}

/// Checks many signatures, `MAX_BATCH` at a time. A signature that cannot decode is invalid on its
/// own and never joins a batch; a batch that fails is split until the bad members are found, so the
/// answer for each item is exactly [`verify`]'s, whatever else shares its batch.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Vec<bool> {
    let mut verdicts = vec![false; items.len()];
    for (chunk_index, chunk) in items.chunks(MAX_BATCH).enumerate() {
        let decoded: Vec<Option<Decoded>> = chunk.iter().map(Decoded::new).collect();
        let members: Vec<usize> = (0..chunk.len()).filter(|&i| decoded[i].is_some()).collect();
        let offset = chunk_index * MAX_BATCH;
        settle(
            &decoded,
            &members,
            &mut verdicts[offset..offset + chunk.len()],
        );
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
    fn merging_key_points_keeps_every_point_whichever_side_is_larger() {
        let keys: Vec<PublicKey> = (1..=5).map(|n| key(n).public()).collect();
        let held = |points: &KeyPoints| keys.iter().filter(|k| points.get(k).is_some()).count();
        for split in 0..=keys.len() {
            let part = |range: std::ops::Range<usize>| {
                let mut points = KeyPoints::default();
                points.add_keys(keys[range].to_vec(), 2);
                points
            };
            let mut a = part(0..split);
            a.merge(part(split..keys.len()));
            let mut right = part(split..keys.len());
            right.merge(part(0..split));
            assert_eq!((held(&a), a.len()), (keys.len(), keys.len()));
            assert_eq!((held(&right), right.len()), (keys.len(), keys.len()));
            for k in &keys {
                let fresh = format!("{:?}", KeyPoint::decompress(k));
                assert_eq!(format!("{:?}", a.get(k).copied()), fresh);
            }
        }
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
                point: None,
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

    /// The 14 encodings of small-order points ZIP-215 lists: the 8 canonical ones and 6 non-canonical
    /// (negative-zero x, and y + p).
    fn small_order_encodings() -> Vec<[u8; 32]> {
        let mut encodings: Vec<[u8; 32]> = curve25519_dalek::constants::EIGHT_TORSION
            .iter()
            .map(|point| point.compress().to_bytes())
            .collect();
        encodings.push(ONE_ENCODING);
        encodings.push(MINUS_ONE_ENCODING_SIGNED);
        for i in 0..19u8 {
            let mut y = [0xffu8; 32];
            y[0] = 0xed + i;
            y[31] = 0x7f;
            for sign in [0, 0x80] {
                let mut encoding = y;
                encoding[31] |= sign;
                let small = CompressedEdwardsY(encoding)
                    .decompress()
                    .is_some_and(|p| p.is_small_order());
                if small && encodings.len() < 14 {
                    encodings.push(encoding);
                }
            }
        }
        assert_eq!(encodings.len(), 14);
        encodings
    }

    fn zebra_verdict(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
        ed25519_zebra::VerificationKey::try_from(key.0).is_ok_and(|key| {
            key.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
                .is_ok()
        })
    }

    /// ZIP-215's 196 small-order cases (from Zcash's test suite): s = 0 and R, A of small order, in
    /// every encoding. All are valid under ZIP-215, alone and in batches with honest signatures.
    #[test]
    fn zip215_small_order_vectors_are_valid() {
        let encodings = small_order_encodings();
        let honest = key(9);
        let honest_signature = honest.sign(b"", b"Zcash");
        let mut items = Vec::new();
        for a in &encodings {
            for r in &encodings {
                let mut signature = [0u8; 64];
                signature[..32].copy_from_slice(r);
                let key = PublicKey(*a);
                let signature = Signature(signature);
                assert!(verify_message(&key, b"Zcash", &signature));
                assert!(zebra_verdict(&key, b"Zcash", &signature));
                items.push(BatchItem {
                    key,
                    point: None,
                    message: b"Zcash",
                    signature,
                });
                items.push(BatchItem {
                    key: honest.public(),
                    point: None,
                    message: b"Zcash",
                    signature: honest_signature,
                });
            }
        }
        assert_eq!(items.len(), 2 * 196);
        assert!(verify_batch(&items).into_iter().all(|ok| ok));
    }

    /// What the old check (re-compress and compare) said, as the reference for the byte-level one.
    fn enrollable_by_recompressing(key: &PublicKey) -> Result<(), KeyError> {
        let point = CompressedEdwardsY(key.0)
            .decompress()
            .ok_or(KeyError::NotAPoint)?;
        if point.compress().to_bytes() != key.0 {
            return Err(KeyError::NotAPoint);
        }
        if point.is_small_order() {
            return Err(KeyError::Weak);
        }
        Ok(())
    }

    #[test]
    fn enrolment_check_reads_canonical_encodings_off_the_bytes() {
        let mut cases = small_order_encodings();
        for i in 0..=255u8 {
            let mut high = [0xffu8; 32];
            high[0] = i;
            cases.push(high);
            high[31] = 0x7f;
            cases.push(high);
            let mut low = [0u8; 32];
            low[0] = i;
            cases.push(low);
            low[31] = 0x80;
            cases.push(low);
        }
        cases.extend((1..=50u8).map(|n| key(n).public().0));
        for case in cases {
            let key = PublicKey(case);
            assert_eq!(
                key.check_enrollable(),
                enrollable_by_recompressing(&key),
                "{key:?}"
            );
        }
    }

    /// One way to spoil a signature, or to craft a hard one.
    #[derive(Clone, Debug)]
    enum Craft {
        Honest,
        FlipSignatureBit(usize),
        FlipMessageBit(usize),
        OtherKey,
        /// s + l: the same residue, a non-canonical scalar (invalid under ZIP-215).
        NonCanonicalS,
        /// R replaced by a small-order point in one of its 14 encodings.
        SmallOrderR(usize),
        /// A replaced by a small-order point, s = 0 (valid iff R is of small order too).
        SmallOrderKey(usize, usize),
        /// R + T for a torsion point T: valid under the cofactored equation only.
        TorsionOnR(usize),
    }

    fn craft_strategy() -> impl proptest::strategy::Strategy<Value = Craft> {
        use proptest::prelude::*;
        prop_oneof![
            4 => Just(Craft::Honest),
            1 => (0..512usize).prop_map(Craft::FlipSignatureBit),
            1 => (0..32usize).prop_map(Craft::FlipMessageBit),
            1 => Just(Craft::OtherKey),
            1 => Just(Craft::NonCanonicalS),
            1 => (0..14usize).prop_map(Craft::SmallOrderR),
            1 => (0..14usize, 0..14usize).prop_map(|(a, r)| Craft::SmallOrderKey(a, r)),
            1 => (1..8usize).prop_map(Craft::TorsionOnR),
        ]
    }

    fn crafted(seed: u8, craft: &Craft) -> (PublicKey, Vec<u8>, Signature) {
        let signer = key(seed);
        let mut message = vec![seed; 32];
        let mut signature = signer.sign(b"", &message);
        let mut public = signer.public();
        let encodings = small_order_encodings();
        match *craft {
            Craft::Honest => {}
            Craft::FlipSignatureBit(bit) => signature.0[bit / 8] ^= 1 << (bit % 8),
            Craft::FlipMessageBit(bit) => message[bit / 8] ^= 1 << (bit % 8),
            Craft::OtherKey => public = key(seed.wrapping_add(1)).public(),
            Craft::NonCanonicalS => {
                let s =
                    Scalar::from_canonical_bytes(signature.0[32..].try_into().unwrap()).unwrap();
                // s + l as a 256-bit integer (fits: s < l < 2^253).
                let mut l = [0u8; 32];
                l[..16].copy_from_slice(&[
                    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde,
                    0xf9, 0xde, 0x14,
                ]);
                l[31] = 0x10;
                let (mut carry, s) = (0u16, s.to_bytes());
                for i in 0..32 {
                    let sum = s[i] as u16 + l[i] as u16 + carry;
                    signature.0[32 + i] = sum as u8;
                    carry = sum >> 8;
                }
            }
            Craft::SmallOrderR(r) => signature.0[..32].copy_from_slice(&encodings[r]),
            Craft::SmallOrderKey(a, r) => {
                public = PublicKey(encodings[a]);
                signature.0[..32].copy_from_slice(&encodings[r]);
                signature.0[32..].fill(0);
            }
            Craft::TorsionOnR(t) => {
                // Re-sign with R' = R + T: k changes with R's bytes, so make the signature for R'.
                let seed_bytes = signer.seed();
                let expanded = Sha512::digest(seed_bytes);
                let mut a_bytes: [u8; 32] = expanded[..32].try_into().unwrap();
                a_bytes[0] &= 248;
                a_bytes[31] &= 127;
                a_bytes[31] |= 64;
                let a = Scalar::from_bytes_mod_order(a_bytes);
                let nonce = Scalar::from_bytes_mod_order_wide(
                    &Sha512::new()
                        .chain_update(&expanded[32..])
                        .chain_update(&message)
                        .finalize()
                        .into(),
                );
                let r =
                    EdwardsPoint::mul_base(&nonce) + curve25519_dalek::constants::EIGHT_TORSION[t];
                let r_bytes = r.compress().to_bytes();
                let k = Scalar::from_bytes_mod_order_wide(
                    &Sha512::new()
                        .chain_update(r_bytes)
                        .chain_update(public.0)
                        .chain_update(&message)
                        .finalize()
                        .into(),
                );
                let s = nonce + k * a;
                signature.0[..32].copy_from_slice(&r_bytes);
                signature.0[32..].copy_from_slice(s.as_bytes());
            }
        }
        (public, message, signature)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Every verdict is ZIP-215's (Zcash's ed25519-zebra as the reference), alone and in a
        /// batch, whatever shares the batch, and whether or not the key's point was given.
        #[test]
        fn verdicts_are_zip215_alone_and_in_batches(
            crafts in proptest::collection::vec(craft_strategy(), 1..300),
            prepared in proptest::bool::ANY,
        ) {
            let signed: Vec<(PublicKey, Vec<u8>, Signature)> = crafts
                .iter()
                .enumerate()
                .map(|(i, craft)| crafted((i % 200) as u8 + 1, craft))
                .collect();
            let points: Vec<Option<KeyPoint>> = signed
                .iter()
                .map(|(public, _, _)| if prepared { KeyPoint::decompress(public) } else { None })
                .collect();
            let items: Vec<BatchItem> = signed
                .iter()
                .zip(&points)
                .map(|((public, message, signature), point)| BatchItem {
                    key: *public,
                    point: point.as_ref(),
                    message,
                    signature: *signature,
                })
                .collect();
            let verdicts = verify_batch(&items);
            for (i, (public, message, signature)) in signed.iter().enumerate() {
                let expected = zebra_verdict(public, message, signature);
                proptest::prop_assert_eq!(verify_message(public, message, signature), expected, "alone, item {} ({:?})", i, crafts[i]);
                proptest::prop_assert_eq!(verdicts[i], expected, "in a batch, item {} ({:?})", i, crafts[i]);
                if matches!(crafts[i], Craft::Honest | Craft::TorsionOnR(_)) {
                    proptest::prop_assert!(expected, "item {} ({:?})", i, crafts[i]);
                }
            }
        }
    }
}
