//! Form C.Hasil, the tally sheet a TPS's committee (KPPS) writes on election night, and its signed
//! envelope.
//!
//! A form travels as JSON. The signature covers `CONTEXT_C_HASIL || JCS(form)` where JCS is RFC 8785
//! canonical JSON of the `form` object (see `canonical.rs`), so an observer can re-derive the signed bytes
//! with any JCS library. Decoding is strict: every field must be present, no unknown field is accepted,
//! counts are JSON integers within +-(2^53-1), keys of `votes` are unique. Anything else is malformed and
//! never reaches the rulebook. Counts are signed integers on purpose: a negative count is well-formed JSON
//! that the rulebook rejects with a rule code (`COUNT_RANGE`), which tells the officer more than a parse
//! error would.
//!
//! ```json
//! {"form": {"ballots": {"damaged": 2, "received": 291, "unused": 45, "used": 244},
//!           "contest": "ppwp",
//!           ["correction": {"reason": "..."},]   (only on a correction, signed by a commission)
//!           "disability": {"registered": {"j": 3, "l": 1, "p": 2}, "voted": {"j": 2, "l": 1, "p": 1}},
//!           "election": "pemilu-2024",
//!           "evidence": ["sha256:<64 hex digits, photo of page 1>", "..."],
//!           "format": "saksi/c-hasil/v1",
//!           "invalid": 4,
//!           "registered": {"dpk": LPJ, "dpt": LPJ, "dptb": LPJ, "total": LPJ},   (A.1, A.3, A.2, A.4)
//!           "signer": "<base64 Ed25519 public key>",
//!           "total": 244, "tps": "1101012001001", "valid": 240,
//!           "voted": {"dpk": LPJ, "dpt": LPJ, "dptb": LPJ, "total": LPJ},        (B.3, B.1, B.2, B.4)
//!           "votes": {"01": 120, "02": 100, "03": 20}},
//!  "signature": "<base64 Ed25519 signature>"}
//! ```
//! where LPJ is `{"j": total, "l": male, "p": female}`.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::canonical;
use crate::code::Code;
use crate::sign::{self, PublicKey, SecretKey, Signature};

pub const FORMAT_C_HASIL: &str = "saksi/c-hasil/v1";

/// Largest accepted encoded form, in bytes. A log entry is at most 65,535 bytes (tlog-tiles entry
/// bundles use 16-bit lengths), and a real form is about 1 KB.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// Ballot positions per form. A DPR ballot has 18 national parties with up to ~12 candidates each.
pub const MAX_VOTE_POSITIONS: usize = 256;
/// Photos per form (C.Hasil has three pages for Pilpres; more for DPR).
pub const MAX_EVIDENCE: usize = 16;
/// Length of identifiers such as the election id, contest id, a vote position.
pub const MAX_ID_BYTES: usize = 64;

/// One row of the form with male, female and total columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lpj {
    #[serde(deserialize_with = "safe_int")]
    pub j: i64,
    #[serde(deserialize_with = "safe_int")]
    pub l: i64,
    #[serde(deserialize_with = "safe_int")]
    pub p: i64,
}

/// The four voter rows: DPT (the fixed list), DPTb (moved in), DPK (additional, ID card only), total.
/// As `registered` they are section A (A.1..A.4); as `voted`, section B (B.1..B.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoterRows {
    pub dpt: Lpj,
    pub dptb: Lpj,
    pub dpk: Lpj,
    pub total: Lpj,
}

/// Section III: voters with disabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disability {
    pub registered: Lpj,
    pub voted: Lpj,
}

/// Section II: ballots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ballots {
    /// II.1: received, including the 2% reserve.
    #[serde(deserialize_with = "safe_int")]
    pub received: i64,
    /// II.2: used (cast).
    #[serde(deserialize_with = "safe_int")]
    pub used: i64,
    /// II.3: returned by voters as damaged or mis-marked.
    #[serde(deserialize_with = "safe_int")]
    pub damaged: i64,
    /// II.4: unused, including the rest of the reserve.
    #[serde(deserialize_with = "safe_int")]
    pub unused: i64,
}

/// SHA-256 of one photographed page of the paper form: the evidence a form points to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PhotoDigest(pub [u8; 32]);

impl PhotoDigest {
    pub fn of(bytes: &[u8]) -> PhotoDigest {
        PhotoDigest(Sha256::digest(bytes).into())
    }

