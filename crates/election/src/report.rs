//! A citizen's report of an irregularity (laporan kecurangan), signed by the reporter's own Ed25519
//! key: pseudonymous, so the reporter can later prove authorship without saying who they are.
//!
//! The signature covers `CONTEXT_REPORT || JCS(report)`, and the report names its text by SHA-256:
//! the text travels beside the report and is stored beside the log, not in it, so a moderator can
//! stop serving a text (personal data, a threat) while the log keeps the digest and the signature.
//!
//! ```text
//! {"report":{"category":"counting","election":"pemilu-2024","event_at":1707868800,
//!            "filed_at":1707900000,"photos":["sha256:..."],"place":"3201010001001",
//!            "reporter":"<base64 key>","text_sha256":"<hex>"},
//!  "signature":"<base64>","text":"..."}
//! ```

use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use crate::canonical;
use crate::code::Code;
use crate::form::{hex, unhex, PhotoDigest};
use crate::sign::{self, PublicKey, SecretKey, Signature};

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub const CONTEXT_REPORT: &[u8] = b"saksi/sig/v1/report\n";
/// Longest report text, in bytes of UTF-8.
pub const MAX_REPORT_TEXT_BYTES: usize = 4096;
/// Most photos one report names.
pub const MAX_REPORT_PHOTOS: usize = 8;
/// Longest encrypted contact details (an age file to the oversight body), in bytes: a name, a
/// telephone number and an address, with age's header and tag.
pub const MAX_CONTACT_BYTES: usize = 1024;
/// A whole submission: the report, its signature, its text, and a stamp.
pub const MAX_REPORT_BYTES: usize = MAX_REPORT_TEXT_BYTES * 2 + MAX_CONTACT_BYTES * 2 + 2048;

/// What a report is about. Codes are stable; labels are for people.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Category {
    MoneyPolitics,
    Intimidation,
    VoterList,
    Voting,
    Counting,
    Recapitulation,
    /// A site or channel made unavailable (blocked, hacked, emptied).
    System,
    Other,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::MoneyPolitics,
        Category::Intimidation,
        Category::VoterList,
        Category::Voting,
        Category::Counting,
        Category::Recapitulation,
        Category::System,
        Category::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Category::MoneyPolitics => "money_politics",
            Category::Intimidation => "intimidation",
            Category::VoterList => "voter_list",
            Category::Voting => "voting",
            Category::Counting => "counting",
            Category::Recapitulation => "recapitulation",
            Category::System => "system",
            Category::Other => "other",
        }
    }

    /// (Indonesian, English).
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Category::MoneyPolitics => ("politik uang", "money politics"),
            Category::Intimidation => ("intimidasi", "intimidation"),
            Category::VoterList => ("daftar pemilih", "voter list"),
            Category::Voting => ("pemungutan suara", "voting"),
            Category::Counting => ("penghitungan suara", "counting"),
            Category::Recapitulation => ("rekapitulasi", "recapitulation"),
            Category::System => (
                "sistem atau saluran tidak dapat diakses",
                "a system or channel made unavailable",
            ),
            Category::Other => ("lainnya", "other"),
        }
    }

    pub fn parse(code: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.code() == code)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub election: String,
    /// A TPS or any region code.
    pub place: Code,
    pub category: Category,
    /// When the event happened, as the reporter says (Unix seconds).
    pub event_at: u64,
    /// When the reporter filed it (Unix seconds): two reports with the same words differ.
    pub filed_at: u64,
    pub text_sha256: [u8; 32],
    pub photos: Vec<PhotoDigest>,
    pub reporter: PublicKey,
    /// A follow-up names an earlier report by its signature (the same reporter's key must sign).
    pub follows: Option<Signature>,
    /// A follow-up that withdraws the report it follows (the reporter's own word; the entries stay).
    pub withdraw: bool,
    /// Contact details, encrypted to the oversight body's age recipient (registry): only ever
    /// ciphertext in the log.
    pub contact: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedReport {
    pub report: Report,
    pub signature: Signature,
}

/// A report as submitted: signed, with its text, and a proof-of-work stamp when the intake asks
/// for one (see [`stamp_bits`]). The stamp is not logged: it only buys a place in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportSubmission {
    pub signed: SignedReport,
    pub text: String,
    pub stamp: Option<String>,
}