    pub fn to_text(&self) -> String {
        format!("sha256:{}", hex(&self.0))
    }

    pub fn parse(text: &str) -> Option<PhotoDigest> {
        let hex_part = text.strip_prefix("sha256:")?;
        Some(PhotoDigest(unhex(hex_part)?.try_into().ok()?))
    }
}

impl fmt::Debug for PhotoDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0xf) as usize]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Lowercase hex only: one spelling per value keeps encodings canonical.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Longest correction reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1000;

/// Marks a form as a correction of a TPS's result, entered by a commission (a key enrolled as corrector
/// for a region above the TPS) rather than the TPS's own officer. Signed with the rest of the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correction {
    /// Why the result changes, for the public history: e.g. the plenary's finding.
    pub reason: String,
}

/// Form C.Hasil as its officer (or, for a correction, a commission) signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CHasil {
    pub election: String,
    pub contest: String,
    /// Present only on a correction.
    pub correction: Option<Correction>,
    pub tps: Code,
    /// Section A.
    pub registered: VoterRows,
    /// Section B.
    pub voted: VoterRows,
    pub disability: Disability,
    pub ballots: Ballots,
    /// Votes per ballot position, sorted by position, positions unique.
    pub votes: Vec<(String, i64)>,
    /// Page 3: A, B, C.
    pub valid: i64,
    pub invalid: i64,
    pub total: i64,
    pub evidence: Vec<PhotoDigest>,
    /// The officer whose key signs this form.
    pub signer: PublicKey,
}

/// A form and its officer's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedForm {
    pub form: CHasil,
    pub signature: Signature,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    TooLarge {
        bytes: usize,
    },
    /// Not valid JSON for this format; the text says where and what.
    Json(String),
    Format(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge { bytes } => {
                write!(f, "form is {bytes} bytes, the limit is {MAX_FORM_BYTES}")
            }
            DecodeError::Json(e) => write!(f, "malformed form: {e}"),
            DecodeError::Format(e) => write!(f, "malformed form: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn safe_int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = i64::deserialize(deserializer)?;
    if !canonical::is_safe_integer(value) {
        return Err(de::Error::custom(format!("{value} is outside +-(2^53-1)")));
    }
    Ok(value)
}

/// `votes` as a map whose keys must be unique (serde_json would let a later duplicate win silently).
struct Votes(Vec<(String, i64)>);

impl<'de> Deserialize<'de> for Votes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VotesVisitor;
        impl<'de> Visitor<'de> for VotesVisitor {
            type Value = Votes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an object of ballot positions to vote counts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Votes, A::Error> {
                let mut votes: Vec<(String, i64)> = Vec::new();
                while let Some(position) = map.next_key::<String>()? {
                    if votes.len() >= MAX_VOTE_POSITIONS {
                        return Err(de::Error::custom("too many ballot positions"));
                    }
                    if !valid_id(&position) {
                        return Err(de::Error::custom(format!(
                            "bad ballot position {position:?}"
                        )));
                    }
                    let count: i64 = map.next_value()?;
                    if !canonical::is_safe_integer(count) {
                        return Err(de::Error::custom(format!("{count} is outside +-(2^53-1)")));
                    }
                    if votes.iter().any(|(p, _)| *p == position) {
                        return Err(de::Error::custom(format!(
                            "ballot position {position:?} appears twice"
                        )));
                    }
                    votes.push((position, count));
                }
                votes.sort();
                Ok(Votes(votes))
            }
        }
        deserializer.deserialize_map(VotesVisitor)
    }
}

/// Identifiers are short lowercase ASCII, so byte order equals JCS's UTF-16 order and no escaping occurs.
fn valid_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_ID_BYTES
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireForm {
    format: String,
    election: String,
    contest: String,
    tps: String,
    registered: VoterRows,
    voted: VoterRows,
    disability: Disability,
    ballots: Ballots,
    votes: Votes,
    #[serde(deserialize_with = "safe_int")]
    valid: i64,
    #[serde(deserialize_with = "safe_int")]
    invalid: i64,
    #[serde(deserialize_with = "safe_int")]
    total: i64,
    evidence: Vec<String>,
    signer: String,
    #[serde(default)]
    correction: Option<WireCorrection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCorrection {
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSigned {
    form: WireForm,
    signature: String,
}

impl WireForm {
    fn into_form(self) -> Result<CHasil, DecodeError> {
        let bad = |message: String| Err(DecodeError::Format(message));
        if self.format != FORMAT_C_HASIL {
            return bad(format!(
                "format is {:?}, expected {FORMAT_C_HASIL:?}",
                self.format
            ));
        }
        if !valid_id(&self.election) || !valid_id(&self.contest) {
            return bad("election and contest are short lowercase identifiers".into());
        }
        let tps = Code::parse(&self.tps)
            .map_err(|e| DecodeError::Format(format!("tps {:?}: {e}", self.tps)))?;
        if tps.level() != crate::code::Level::Tps {
            return bad(format!(
                "tps {:?} is a region code, not a 13-digit TPS code",
                self.tps
            ));
        }
        if self.evidence.len() > MAX_EVIDENCE {
            return bad(format!("more than {MAX_EVIDENCE} evidence digests"));
        }
        let evidence = self
            .evidence
            .iter()
            .map(|text| {
                PhotoDigest::parse(text).ok_or_else(|| {
                    DecodeError::Format(format!(
                        "evidence {text:?} is not sha256:<64 lowercase hex>"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let signer = PublicKey::from_base64(&self.signer)
            .map_err(|e| DecodeError::Format(format!("signer: {e}")))?;
        if signer.to_base64() != self.signer {
            return bad("signer is not canonical base64".into());
        }
        let correction = match self.correction {
            None => None,
            Some(WireCorrection { reason }) => {
                if reason.trim().is_empty() || reason.len() > MAX_REASON_BYTES {
                    return bad(format!(
                        "a correction reason is 1..={MAX_REASON_BYTES} bytes of text"
                    ));
                }
                if let Err(e) = canonical::check_free_text("the correction reason", &reason) {
                    return bad(e);
                }
                Some(Correction { reason })
            }
        };
        Ok(CHasil {
            election: self.election,
            contest: self.contest,
            correction,
            tps,
            registered: self.registered,
            voted: self.voted,
            disability: self.disability,
            ballots: self.ballots,
            votes: self.votes.0,
            valid: self.valid,
            invalid: self.invalid,
            total: self.total,
            evidence,
            signer,
        })
    }
}

impl CHasil {
    /// RFC 8785 canonical JSON of the form, written directly. A test checks it equals the generic JCS
    /// encoder's output on the same value, key by key.
    pub fn canonical_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        self.write_canonical(&mut out);
        out
    }

    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        fn int(out: &mut Vec<u8>, key: &str, value: i64, last: bool) {
            canonical::write_str(out, key);
            out.push(b':');
            canonical::write_int(out, value);
            if !last {
                out.push(b',');
            }
        }
        fn lpj(out: &mut Vec<u8>, key: &str, row: &Lpj, last: bool) {
            canonical::write_str(out, key);
            out.extend_from_slice(b":{");
            int(out, "j", row.j, false);
            int(out, "l", row.l, false);
            int(out, "p", row.p, true);
            out.push(b'}');
            if !last {
                out.push(b',');
            }
        }
        fn rows(out: &mut Vec<u8>, key: &str, rows: &VoterRows) {
            canonical::write_str(out, key);
            out.extend_from_slice(b":{");
            lpj(out, "dpk", &rows.dpk, false);
            lpj(out, "dpt", &rows.dpt, false);
            lpj(out, "dptb", &rows.dptb, false);
            lpj(out, "total", &rows.total, true);
            out.extend_from_slice(b"},");
        }
        fn text(out: &mut Vec<u8>, key: &str, value: &str) {
            canonical::write_str(out, key);
            out.push(b':');
            canonical::write_str(out, value);
            out.push(b',');
        }
        // Members in JCS order (byte order of ASCII names).
        out.extend_from_slice(b"{\"ballots\":{");
        int(out, "damaged", self.ballots.damaged, false);
        int(out, "received", self.ballots.received, false);
        int(out, "unused", self.ballots.unused, false);
        int(out, "used", self.ballots.used, true);
        out.extend_from_slice(b"},");
        text(out, "contest", &self.contest);
        if let Some(correction) = &self.correction {
            out.extend_from_slice(b"\"correction\":{");
            canonical::write_str(out, "reason");
            out.push(b':');
            canonical::write_str(out, &correction.reason);
            out.extend_from_slice(b"},");
        }
        out.extend_from_slice(b"\"disability\":{");
        lpj(out, "registered", &self.disability.registered, false);
        lpj(out, "voted", &self.disability.voted, true);
        out.extend_from_slice(b"},");
        text(out, "election", &self.election);
        out.extend_from_slice(b"\"evidence\":[");
        for (i, digest) in self.evidence.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            canonical::write_str(out, &digest.to_text());
        }
        out.extend_from_slice(b"],");
        text(out, "format", FORMAT_C_HASIL);
        int(out, "invalid", self.invalid, false);
        rows(out, "registered", &self.registered);
        text(out, "signer", &self.signer.to_base64());
        int(out, "total", self.total, false);
        text(out, "tps", &self.tps.to_string());
        int(out, "valid", self.valid, false);
        rows(out, "voted", &self.voted);
        out.extend_from_slice(b"\"votes\":{");
        for (i, (position, count)) in self.votes.iter().enumerate() {
            int(out, position, *count, i + 1 == self.votes.len());
        }
        out.extend_from_slice(b"}}");
    }

    /// The bytes an officer signs: context, then canonical JSON.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut message = sign::CONTEXT_C_HASIL.to_vec();
        self.write_canonical(&mut message);
        message
    }

    pub fn sign(self, key: &SecretKey) -> SignedForm {
        let signature = key.sign(sign::CONTEXT_C_HASIL, &self.canonical_json());
        SignedForm {
            form: self,
            signature,
        }
    }

    pub fn votes_for(&self, position: &str) -> Option<i64> {
        self.votes
            .iter()
            .find(|(p, _)| p == position)
            .map(|(_, v)| *v)
    }
}

impl SignedForm {
    /// Verifies many forms' signatures in batches (on this thread): `true` where the form's
    /// signature is valid; `false` where it is not, or where there is no form (an item that did not
    /// decode). Each answer is exactly [`sign::verify`]'s, whatever shares its batch; `points` only
    /// saves decompressing the keys it holds.
    pub fn verify_signatures(forms: &[Option<&SignedForm>], points: &sign::KeyPoints) -> Vec<bool> {
        let messages: Vec<Vec<u8>> = forms
            .iter()
            .map(|f| f.map(|f| f.form.signed_message()).unwrap_or_default())
            .collect();
        verify_with_messages(forms, &messages, points)
    }

    /// This form's signature as an item of a batch check, over `message`, which must be
    /// [`CHasil::signed_message`] of this form (made by the caller, who keeps it alive for the batch).
    pub fn batch_item<'a>(&self, message: &'a [u8]) -> sign::BatchItem<'a> {
        sign::BatchItem {
            key: self.form.signer,
            point: None,
            message,
            signature: self.signature,
        }
    }

    /// Decodes one signed form (one line of `forms.ndjson`, or a request body).
    pub fn decode(bytes: &[u8]) -> Result<SignedForm, DecodeError> {
        if bytes.len() > MAX_FORM_BYTES {
            return Err(DecodeError::TooLarge { bytes: bytes.len() });
        }
        let wire: WireSigned =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
        let signature = Signature::from_base64(&wire.signature)
            .map_err(|e| DecodeError::Format(format!("signature: {e}")))?;
        Ok(SignedForm {
            form: wire.form.into_form()?,
            signature,
        })
    }

    /// Decodes a form object and its base64 signature given separately (as a log entry holds them).
    pub fn from_parts(form_json: &[u8], signature: &str) -> Result<SignedForm, DecodeError> {
        if form_json.len() > MAX_FORM_BYTES {
            return Err(DecodeError::TooLarge {
                bytes: form_json.len(),
            });
        }
        let wire: WireForm =
            serde_json::from_slice(form_json).map_err(|e| DecodeError::Json(e.to_string()))?;
        let signature = Signature::from_base64(signature)
            .map_err(|e| DecodeError::Format(format!("signature: {e}")))?;
        Ok(SignedForm {
            form: wire.into_form()?,
            signature,
        })
    }

    /// Canonical JSON of the envelope: `{"form":<JCS form>,"signature":"..."}`. One line, no newline.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_measured().0
    }

    /// [`SignedForm::encode`] and the length of the canonical form in it (after ENVELOPE_PREFIX).
    fn encode_measured(&self) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(1200);
        out.extend_from_slice(ENVELOPE_PREFIX);
        self.form.write_canonical(&mut out);
        let form_bytes = out.len() - ENVELOPE_PREFIX.len();
        out.extend_from_slice(b",\"signature\":");
        canonical::write_str(&mut out, &self.signature.to_base64());
        out.push(b'}');
        (out, form_bytes)
    }

    /// Whether the signature is the signer's over this form (the signer's enrolment is a separate check).
    pub fn signature_valid(&self) -> bool {
        sign::verify(
            &self.form.signer,
            sign::CONTEXT_C_HASIL,
            &self.form.canonical_json(),
            &self.signature,
        )
    }

    /// SHA-256 of the encoded envelope: identifies an exact submission (for duplicate detection).
    pub fn digest(&self) -> [u8; 32] {
        SignedForm::envelope_digest(&self.encode())
    }

    /// [`SignedForm::digest`] from bytes [`SignedForm::encode`] already made.
    pub fn envelope_digest(envelope: &[u8]) -> [u8; 32] {
        Sha256::digest(envelope).into()
    }
}