/// What a stamp's hash starts with, so it serves no other protocol.
pub const STAMP_CONTEXT: &[u8] = b"saksi/pow/v1\n";
/// A stamp is at most this many ASCII letters and digits.
pub const MAX_STAMP_BYTES: usize = 32;

/// The work a stamp proves for a report: the leading zero bits of
/// SHA-256(`STAMP_CONTEXT` || signature || stamp). Bound to the signature, which covers the whole
/// report, so a stamp is good for one report only.
pub fn stamp_bits(signature: &Signature, stamp: &str) -> u32 {
    let digest = Sha256::new()
        .chain_update(STAMP_CONTEXT)
        .chain_update(signature.0)
        .chain_update(stamp.as_bytes())
        .finalize();
    let mut bits = 0;
    for byte in digest {
        bits += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    bits
}

/// Finds a stamp of at least `bits` (about 2^bits hashes): what a reporter's tool does when the
/// intake asks for work.
pub fn make_stamp(signature: &Signature, bits: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|stamp| stamp_bits(signature, stamp) >= bits as u32)
        .expect("some counter meets any bits up to 64")
}

/// Checks a report text: within the limit, and no control (except newline), bidirectional or
/// invisible character.
pub fn check_text(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the text is empty".into());
    }
    if text.len() > MAX_REPORT_TEXT_BYTES {
        return Err(format!(
            "the text is {} bytes, the limit is {MAX_REPORT_TEXT_BYTES}",
            text.len()
        ));
    }
    text.split('\n')
        .try_for_each(|line| canonical::check_free_text("the text", line))
}

pub fn text_digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Report {
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "election": self.election,
            "place": self.place.as_str(),
            "category": self.category.code(),
            "event_at": self.event_at,
            "filed_at": self.filed_at,
            "text_sha256": hex(&self.text_sha256),
            "photos": self.photos.iter().map(PhotoDigest::to_text).collect::<Vec<_>>(),
            "reporter": self.reporter.to_base64(),
        });
        // Optional members are absent unless set, so a plain report has one encoding.
        if let Some(follows) = &self.follows {
            value["follows"] = json!(follows.to_base64());
        }
        if self.withdraw {
            value["withdraw"] = json!(true);
        }
        if let Some(contact) = &self.contact {
            value["contact"] = json!(b64().encode(contact));
        }
        value
    }

    pub fn canonical_json(&self) -> Vec<u8> {
        canonical::to_vec(&self.to_json()).expect("a report is canonicalisable")
    }

    /// Reads a report object: exactly these members, each well-formed.
    pub fn from_json(value: &Value) -> Result<Report, String> {
        let object = value.as_object().ok_or("the report is not an object")?;
        const MEMBERS: [&str; 11] = [
            "category",
            "contact",
            "election",
            "event_at",
            "filed_at",
            "follows",
            "photos",
            "place",
            "reporter",
            "text_sha256",
            "withdraw",
        ];
        if let Some(extra) = object.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
            return Err(format!("unknown member {extra:?}"));
        }
        let text = |key: &str| -> Result<&str, String> {
            object
                .get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{key} is missing or not a string"))
        };
        let seconds = |key: &str| -> Result<u64, String> {
            object
                .get(key)
                .and_then(Value::as_u64)
                .filter(|&s| canonical::is_safe_integer(s as i64))
                .ok_or_else(|| format!("{key} is missing or not a time in Unix seconds"))
        };
        let election = text("election")?;
        if election.is_empty()
            || election.len() > 64
            || !election
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("election is a short lowercase identifier".into());
        }
        let place = Code::parse(text("place")?).map_err(|e| format!("place: {e}"))?;
        let category = Category::parse(text("category")?).ok_or_else(|| {
            let codes: Vec<&str> = Category::ALL.iter().map(|c| c.code()).collect();
            format!("category is one of {}", codes.join(", "))
        })?;
        let text_sha256: [u8; 32] = unhex(text("text_sha256")?)
            .and_then(|b| b.try_into().ok())
            .ok_or("text_sha256 is 64 hex digits")?;
        let photos = object
            .get("photos")
            .and_then(Value::as_array)
            .ok_or("photos is missing or not a list")?;
        if photos.len() > MAX_REPORT_PHOTOS {
            return Err(format!("at most {MAX_REPORT_PHOTOS} photos"));
        }
        let photos = photos
            .iter()
            .map(|p| {
                p.as_str()
                    .and_then(PhotoDigest::parse)
                    .ok_or_else(|| "a photo is named sha256:<64 hex>".to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reporter =
            PublicKey::from_base64(text("reporter")?).map_err(|e| format!("reporter: {e}"))?;
        let follows = match object.get("follows") {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(|s| Signature::from_base64(s).ok())
                    .ok_or("follows is the base64 signature of an earlier report")?,
            ),
        };
        let withdraw = match object.get("withdraw") {
            None => false,
            Some(Value::Bool(true)) if follows.is_some() => true,
            Some(_) => {
                return Err("withdraw is true, and only in a follow-up (with follows)".into())
            }
        };
        let contact = match object.get("contact") {
            None => None,
            Some(v) => {
                let bytes = v
                    .as_str()
                    .and_then(|s| b64().decode(s).ok())
                    .ok_or("contact is base64 (an age file to the oversight body)")?;
                if bytes.is_empty() || bytes.len() > MAX_CONTACT_BYTES {
                    return Err(format!(
                        "contact is 1 to {MAX_CONTACT_BYTES} bytes of ciphertext"
                    ));
                }
                Some(bytes)
            }
        };
        Ok(Report {
            election: election.to_string(),
            place,
            category,
            event_at: seconds("event_at")?,
            filed_at: seconds("filed_at")?,
            text_sha256,
            photos,
            reporter,
            follows,
            withdraw,
            contact,
        })
    }

    pub fn sign(self, key: &SecretKey) -> SignedReport {
        let signature = key.sign(CONTEXT_REPORT, &self.canonical_json());
        SignedReport {
            report: self,
            signature,
        }
    }
}