/// `forms[i]`'s signature over `messages[i]`, which must be its [`CHasil::signed_message`].
fn verify_with_messages(
    forms: &[Option<&SignedForm>],
    messages: &[Vec<u8>],
    points: &sign::KeyPoints,
) -> Vec<bool> {
    let (positions, items): (Vec<usize>, Vec<sign::BatchItem>) = forms
        .iter()
        .zip(messages)
        .enumerate()
        .filter_map(|(i, (form, message))| {
            let mut item = (*form)?.batch_item(message);
            item.point = points.get(&item.key);
            Some((i, item))
        })
        .unzip();
    let mut valid = vec![false; forms.len()];
    for (i, ok) in positions.into_iter().zip(sign::verify_batch(&items)) {
        valid[i] = ok;
    }
    valid
}

/// A signed form with its canonical envelope ([`SignedForm::encode`]) and the envelope's digest,
/// made once where the form is decoded (on any core): the signature check takes its signed message
/// from the envelope, and the single writer logs the envelope, so no form is canonically encoded
/// twice or on the writer's thread. Invariant: `envelope == form.encode()`, which is why the fields
/// are private (a changed form would need a new envelope).
#[derive(Clone, Debug)]
pub struct EncodedForm {
    form: SignedForm,
    envelope: Vec<u8>,
    /// The canonical form's length, which starts after `{"form":` in the envelope.
    form_bytes: usize,
    digest: [u8; 32],
}

/// What an envelope holds before the canonical form.
const ENVELOPE_PREFIX: &[u8] = b"{\"form\":";

impl EncodedForm {
    pub fn new(form: SignedForm) -> EncodedForm {
        let (envelope, form_bytes) = form.encode_measured();
        debug_assert_eq!(
            &envelope[ENVELOPE_PREFIX.len()..ENVELOPE_PREFIX.len() + form_bytes],
            form.form.canonical_json().as_slice()
        );
        let digest = SignedForm::envelope_digest(&envelope);
        EncodedForm {
            form,
            envelope,
            form_bytes,
            digest,
        }
    }

    pub fn form(&self) -> &SignedForm {
        &self.form
    }

    /// [`SignedForm::digest`].
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// [`CHasil::signed_message`], copied out of the envelope.
    pub fn signed_message(&self) -> Vec<u8> {
        let canonical =
            &self.envelope[ENVELOPE_PREFIX.len()..ENVELOPE_PREFIX.len() + self.form_bytes];
        let mut message = Vec::with_capacity(sign::CONTEXT_C_HASIL.len() + canonical.len());
        message.extend_from_slice(sign::CONTEXT_C_HASIL);
        message.extend_from_slice(canonical);
        message
    }

    /// The form, its envelope ([`SignedForm::encode`]) and its digest.
    pub fn into_parts(self) -> (SignedForm, Vec<u8>, [u8; 32]) {
        (self.form, self.envelope, self.digest)
    }