impl SignedReport {
    /// This report's signature as an item of a batch check ([`sign::verify_batch`]), over
    /// `message`, which must be [`SignedReport::signed_message`].
    pub fn batch_item<'a>(&self, message: &'a [u8]) -> sign::BatchItem<'a> {
        sign::BatchItem {
            key: self.report.reporter,
            point: None,
            message,
            signature: self.signature,
        }
    }

    /// What the reporter signs: the context, then the report's canonical JSON.
    pub fn signed_message(&self) -> Vec<u8> {
        [CONTEXT_REPORT, &self.report.canonical_json()].concat()
    }

    /// Whether the signature is the named reporter's over this report.
    pub fn signature_valid(&self) -> bool {
        sign::verify(
            &self.report.reporter,
            CONTEXT_REPORT,
            &self.report.canonical_json(),
            &self.signature,
        )
    }
}

impl ReportSubmission {
    /// Decodes a submission strictly (no repeated or unknown member, bounded) and checks that the
    /// text is acceptable and is the one the report names. The signature is the caller's check.
    pub fn decode(bytes: &[u8]) -> Result<ReportSubmission, String> {
        if bytes.len() > MAX_REPORT_BYTES {
            return Err(format!(
                "the report is {} bytes, the limit is {MAX_REPORT_BYTES}",
                bytes.len()
            ));
        }
        let value = canonical::parse_strict(bytes)?;
        let object: &Map<String, Value> = value.as_object().ok_or("not a JSON object")?;
        if let Some(extra) = object
            .keys()
            .find(|k| !["report", "signature", "stamp", "text"].contains(&k.as_str()))
        {
            return Err(format!("unknown member {extra:?}"));
        }
        let report = Report::from_json(object.get("report").ok_or("report is missing")?)?;
        let signature = object
            .get("signature")
            .and_then(Value::as_str)
            .ok_or("signature is missing")
            .and_then(|s| {
                Signature::from_base64(s).map_err(|_| "signature is not base64 of 64 bytes")
            })?;
        let text = object
            .get("text")
            .and_then(Value::as_str)
            .ok_or("text is missing")?
            .to_string();
        check_text(&text)?;
        if text_digest(&text) != report.text_sha256 {
            return Err("the text is not the one the report names (text_sha256)".into());
        }
        let stamp = match object.get("stamp") {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .filter(|s| {
                        !s.is_empty()
                            && s.len() <= MAX_STAMP_BYTES
                            && s.bytes().all(|b| b.is_ascii_alphanumeric())
                    })
                    .ok_or(format!(
                        "stamp is 1 to {MAX_STAMP_BYTES} ASCII letters and digits"
                    ))?
                    .to_string(),
            ),
        };
        Ok(ReportSubmission {
            signed: SignedReport { report, signature },
            text,
            stamp,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut value = json!({
            "report": self.signed.report.to_json(),
            "signature": self.signed.signature.to_base64(),
            "text": self.text,
        });
        if let Some(stamp) = &self.stamp {
            value["stamp"] = json!(stamp);
        }
        canonical::to_vec(&value).expect("canonicalisable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(text: &str) -> ReportSubmission {
        let key = SecretKey::from_seed([5; 32]);
        let report = Report {
            election: "pemilu-2024".into(),
            place: Code::parse("3201010001001").unwrap(),
            category: Category::Counting,
            event_at: 1_707_868_800,
            filed_at: 1_707_900_000,
            text_sha256: text_digest(text),
            photos: vec![PhotoDigest::of(b"x")],
            reporter: key.public(),
            follows: None,
            withdraw: false,
            contact: None,
        };
        ReportSubmission {
            signed: report.sign(&key),
            text: text.into(),
            stamp: None,
        }
    }

    #[test]
    fn categories_are_numbered_in_their_listed_order() {
        for (i, category) in Category::ALL.iter().enumerate() {
            assert_eq!(*category as usize, i, "{category:?}");
        }
    }

    #[test]
    fn a_stamp_proves_work_for_one_report() {
        let s = submission("ok");
        let stamp = make_stamp(&s.signed.signature, 12);
        assert!(stamp_bits(&s.signed.signature, &stamp) >= 12);
        let stamped = ReportSubmission {
            stamp: Some(stamp.clone()),
            ..s.clone()
        };
        assert_eq!(
            ReportSubmission::decode(&stamped.encode()).unwrap(),
            stamped
        );
        // Another report's signature: the same stamp proves (almost surely) nothing.
        let other = submission("other");
        assert!(stamp_bits(&other.signed.signature, &stamp) < 12 || stamp == "0");
        let bad = String::from_utf8(stamped.encode())
            .unwrap()
            .replace(&format!("\"stamp\":\"{stamp}\""), "\"stamp\":\"a b\"");
        assert!(ReportSubmission::decode(bad.as_bytes()).is_err());
    }

    #[test]
    fn round_trips_and_verifies() {
        let s = submission("Penghitungan dihentikan pukul 14.00.\nSaksi diusir.");
        let decoded = ReportSubmission::decode(&s.encode()).unwrap();
        assert_eq!(decoded, s);
        assert!(decoded.signed.signature_valid());
    }

    #[test]
    fn refuses_what_it_must() {
        let good = String::from_utf8(submission("ok").encode()).unwrap();
        let cases = [
            good.replace("\"text\":\"ok\"", "\"text\":\"other\""),
            good.replace("\"text\":\"ok\"", "\"text\":\"o\\u202ek\""),
            good.replace("\"category\":\"counting\"", "\"category\":\"gossip\""),
            good.replace("\"report\":{", "\"report\":{\"extra\":1,"),
            good.replace("\"text\":\"ok\"", "\"text\":\"ok\",\"text\":\"ok\""),
            good.replace("\"place\":\"3201010001001\"", "\"place\":\"32x\""),
            format!(
                "{}{}",
                &good[..good.len() - 1],
                " ".repeat(MAX_REPORT_BYTES)
            ),
        ];
        for (n, case) in cases.iter().enumerate() {
            assert!(
                ReportSubmission::decode(case.as_bytes()).is_err(),
                "case {n}"
            );
        }
        assert!(check_text(&"a".repeat(MAX_REPORT_TEXT_BYTES + 1)).is_err());
        assert!(check_text(" \n ").is_err());
        // A changed field breaks the signature.
        let mut s = submission("ok");
        s.signed.report.category = Category::Voting;
        assert!(!s.signed.signature_valid());
    }
}