    /// [`SignedForm::verify_signatures`] with the messages taken from the envelopes.
    pub fn verify_signatures(
        forms: &[Option<&EncodedForm>],
        points: &sign::KeyPoints,
    ) -> Vec<bool> {
        let messages: Vec<Vec<u8>> = forms
            .iter()
            .map(|f| f.map(EncodedForm::signed_message).unwrap_or_default())
            .collect();
        let signed: Vec<Option<&SignedForm>> = forms.iter().map(|f| f.map(|f| &f.form)).collect();
        verify_with_messages(&signed, &messages, points)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample_form(signer: PublicKey) -> CHasil {
        let lpj = |l, p| Lpj { l, p, j: l + p };
        CHasil {
            election: "pemilu-2024".into(),
            contest: "ppwp".into(),
            correction: None,
            tps: Code::parse("1101012001001").unwrap(),
            registered: VoterRows {
                dpt: lpj(139, 145),
                dptb: lpj(0, 1),
                dpk: lpj(2, 0),
                total: lpj(141, 146),
            },
            voted: VoterRows {
                dpt: lpj(110, 126),
                dptb: lpj(0, 1),
                dpk: lpj(2, 0),
                total: lpj(112, 127),
            },
            disability: Disability {
                registered: lpj(1, 1),
                voted: lpj(1, 0),
            },
            ballots: Ballots {
                received: 290,
                used: 239,
                damaged: 1,
                unused: 50,
            },
            votes: vec![("01".into(), 200), ("02".into(), 25), ("03".into(), 10)],
            valid: 235,
            invalid: 4,
            total: 239,
            evidence: vec![PhotoDigest::of(b"page 1"), PhotoDigest::of(b"page 2")],
            signer,
        }
    }

    #[test]
    fn encode_decode_round_trip_and_canonical() {
        let key = SecretKey::from_seed([7; 32]);
        let signed = sample_form(key.public()).sign(&key);
        let bytes = signed.encode();
        let decoded = SignedForm::decode(&bytes).unwrap();
        assert_eq!(decoded, signed);
        assert!(decoded.signature_valid());
        // The direct writer agrees with the generic JCS encoder.
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(canonical::to_vec(&value).unwrap(), bytes);
        // Whitespace and member order do not matter to decoding: the signature covers the canonical form.
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        assert_eq!(SignedForm::decode(&pretty).unwrap(), signed);
    }

    #[test]
    fn an_encoded_form_carries_exactly_what_the_form_would_encode() {
        let key = SecretKey::from_seed([7; 32]);
        let mut forms = vec![sample_form(key.public()).sign(&key)];
        // Escapes and non-ASCII in the canonical form shift every offset of the envelope.
        let mut odd = sample_form(key.public());
        odd.election = "pemilu \"2024\" \\ ñ\u{1}".into();
        forms.push(odd.sign(&key));
        let mut forged = forms[0].clone();
        forged.form.valid += 1;
        forms.push(forged);
        let encoded: Vec<EncodedForm> = forms.iter().cloned().map(EncodedForm::new).collect();
        for (form, encoded) in forms.iter().zip(&encoded) {
            assert_eq!(encoded.signed_message(), form.form.signed_message());
            assert_eq!(encoded.digest(), form.digest());
            assert_eq!(encoded.form(), form);
            let (back, envelope, digest) = encoded.clone().into_parts();
            assert_eq!(
                (&back, envelope, digest),
                (form, form.encode(), form.digest())
            );
        }
        let points = sign::KeyPoints::default();
        let verdicts = EncodedForm::verify_signatures(
            &[
                Some(&encoded[0]),
                None,
                Some(&encoded[1]),
                Some(&encoded[2]),
            ],
            &points,
        );
        assert_eq!(verdicts, [true, false, true, false]);
    }

    #[test]
    fn strict_decoding() {
        let key = SecretKey::from_seed([7; 32]);
        let signed = sample_form(key.public()).sign(&key);
        let text = String::from_utf8(signed.encode()).unwrap();
        let cases = [
            text.replace("\"invalid\":4", "\"invalid\":4.0"),
            text.replace("\"invalid\":4", "\"invalid\":\"4\""),
            text.replace("\"invalid\":4", "\"invalid\":99999999999999999"),
            text.replace("\"invalid\":4,", ""),
            text.replace("\"invalid\":4", "\"invalid\":4,\"extra\":1"),
            text.replace("\"03\":10", "\"03\":10,\"03\":11"),
            text.replace("1101012001001", "1101012001"),
            text.replace("saksi/c-hasil/v1", "saksi/c-hasil/v9"),
            text.replace("sha256:", "md5:"),
        ];
        for case in cases {
            assert!(
                SignedForm::decode(case.as_bytes()).is_err(),
                "accepted {case}"
            );
        }
        // Negative counts are well-formed: the rulebook, not the decoder, rejects them.
        let negative = text.replace("\"invalid\":4", "\"invalid\":-4");
        assert!(SignedForm::decode(negative.as_bytes()).is_ok());
        assert!(matches!(
            SignedForm::decode(&vec![b' '; MAX_FORM_BYTES + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
