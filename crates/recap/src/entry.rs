//! What the log holds. Every entry is RFC 8785 canonical JSON, one object with a `type`:
//!
//! - `admin`: a statement by the election authority, signed with its key under the context
//!   `saksi/sig/v1/admin\n`: the `genesis` (election definition, rulebook version and digest, the
//!   authority, operator and log keys) and `registry` parts (regions, TPS with kind, DPT and officer keys,
//!   corrector keys). There is no setting that is not one of these.
//! - `form`: a form C.Hasil exactly as its officer (or, for a correction, a commission) signed it, and the
//!   server's verdict on it (accepted, or the codes of the rules it broke, under the named rulebook).
//!   Only authenticated forms are logged; a rejection is a logged result.
//! - `participant`: a participant's (a candidate pair's) statement about its poll witnesses (saksi
//!   TPS): keys enrolled for TPS or regions, keys revoked; signed with a key the authority enrolled
//!   for that participant, under `saksi/sig/v1/participant\n`.
//! - `copy`: a poll witness's copy (salinan) of a TPS's result as the witness signed it, and the
//!   rulebook's verdict on its figures. It never replaces the official result; it is compared with it.
//! - `report`: a citizen's report of an irregularity, signed by the reporter's own key under
//!   `saksi/sig/v1/report\n`; it names its text by SHA-256 (the text is kept beside the log).
//! - `transcription`: a published Sirekap row entered by the operator, signed with the operator key under
//!   `saksi/sig/v1/transcription\n`, and its verdict. It carries no officer signature, and says so.

use serde_json::{json, Map, Value};

use saksi_election::canonical;
use saksi_election::code::Code;
use saksi_election::form::SignedForm;
use saksi_election::registry::{Lp, Tps, TpsKind};
use saksi_election::rules::Verdict;
use saksi_election::sheet::{Field, Sheet};
use saksi_election::sign::{self, PublicKey, SecretKey, Signature};
use saksi_election::Election;

pub const CONTEXT_ADMIN: &[u8] = b"saksi/sig/v1/admin\n";
pub const CONTEXT_TRANSCRIPTION: &[u8] = b"saksi/sig/v1/transcription\n";
pub const CONTEXT_PARTICIPANT: &[u8] = b"saksi/sig/v1/participant\n";
pub const CONTEXT_MODERATION: &[u8] = b"saksi/sig/v1/moderation\n";
/// The operator's settings of the report intake.
pub const CONTEXT_INTAKE: &[u8] = b"saksi/sig/v1/intake\n";

/// Every signature context saksi uses, for the check that none is a prefix of another.
pub const ALL_CONTEXTS: [&[u8]; 9] = [
    CONTEXT_MODERATION,
    CONTEXT_INTAKE,
    saksi_election::report::CONTEXT_REPORT,
    saksi_election::sign::CONTEXT_C_HASIL,
    saksi_election::recap::CONTEXT_D_HASIL,
    saksi_election::copy::CONTEXT_SALINAN,
    CONTEXT_ADMIN,
    CONTEXT_TRANSCRIPTION,
    CONTEXT_PARTICIPANT,
];

/// TPS per registry entry: keeps each entry well under the log's 64 KiB entry limit (a TPS line with
/// one key is about 90 bytes of JSON).
pub const REGISTRY_TPS_PER_ENTRY: usize = 400;
pub const REGISTRY_REGIONS_PER_ENTRY: usize = 800;

#[derive(Debug)]
pub struct EntryError(pub String);

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad log entry: {}", self.0)
    }
}

impl std::error::Error for EntryError {}

fn err(message: impl Into<String>) -> EntryError {
    EntryError(message.into())
}

/// The server's verdict as recorded with a form.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordedVerdict {
    pub accepted: bool,
    pub rejected_by: Vec<String>,
    pub warnings: Vec<String>,
    /// Shared: every verdict names one of very few rulebook versions.
    #[serde(
        serialize_with = "serialize_rulebook",
        deserialize_with = "deserialize_rulebook"
    )]
    pub rulebook: std::sync::Arc<str>,
}

impl RecordedVerdict {
    /// The verdict as logged, naming the rulebook version it was made under.
    pub fn from_verdict(
        verdict: &Verdict,
        rulebook: saksi_election::rules::Rulebook,
    ) -> RecordedVerdict {
        RecordedVerdict {
            accepted: verdict.accepted(),
            rejected_by: verdict
                .rejecting_codes()
                .into_iter()
                .map(String::from)
                .collect(),
            warnings: verdict
                .warning_codes()
                .into_iter()
                .map(String::from)
                .collect(),
            rulebook: intern_rulebook(rulebook.name()),
        }
    }

    fn to_json(&self) -> Value {
        json!({"accepted": self.accepted, "rejected_by": self.rejected_by, "warnings": self.warnings, "rulebook": &*self.rulebook})
    }

    /// JCS of [`RecordedVerdict::to_json`], written directly (one per logged form).
    fn write_canonical(&self, out: &mut Vec<u8>) {
        let list = |out: &mut Vec<u8>, items: &[String]| {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical::write_str(out, item);
            }
            out.push(b']');
        };
        out.extend_from_slice(if self.accepted {
            b"{\"accepted\":true,\"rejected_by\":"
        } else {
            b"{\"accepted\":false,\"rejected_by\":"
        });
        list(out, &self.rejected_by);
        out.extend_from_slice(b",\"rulebook\":");
        canonical::write_str(out, &self.rulebook);
        out.extend_from_slice(b",\"warnings\":");
        list(out, &self.warnings);
        out.push(b'}');
    }

    fn from_json(value: &Value) -> Result<RecordedVerdict, EntryError> {
        let strings = |key: &str| -> Result<Vec<String>, EntryError> {
            value[key]
                .as_array()
                .ok_or_else(|| err(format!("verdict.{key}")))?
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .ok_or_else(|| err("verdict code"))
                })
                .collect()
        };
        Ok(RecordedVerdict {
            accepted: value["accepted"]
                .as_bool()
                .ok_or_else(|| err("verdict.accepted"))?,
            rejected_by: strings("rejected_by")?,
            warnings: strings("warnings")?,
            rulebook: intern_rulebook(
                value["rulebook"]
                    .as_str()
                    .ok_or_else(|| err("verdict.rulebook"))?,
            ),
        })
    }
}

fn current_rulebook() -> std::sync::Arc<str> {
    static CURRENT: std::sync::OnceLock<std::sync::Arc<str>> = std::sync::OnceLock::new();
    CURRENT
        .get_or_init(|| std::sync::Arc::from(saksi_election::rules::RULEBOOK_VERSION))
        .clone()
}

fn serialize_rulebook<S: serde::Serializer>(
    name: &std::sync::Arc<str>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(name)
}

fn deserialize_rulebook<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<std::sync::Arc<str>, D::Error> {
    let name: String = serde::Deserialize::deserialize(deserializer)?;
    Ok(intern_rulebook(&name))
}

fn intern_rulebook(name: &str) -> std::sync::Arc<str> {
    let current = current_rulebook();
    if *current == *name {
        current
    } else {
        std::sync::Arc::from(name)
    }
}

/// The genesis statement.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Genesis {
    pub election: Election,
    pub authority: PublicKey,
    pub operator: PublicKey,
    pub log_vkey: String,
    pub rulebook_version: String,
    pub rulebook_sha256: String,
}

/// One part of the registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryPart {
    pub regions: Vec<(Code, String)>,
    pub tps: Vec<Tps>,
    pub correctors: Vec<(Code, PublicKey)>,
    /// Officer keys enrolled for TPS already in the registry (a later change, e.g. a replaced KPPS).
    pub enrollments: Vec<(Code, PublicKey)>,
    /// Recapitulation committees' keys, by region (None: the national committee).
    pub recap_officers: Vec<(Option<Code>, PublicKey)>,
    /// Participants' keys (a candidate pair's, by ballot position): each enrols its poll witnesses.
    pub participants: Vec<(String, PublicKey)>,
    /// Moderators of citizens' reports.
    pub moderators: Vec<PublicKey>,
    /// The oversight body's age X25519 recipient (`age1...`): reporters encrypt contact details to
    /// it (see `crate::contact`). A later part replaces it (a key rotated).
    pub oversight_recipient: Option<String>,
}

/// What a moderator says about a report. Appended, never editing or deleting anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModerationAction {
    /// A status: received, under_review, substantiated, not_substantiated, forwarded.
    Status(String),
    /// Stop serving the report's text and photos (their digests stay in the log), for a reason:
    /// personal_data, threat, illegal_content, spam.
    Hide(String),
    Restore,
}

pub const REPORT_STATUSES: [&str; 5] = [
    "received",
    "under_review",
    "substantiated",
    "not_substantiated",
    "forwarded",
];
pub const HIDE_REASONS: [&str; 4] = ["personal_data", "threat", "illegal_content", "spam"];
/// Longest moderation note, in bytes.
pub const MAX_MODERATION_NOTE_BYTES: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModerationStatement {
    /// The log index of the report.
    pub report: u64,
    pub action: ModerationAction,
    pub note: String,
    pub issued_at: u64,
}

impl ModerationStatement {
    pub fn to_json(&self) -> Value {
        let (action, value) = match &self.action {
            ModerationAction::Status(s) => ("status", Value::from(s.as_str())),
            ModerationAction::Hide(r) => ("hide", Value::from(r.as_str())),
            ModerationAction::Restore => ("restore", Value::Null),
        };
        json!({
            "kind": "moderation",
            "report": self.report,
            "action": action,
            "value": value,
            "note": self.note,
            "issued_at": self.issued_at,
        })
    }

    pub fn from_json(value: &Value) -> Result<ModerationStatement, EntryError> {
        if value["kind"].as_str() != Some("moderation") {
            return Err(err("moderation statement kind"));
        }
        let word = |list: &[&str]| {
            value["value"]
                .as_str()
                .filter(|v| list.contains(v))
                .map(String::from)
                .ok_or_else(|| err(format!("moderation value is one of {}", list.join(", "))))
        };
        let action = match value["action"].as_str() {
            Some("status") => ModerationAction::Status(word(&REPORT_STATUSES)?),
            Some("hide") => ModerationAction::Hide(word(&HIDE_REASONS)?),
            Some("restore") => ModerationAction::Restore,
            other => return Err(err(format!("moderation action {other:?}"))),
        };
        let note = value["note"]
            .as_str()
            .ok_or_else(|| err("note"))?
            .to_string();
        if note.len() > MAX_MODERATION_NOTE_BYTES {
            return Err(err(format!(
                "a moderation note is at most {MAX_MODERATION_NOTE_BYTES} bytes"
            )));
        }
        canonical::check_free_text("the note", &note).map_err(err)?;
        Ok(ModerationStatement {
            report: value["report"]
                .as_u64()
                .ok_or_else(|| err("report index"))?,
            action,
            note,
            issued_at: value["issued_at"]
                .as_u64()
                .ok_or_else(|| err("issued_at"))?,
        })
    }

    pub fn sign(self, key: &SecretKey) -> Entry {
        let body = canonical::to_vec(&self.to_json()).expect("canonicalisable");
        let signature = key.sign(CONTEXT_MODERATION, &body);
        Entry::Moderation {
            statement: self,
            moderator: key.public(),
            signature,
        }
    }
}

/// The most leading zero bits a report's stamp may be asked for: about 2^24 SHA-256 hashes of a
/// short message per report. More would shut out the reporters the intake exists for.
pub const MAX_POW_BITS: u8 = 24;
/// The most reports one reporter key may be allowed per hour.
pub const MAX_REPORTS_PER_KEY_PER_HOUR: u32 = 3600;

/// The operator's settings of the report intake, signed with the operator key the genesis names and
/// logged like everything else: raising the work asked of reporters under a flood is public.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IntakeSetting {
    /// Leading zero bits a report's proof-of-work stamp must have (0: none asked).
    pub pow_bits: u8,
    /// Reports (follow-ups included) one reporter key may file per hour.
    pub reports_per_key_per_hour: u32,
    /// Why, for the public record.
    pub note: String,
    /// When the operator set it (Unix seconds): the same setting made twice is two statements.
    pub issued_at: u64,
}

impl Default for IntakeSetting {
    /// Before any setting is logged: no stamp, a minute per report per key on average.
    fn default() -> Self {
        IntakeSetting {
            pow_bits: 0,
            reports_per_key_per_hour: 60,
            note: String::new(),
            issued_at: 0,
        }
    }
}

impl IntakeSetting {
    pub fn to_json(&self) -> Value {
        json!({
            "kind": "intake",
            "pow_bits": self.pow_bits,
            "reports_per_key_per_hour": self.reports_per_key_per_hour,
            "note": self.note,
            "issued_at": self.issued_at,
        })
    }

    pub fn from_json(value: &Value) -> Result<IntakeSetting, EntryError> {
        if value["kind"].as_str() != Some("intake") {
            return Err(err("intake setting kind"));
        }
        let pow_bits = value["pow_bits"]
            .as_u64()
            .filter(|b| *b <= MAX_POW_BITS as u64)
            .ok_or_else(|| err(format!("pow_bits is 0 to {MAX_POW_BITS}")))?;
        let per_hour = value["reports_per_key_per_hour"]
            .as_u64()
            .filter(|n| (1..=MAX_REPORTS_PER_KEY_PER_HOUR as u64).contains(n))
            .ok_or_else(|| {
                err(format!(
                    "reports_per_key_per_hour is 1 to {MAX_REPORTS_PER_KEY_PER_HOUR}"
                ))
            })?;
        let note = value["note"]
            .as_str()
            .ok_or_else(|| err("note"))?
            .to_string();
        if note.len() > MAX_MODERATION_NOTE_BYTES {
            return Err(err(format!(
                "a note is at most {MAX_MODERATION_NOTE_BYTES} bytes"
            )));
        }
        canonical::check_free_text("the note", &note).map_err(err)?;
        Ok(IntakeSetting {
            pow_bits: pow_bits as u8,
            reports_per_key_per_hour: per_hour as u32,
            note,
            issued_at: value["issued_at"]
                .as_u64()
                .ok_or_else(|| err("issued_at"))?,
        })
    }

    pub fn sign(self, key: &SecretKey) -> Entry {
        let body = canonical::to_vec(&self.to_json()).expect("canonicalisable");
        let signature = key.sign(CONTEXT_INTAKE, &body);
        Entry::Intake {
            setting: self,
            operator: key.public(),
            signature,
        }
    }
}

/// A participant's statement about its poll witnesses, as logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantStatement {
    pub change: saksi_election::registry::PollWitnessChange,
    /// When the participant made it (Unix seconds): the same change made twice is two statements.
    pub issued_at: u64,
}

impl ParticipantStatement {
    pub fn to_json(&self) -> Value {
        json!({
            "kind": "poll_witnesses",
            "participant": self.change.participant,
            "enrol": self.change.enrol.iter().map(|(key, scope)| json!([
                key.to_base64(),
                scope.iter().map(Code::as_str).collect::<Vec<_>>(),
            ])).collect::<Vec<_>>(),
            "revoke": self.change.revoke.iter().map(PublicKey::to_base64).collect::<Vec<_>>(),
            "issued_at": self.issued_at,
        })
    }

    fn from_json(value: &Value) -> Result<ParticipantStatement, EntryError> {
        if value["kind"].as_str() != Some("poll_witnesses") {
            return Err(err("participant statement kind"));
        }
        let key = |v: &Value| {
            v.as_str()
                .and_then(|s| PublicKey::from_base64(s).ok())
                .ok_or_else(|| err("poll witness key"))
        };
        let participant = value["participant"]
            .as_str()
            .filter(|p| saksi_election::copy::valid_participant(p))
            .ok_or_else(|| err("participant"))?
            .to_string();
        let enrol = value["enrol"]
            .as_array()
            .ok_or_else(|| err("enrol"))?
            .iter()
            .map(|item| {
                let scope = item[1]
                    .as_array()
                    .ok_or_else(|| err("enrol scope"))?
                    .iter()
                    .map(|c| {
                        c.as_str()
                            .and_then(|s| Code::parse(s).ok())
                            .ok_or_else(|| err("enrol scope code"))
                    })
                    .collect::<Result<Vec<_>, EntryError>>()?;
                Ok((key(&item[0])?, scope))
            })
            .collect::<Result<Vec<_>, EntryError>>()?;
        let revoke = value["revoke"]
            .as_array()
            .ok_or_else(|| err("revoke"))?
            .iter()
            .map(key)
            .collect::<Result<Vec<_>, EntryError>>()?;
        Ok(ParticipantStatement {
            change: saksi_election::registry::PollWitnessChange {
                participant,
                enrol,
                revoke,
            },
            issued_at: value["issued_at"]
                .as_u64()
                .ok_or_else(|| err("issued_at"))?,
        })
    }

    /// Signs the statement with one of the participant's keys.
    pub fn sign(self, key: &SecretKey) -> Entry {
        let body = canonical::to_vec(&self.to_json()).expect("canonicalisable");
        let signature = key.sign(CONTEXT_PARTICIPANT, &body);
        Entry::Participant {
            statement: self,
            signer: key.public(),
            signature,
        }
    }
}

/// Which witnesses must cosign a checkpoint before it is published, and how many of them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WitnessPolicy {
    pub quorum: u32,
    /// (verifier key with type 0x04, submission URL).
    pub witnesses: Vec<(String, String)>,
    /// When the authority issued it (Unix seconds): two statements of the same policy differ, so
    /// the authority can set a policy again although each statement is logged once. Absent in
    /// statements made before it existed.
    pub issued_at: Option<u64>,
}

#[derive(Clone, Debug)]
pub enum Admin {
    Genesis(Genesis),
    Registry(RegistryPart),
    Witnesses(WitnessPolicy),
}

/// A form entry's canonical bytes from the form's canonical signed envelope
/// (`{"form":...,"signature":...}`, [`SignedForm::encode`]) and its verdict: the keys that follow
/// sort after "signature", so the envelope is spliced in rather than encoded again. The writer
/// encodes each form once, for its digest, and reuses the bytes here.
pub fn form_entry_bytes(envelope: Vec<u8>, verdict: &RecordedVerdict) -> Vec<u8> {
    let mut out = envelope;
    assert_eq!(out.pop(), Some(b'}'), "an envelope is a JSON object");
    out.extend_from_slice(b",\"type\":\"form\",\"verdict\":");
    verdict.write_canonical(&mut out);
    out.push(b'}');
    out
}

/// A copy entry's canonical bytes from the copy's canonical envelope ([`SignedCopy::encode`]) and
/// its verdict, spliced like [`form_entry_bytes`].
///
/// [`SignedCopy::encode`]: saksi_election::copy::SignedCopy::encode
pub fn copy_entry_bytes(envelope: Vec<u8>, verdict: &RecordedVerdict) -> Vec<u8> {
    let mut out = envelope;
    assert_eq!(out.pop(), Some(b'}'), "an envelope is a JSON object");
    out.extend_from_slice(b",\"type\":\"copy\",\"verdict\":");
    verdict.write_canonical(&mut out);
    out.push(b'}');
    out
}

#[derive(Clone, Debug)]
// Entries are decoded, applied and dropped in streams; the large variants (forms, transcriptions)
// are nearly all of them, so boxing would add an allocation per entry and save nothing.
#[allow(clippy::large_enum_variant)]
pub enum Entry {
    Admin {
        statement: Admin,
        signature: Signature,
    },
    /// `digest` is the form's [`SignedForm::digest`], computed once where it is cheapest.
    Form {
        form: SignedForm,
        verdict: RecordedVerdict,
        digest: [u8; 32],
    },
    Transcription {
        source: String,
        sheet: Sheet,
        operator: PublicKey,
        signature: Signature,
        verdict: RecordedVerdict,
    },
    /// A participant's statement about its poll witnesses.
    Participant {
        statement: ParticipantStatement,
        signer: PublicKey,
        signature: Signature,
    },
    /// A poll witness's copy of a TPS's result, and the rulebook's verdict on its figures.
    Copy {
        copy: saksi_election::copy::SignedCopy,
        verdict: RecordedVerdict,
        digest: [u8; 32],
    },
    /// A moderator's statement about a report.
    Moderation {
        statement: ModerationStatement,
        moderator: PublicKey,
        signature: Signature,
    },
    /// The operator's settings of the report intake (proof of work, per-key bound).
    Intake {
        setting: IntakeSetting,
        operator: PublicKey,
        signature: Signature,
    },
    /// A citizen's report as its reporter signed it (its text is stored beside the log, by digest).
    Report {
        report: saksi_election::report::SignedReport,
    },
    /// A recapitulation form (D.Hasil) as its committee signed it, and the verdict on its arithmetic.
    Recap {
        form: saksi_election::recap::SignedRecap,
        verdict: RecordedVerdict,
        digest: [u8; 32],
    },
}

impl Entry {
    /// The verdict a submission's entry carries (none for an authority statement).
    pub fn verdict(&self) -> Option<&RecordedVerdict> {
        match self {
            Entry::Admin { .. }
            | Entry::Participant { .. }
            | Entry::Report { .. }
            | Entry::Intake { .. }
            | Entry::Moderation { .. } => None,
            Entry::Form { verdict, .. }
            | Entry::Copy { verdict, .. }
            | Entry::Transcription { verdict, .. }
            | Entry::Recap { verdict, .. } => Some(verdict),
        }
    }
}

fn election_json(election: &Election) -> Value {
    serde_json::to_value(election).expect("an election serialises")
}

fn election_from_json(value: &Value) -> Result<Election, EntryError> {
    use saksi_election::contest::{Candidate, Contest, ContestKind};
    let text = |v: &Value, key: &str| {
        v[key]
            .as_str()
            .map(String::from)
            .ok_or_else(|| err(format!("election.{key}")))
    };
    let contests = value["contests"]
        .as_array()
        .ok_or_else(|| err("election.contests"))?
        .iter()
        .map(|c| {
            let kind = match c["kind"].as_str() {
                Some("presidential") => ContestKind::Presidential,
                other => return Err(err(format!("contest kind {other:?}"))),
            };
            let candidates = c["candidates"]
                .as_array()
                .ok_or_else(|| err("contest.candidates"))?
                .iter()
                .map(|p| {
                    Ok(Candidate {
                        number: text(p, "number")?,
                        name: text(p, "name")?,
                        sirekap_id: p["sirekap_id"].as_u64().map(|n| n as u32),
                    })
                })
                .collect::<Result<Vec<_>, EntryError>>()?;
            Ok(Contest {
                id: text(c, "id")?,
                kind,
                name: text(c, "name")?,
                candidates,
            })
        })
        .collect::<Result<Vec<_>, EntryError>>()?;
    Ok(Election {
        id: text(value, "id")?,
        name: text(value, "name")?,
        contests,
    })
}

impl Admin {
    /// The statement as JSON (what the authority signs, canonicalised).
    pub fn to_json(&self) -> Value {
        match self {
            Admin::Genesis(g) => json!({
                "kind": "genesis",
                "election": election_json(&g.election),
                "authority": g.authority.to_base64(),
                "operator": g.operator.to_base64(),
                "log_vkey": g.log_vkey,
                "rulebook": {"version": g.rulebook_version, "sha256": g.rulebook_sha256},
            }),
            Admin::Witnesses(policy) => {
                let mut value = json!({
                    "kind": "witnesses",
                    "quorum": policy.quorum,
                    "witnesses": policy.witnesses.iter().map(|(vkey, url)| json!({"vkey": vkey, "url": url})).collect::<Vec<_>>(),
                });
                if let Some(at) = policy.issued_at {
                    value["issued_at"] = json!(at);
                }
                value
            }
            Admin::Registry(part) => {
                let mut value = json!({
                "kind": "registry",
                "regions": part.regions.iter().map(|(c, n)| json!([c.as_str(), n])).collect::<Vec<_>>(),
                "tps": part.tps.iter().map(|t| json!([
                    t.code.as_str(),
                    t.kind.as_str(),
                    t.dpt.map(|d| d.l),
                    t.dpt.map(|d| d.p),
                    t.officers.iter().map(PublicKey::to_base64).collect::<Vec<_>>(),
                ])).collect::<Vec<_>>(),
                "correctors": part.correctors.iter().map(|(c, k)| json!([c.as_str(), k.to_base64()])).collect::<Vec<_>>(),
                });
                // Present only when used, so statements written before they existed still verify.
                if !part.enrollments.is_empty() {
                    value["enrollments"] = Value::Array(
                        part.enrollments
                            .iter()
                            .map(|(c, k)| json!([c.as_str(), k.to_base64()]))
                            .collect(),
                    );
                }
                if !part.participants.is_empty() {
                    value["participants"] = Value::Array(
                        part.participants
                            .iter()
                            .map(|(p, k)| json!([p, k.to_base64()]))
                            .collect(),
                    );
                }
                if let Some(recipient) = &part.oversight_recipient {
                    value["oversight_recipient"] = json!(recipient);
                }
                if !part.moderators.is_empty() {
                    value["moderators"] = Value::Array(
                        part.moderators
                            .iter()
                            .map(|k| Value::from(k.to_base64()))
                            .collect(),
                    );
                }
                if !part.recap_officers.is_empty() {
                    value["recap_officers"] = Value::Array(
                        part.recap_officers
                            .iter()
                            .map(|(c, k)| {
                                json!([
                                    c.map_or("nasional".to_string(), |c| c.to_string()),
                                    k.to_base64()
                                ])
                            })
                            .collect(),
                    );
                }
                value
            }
        }
    }

    fn from_json(value: &Value) -> Result<Admin, EntryError> {
        // Keys are not re-checked for enrolment here: the engine checked them before the authority
        // signed these entries, and replaying our own log must be fast. Independent verifiers re-check.
        let key = |v: &Value, what: &str| {
            v.as_str()
                .and_then(|s| PublicKey::from_base64(s).ok())
                .ok_or_else(|| err(format!("{what} is not a key")))
        };
        match value["kind"].as_str() {
            Some("genesis") => Ok(Admin::Genesis(Genesis {
                election: election_from_json(&value["election"])?,
                authority: key(&value["authority"], "authority")?,
                operator: key(&value["operator"], "operator")?,
                log_vkey: value["log_vkey"]
                    .as_str()
                    .ok_or_else(|| err("log_vkey"))?
                    .to_string(),
                rulebook_version: value["rulebook"]["version"]
                    .as_str()
                    .ok_or_else(|| err("rulebook.version"))?
                    .to_string(),
                rulebook_sha256: value["rulebook"]["sha256"]
                    .as_str()
                    .ok_or_else(|| err("rulebook.sha256"))?
                    .to_string(),
            })),
            Some("registry") => {
                let array = |k: &str| {
                    value[k]
                        .as_array()
                        .ok_or_else(|| err(format!("registry.{k}")))
                };
                let code = |v: &Value| {
                    v.as_str()
                        .and_then(|s| Code::parse(s).ok())
                        .ok_or_else(|| err("bad code"))
                };
                let regions = array("regions")?
                    .iter()
                    .map(|r| {
                        Ok((
                            code(&r[0])?,
                            r[1].as_str().ok_or_else(|| err("region name"))?.to_string(),
                        ))
                    })
                    .collect::<Result<Vec<_>, EntryError>>()?;
                let tps = array("tps")?
                    .iter()
                    .map(|t| {
                        let kind = t[1]
                            .as_str()
                            .and_then(TpsKind::parse)
                            .ok_or_else(|| err("tps kind"))?;
                        let dpt = match (t[2].as_u64(), t[3].as_u64()) {
                            (Some(l), Some(p)) => Some(Lp {
                                l: l as u32,
                                p: p as u32,
                            }),
                            _ => None,
                        };
                        let officers = t[4]
                            .as_array()
                            .ok_or_else(|| err("tps officers"))?
                            .iter()
                            .map(|k| key(k, "officer"))
                            .collect::<Result<Vec<_>, EntryError>>()?;
                        Ok(Tps {
                            code: code(&t[0])?,
                            kind,
                            dpt,
                            officers,
                        })
                    })
                    .collect::<Result<Vec<_>, EntryError>>()?;
                let correctors = array("correctors")?
                    .iter()
                    .map(|c| Ok((code(&c[0])?, key(&c[1], "corrector")?)))
                    .collect::<Result<Vec<_>, EntryError>>()?;
                let enrollments = match value.get("enrollments").and_then(Value::as_array) {
                    Some(items) => items
                        .iter()
                        .map(|c| Ok((code(&c[0])?, key(&c[1], "officer")?)))
                        .collect::<Result<Vec<_>, EntryError>>()?,
                    None => Vec::new(),
                };
                let recap_officers = match value.get("recap_officers").and_then(Value::as_array) {
                    Some(items) => items
                        .iter()
                        .map(|c| {
                            let region = match c[0].as_str() {
                                Some("nasional") => None,
                                _ => Some(code(&c[0])?),
                            };
                            Ok((region, key(&c[1], "recap officer")?))
                        })
                        .collect::<Result<Vec<_>, EntryError>>()?,
                    None => Vec::new(),
                };
                let participants = match value.get("participants").and_then(Value::as_array) {
                    Some(items) => items
                        .iter()
                        .map(|c| {
                            let participant = c[0]
                                .as_str()
                                .filter(|p| saksi_election::copy::valid_participant(p))
                                .ok_or_else(|| err("participant"))?;
                            Ok((participant.to_string(), key(&c[1], "participant")?))
                        })
                        .collect::<Result<Vec<_>, EntryError>>()?,
                    None => Vec::new(),
                };
                let moderators = match value.get("moderators").and_then(Value::as_array) {
                    Some(items) => items.iter().map(|k| key(k, "moderator")).collect::<Result<
                        Vec<_>,
                        EntryError,
                    >>(
                    )?,
                    None => Vec::new(),
                };
                let oversight_recipient = match value.get("oversight_recipient") {
                    None => None,
                    Some(v) => Some(
                        v.as_str()
                            .filter(|r| crate::contact::check_recipient(r).is_ok())
                            .ok_or_else(|| err("oversight_recipient"))?
                            .to_string(),
                    ),
                };
                Ok(Admin::Registry(RegistryPart {
                    regions,
                    tps,
                    correctors,
                    enrollments,
                    recap_officers,
                    participants,
                    moderators,
                    oversight_recipient,
                }))
            }
            Some("witnesses") => {
                let witnesses = value["witnesses"]
                    .as_array()
                    .ok_or_else(|| err("witnesses"))?
                    .iter()
                    .map(|w| {
                        let vkey = w["vkey"]
                            .as_str()
                            .ok_or_else(|| err("witness vkey"))?
                            .to_string();
                        saksi_tlog::note::Verifier::parse(&vkey)
                            .map_err(|e| err(format!("witness vkey: {e}")))?;
                        Ok((
                            vkey,
                            w["url"]
                                .as_str()
                                .ok_or_else(|| err("witness url"))?
                                .to_string(),
                        ))
                    })
                    .collect::<Result<Vec<_>, EntryError>>()?;
                let quorum = value["quorum"]
                    .as_u64()
                    .and_then(|q| u32::try_from(q).ok())
                    .ok_or_else(|| err("quorum"))?;
                if quorum as usize > witnesses.len() {
                    return Err(err("quorum larger than the number of witnesses"));
                }
                let issued_at = match value.get("issued_at") {
                    None => None,
                    Some(at) => Some(at.as_u64().ok_or_else(|| err("issued_at"))?),
                };
                Ok(Admin::Witnesses(WitnessPolicy {
                    quorum,
                    witnesses,
                    issued_at,
                }))
            }
            other => Err(err(format!("admin kind {other:?}"))),
        }
    }

    pub fn sign(self, authority: &SecretKey) -> Entry {
        let body =
            canonical::to_vec(&self.to_json()).expect("admin statements are canonicalisable");
        let signature = authority.sign(CONTEXT_ADMIN, &body);
        Entry::Admin {
            statement: self,
            signature,
        }
    }
}

/// A sheet as JSON: every fixed field by path (null when not reported) and the votes.
pub fn sheet_json(sheet: &Sheet) -> Value {
    let mut fields = Map::new();
    for field in Field::all() {
        fields.insert(
            field.path().to_string(),
            sheet.get(field).map_or(Value::Null, Value::from),
        );
    }
    let votes: Map<String, Value> = sheet
        .votes
        .iter()
        .map(|(p, v)| (p.clone(), v.map_or(Value::Null, Value::from)))
        .collect();
    json!({"tps": sheet.tps.as_str(), "fields": fields, "votes": votes})
}

fn sheet_from_json(value: &Value) -> Result<Sheet, EntryError> {
    let tps = value["tps"]
        .as_str()
        .and_then(|s| Code::parse(s).ok())
        .ok_or_else(|| err("sheet.tps"))?;
    let mut sheet = Sheet::empty(tps);
    let fields = value["fields"]
        .as_object()
        .ok_or_else(|| err("sheet.fields"))?;
    for field in Field::all() {
        sheet.set(field, fields.get(field.path()).and_then(Value::as_i64));
    }
    let votes = value["votes"]
        .as_object()
        .ok_or_else(|| err("sheet.votes"))?;
    sheet.votes = votes.iter().map(|(p, v)| (p.clone(), v.as_i64())).collect();
    Ok(sheet)
}

/// What an operator signs for a transcription.
pub fn transcription_payload(source: &str, sheet: &Sheet) -> Vec<u8> {
    canonical::to_vec(&json!({"source": source, "sheet": sheet_json(sheet)}))
        .expect("canonicalisable")
}

impl Entry {
    pub fn transcription(
        source: &str,
        sheet: Sheet,
        operator: &SecretKey,
        verdict: RecordedVerdict,
    ) -> Entry {
        let signature = operator.sign(
            CONTEXT_TRANSCRIPTION,
            &transcription_payload(source, &sheet),
        );
        Entry::Transcription {
            source: source.to_string(),
            sheet,
            operator: operator.public(),
            signature,
            verdict,
        }
    }

    /// Canonical JSON bytes: what goes into the log.
    pub fn encode(&self) -> Vec<u8> {
        // (A form entry's bytes: see [`form_entry_bytes`], which the writer calls directly.)
        let value = match self {
            Entry::Admin {
                statement,
                signature,
            } => {
                json!({"type": "admin", "statement": statement.to_json(), "signature": signature.to_base64()})
            }
            Entry::Form { form, verdict, .. } => return form_entry_bytes(form.encode(), verdict),
            // Same shape as a form's: the envelope, then "type" and "verdict" (they sort after it).
            Entry::Copy { copy, verdict, .. } => return copy_entry_bytes(copy.encode(), verdict),
            Entry::Moderation {
                statement,
                moderator,
                signature,
            } => json!({
                "type": "moderation",
                "statement": statement.to_json(),
                "moderator": moderator.to_base64(),
                "signature": signature.to_base64(),
            }),
            Entry::Intake {
                setting,
                operator,
                signature,
            } => json!({
                "type": "intake",
                "setting": setting.to_json(),
                "operator": operator.to_base64(),
                "signature": signature.to_base64(),
            }),
            Entry::Report { report } => json!({
                "type": "report",
                "report": report.report.to_json(),
                "signature": report.signature.to_base64(),
            }),
            Entry::Participant {
                statement,
                signer,
                signature,
            } => json!({
                "type": "participant",
                "statement": statement.to_json(),
                "signer": signer.to_base64(),
                "signature": signature.to_base64(),
            }),
            Entry::Recap { form, verdict, .. } => json!({
                "type": "recap",
                "form": form.form.to_json(),
                "signature": form.signature.to_base64(),
                "verdict": verdict.to_json(),
            }),
            Entry::Transcription {
                source,
                sheet,
                operator,
                signature,
                verdict,
            } => json!({
                "type": "transcription",
                "source": source,
                "sheet": sheet_json(sheet),
                "operator": operator.to_base64(),
                "signature": signature.to_base64(),
                "verdict": verdict.to_json(),
                "note": "transcribed from a publication by the operator; not signed by the TPS officer",
            }),
        };
        canonical::to_vec(&value).expect("entries are canonicalisable")
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        // Forms are nearly every entry: read them without building a JSON tree.
        if let Ok(wire) = serde_json::from_slice::<WireFormEntry>(bytes) {
            if wire.kind == "form" {
                let form = SignedForm::from_parts(wire.form.get().as_bytes(), &wire.signature)
                    .map_err(|e| err(e.to_string()))?;
                let verdict = RecordedVerdict {
                    accepted: wire.verdict.accepted,
                    rejected_by: wire.verdict.rejected_by,
                    warnings: wire.verdict.warnings,
                    rulebook: intern_rulebook(&wire.verdict.rulebook),
                };
                // The entry embeds the canonical envelope: hash its pieces rather than re-encoding.
                use sha2::Digest as _;
                let mut hasher = sha2::Sha256::new();
                hasher.update(b"{\"form\":");
                hasher.update(wire.form.get().as_bytes());
                hasher.update(b",\"signature\":\"");
                hasher.update(wire.signature.as_bytes());
                hasher.update(b"\"}");
                let digest: [u8; 32] = hasher.finalize().into();
                debug_assert_eq!(
                    digest,
                    form.digest(),
                    "log entries hold canonical envelopes"
                );
                return Ok(Entry::Form {
                    form,
                    verdict,
                    digest,
                });
            }
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))?;
        let signature = |v: &Value| {
            v.as_str()
                .and_then(|s| Signature::from_base64(s).ok())
                .ok_or_else(|| err("bad signature"))
        };
        match value["type"].as_str() {
            Some("admin") => Ok(Entry::Admin {
                statement: Admin::from_json(&value["statement"])?,
                signature: signature(&value["signature"])?,
            }),
            Some("form") => {
                let envelope = json!({"form": value["form"], "signature": value["signature"]});
                let form = SignedForm::decode(
                    &serde_json::to_vec(&envelope).map_err(|e| err(e.to_string()))?,
                )
                .map_err(|e| err(e.to_string()))?;
                let digest = form.digest();
                Ok(Entry::Form {
                    form,
                    verdict: RecordedVerdict::from_json(&value["verdict"])?,
                    digest,
                })
            }
            Some("moderation") => Ok(Entry::Moderation {
                statement: ModerationStatement::from_json(&value["statement"])?,
                moderator: value["moderator"]
                    .as_str()
                    .and_then(|s| PublicKey::from_base64(s).ok())
                    .ok_or_else(|| err("moderator"))?,
                signature: signature(&value["signature"])?,
            }),
            Some("intake") => Ok(Entry::Intake {
                setting: IntakeSetting::from_json(&value["setting"])?,
                operator: value["operator"]
                    .as_str()
                    .and_then(|s| PublicKey::from_base64(s).ok())
                    .ok_or_else(|| err("operator"))?,
                signature: signature(&value["signature"])?,
            }),
            Some("report") => Ok(Entry::Report {
                report: saksi_election::report::SignedReport {
                    report: saksi_election::report::Report::from_json(&value["report"])
                        .map_err(err)?,
                    signature: signature(&value["signature"])?,
                },
            }),
            Some("participant") => Ok(Entry::Participant {
                statement: ParticipantStatement::from_json(&value["statement"])?,
                signer: value["signer"]
                    .as_str()
                    .and_then(|s| PublicKey::from_base64(s).ok())
                    .ok_or_else(|| err("signer"))?,
                signature: signature(&value["signature"])?,
            }),
            Some("copy") => {
                let envelope = json!({"copy": value["copy"], "signature": value["signature"]});
                let copy = saksi_election::copy::SignedCopy::decode(
                    &serde_json::to_vec(&envelope).map_err(|e| err(e.to_string()))?,
                )
                .map_err(|e| err(e.to_string()))?;
                let digest = copy.digest();
                Ok(Entry::Copy {
                    copy,
                    verdict: RecordedVerdict::from_json(&value["verdict"])?,
                    digest,
                })
            }
            Some("recap") => {
                let envelope = json!({"form": value["form"], "signature": value["signature"]});
                let form = saksi_election::recap::SignedRecap::decode(
                    &serde_json::to_vec(&envelope).map_err(|e| err(e.to_string()))?,
                )
                .map_err(|e| err(e.to_string()))?;
                let digest = form.digest();
                Ok(Entry::Recap {
                    form,
                    verdict: RecordedVerdict::from_json(&value["verdict"])?,
                    digest,
                })
            }
            Some("transcription") => Ok(Entry::Transcription {
                source: value["source"]
                    .as_str()
                    .ok_or_else(|| err("source"))?
                    .to_string(),
                sheet: sheet_from_json(&value["sheet"])?,
                operator: value["operator"]
                    .as_str()
                    .and_then(|s| PublicKey::from_base64(s).ok())
                    .ok_or_else(|| err("operator"))?,
                signature: signature(&value["signature"])?,
                verdict: RecordedVerdict::from_json(&value["verdict"])?,
            }),
            other => Err(err(format!("unknown entry type {other:?}"))),
        }
    }

    /// Checks an admin entry's signature against the authority key.
    pub fn admin_signature_valid(&self, authority: &PublicKey) -> bool {
        match self {
            Entry::Admin {
                statement,
                signature,
            } => {
                let body = canonical::to_vec(&statement.to_json()).expect("canonicalisable");
                sign::verify(authority, CONTEXT_ADMIN, &body, signature)
            }
            _ => false,
        }
    }

    /// Checks a participant statement's signature against the key it names (whether that key is
    /// the participant's is the registry's question).
    pub fn participant_signature_valid(&self) -> bool {
        match self {
            Entry::Participant {
                statement,
                signer,
                signature,
            } => {
                let body = canonical::to_vec(&statement.to_json()).expect("canonicalisable");
                sign::verify(signer, CONTEXT_PARTICIPANT, &body, signature)
            }
            _ => false,
        }
    }

    /// Checks a moderation statement's signature against the key it names (whether that key is a
    /// moderator's is the registry's question).
    pub fn moderation_signature_valid(&self) -> bool {
        match self {
            Entry::Moderation {
                statement,
                moderator,
                signature,
            } => {
                let body = canonical::to_vec(&statement.to_json()).expect("canonicalisable");
                sign::verify(moderator, CONTEXT_MODERATION, &body, signature)
            }
            _ => false,
        }
    }

    pub fn intake_signature_valid(&self) -> bool {
        match self {
            Entry::Intake {
                setting,
                operator,
                signature,
            } => {
                let body = canonical::to_vec(&setting.to_json()).expect("canonicalisable");
                sign::verify(operator, CONTEXT_INTAKE, &body, signature)
            }
            _ => false,
        }
    }

    pub fn transcription_signature_valid(&self) -> bool {
        match self {
            Entry::Transcription {
                source,
                sheet,
                operator,
                signature,
                ..
            } => sign::verify(
                operator,
                CONTEXT_TRANSCRIPTION,
                &transcription_payload(source, sheet),
                signature,
            ),
            _ => false,
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFormEntry<'a> {
    #[serde(borrow)]
    form: &'a serde_json::value::RawValue,
    signature: String,
    #[serde(rename = "type")]
    kind: String,
    verdict: WireVerdict,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireVerdict {
    accepted: bool,
    rejected_by: Vec<String>,
    warnings: Vec<String>,
    rulebook: String,
}

/// Splits a registry into signed parts: regions (parents first), then TPS, then correctors.
pub fn registry_parts(registry: &saksi_election::Registry) -> Vec<RegistryPart> {
    let mut parts = Vec::new();
    let regions: Vec<(Code, String)> = {
        let mut all: Vec<(Code, String)> = registry
            .regions()
            .map(|(c, n)| (c, n.to_string()))
            .collect();
        // Parents first: by level, then code.
        all.sort_by_key(|(c, _)| (c.level(), *c));
        all
    };
    for chunk in regions.chunks(REGISTRY_REGIONS_PER_ENTRY) {
        parts.push(RegistryPart {
            regions: chunk.to_vec(),
            ..Default::default()
        });
    }
    for chunk in registry.all_tps().chunks(REGISTRY_TPS_PER_ENTRY) {
        parts.push(RegistryPart {
            tps: chunk.to_vec(),
            ..Default::default()
        });
    }
    let correctors: Vec<(Code, PublicKey)> = registry
        .correctors()
        .flat_map(|(code, keys)| keys.iter().map(move |k| (code, *k)))
        .collect();
    for chunk in correctors.chunks(REGISTRY_TPS_PER_ENTRY) {
        parts.push(RegistryPart {
            correctors: chunk.to_vec(),
            ..Default::default()
        });
    }
    let recap_officers: Vec<(Option<Code>, PublicKey)> = registry
        .recap_officers()
        .flat_map(|(code, keys)| keys.iter().map(move |k| (code, *k)))
        .collect();
    for chunk in recap_officers.chunks(REGISTRY_TPS_PER_ENTRY) {
        parts.push(RegistryPart {
            recap_officers: chunk.to_vec(),
            ..Default::default()
        });
    }
    let participants: Vec<(String, PublicKey)> = registry
        .participants()
        .flat_map(|(p, keys)| keys.iter().map(move |k| (p.to_string(), *k)))
        .collect();
    if !participants.is_empty() {
        parts.push(RegistryPart {
            participants,
            ..Default::default()
        });
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_verdict_fits_its_allowance() {
        // Every rule at once, in every rulebook version: what a form or recap entry can add.
        let codes: Vec<String> = saksi_election::rules::RULES
            .iter()
            .map(|r| r.code.to_string())
            .collect();
        let verdict = RecordedVerdict {
            accepted: false,
            rejected_by: codes.clone(),
            warnings: codes,
            rulebook: std::sync::Arc::from(saksi_election::rules::RULEBOOK_VERSION),
        };
        let envelope = b"{\"form\":{}}".to_vec();
        let entry = form_entry_bytes(envelope.clone(), &verdict);
        assert!(entry.len() - envelope.len() <= crate::engine::MAX_VERDICT_BYTES);
    }

    #[test]
    fn no_signature_context_is_a_prefix_of_another() {
        for (i, a) in ALL_CONTEXTS.iter().enumerate() {
            assert!(a.starts_with(b"saksi/sig/v1/") && a.ends_with(b"\n"));
            for (j, b) in ALL_CONTEXTS.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a), "{:?} starts {:?}", b, a);
                }
            }
        }
    }

    #[test]
    fn participant_and_copy_entries_round_trip() {
        use saksi_election::copy::WitnessCopy;
        use saksi_election::registry::PollWitnessChange;
        let participant_key = SecretKey::from_seed([1; 32]);
        let witness = SecretKey::from_seed([2; 32]);
        let statement = ParticipantStatement {
            change: PollWitnessChange {
                participant: "01".into(),
                enrol: vec![(witness.public(), vec![Code::parse("3201010001").unwrap()])],
                revoke: vec![SecretKey::from_seed([3; 32]).public()],
            },
            issued_at: 1_700_000_000,
        };
        let entry = statement.sign(&participant_key);
        assert!(entry.participant_signature_valid());
        let bytes = entry.encode();
        let back = Entry::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        assert!(back.participant_signature_valid());

        let tps = Code::parse("3201010001001").unwrap();
        let dpt = saksi_election::registry::Lp { l: 100, p: 110 };
        let form = saksi_gen::tally::honest_form(1, tps, TpsKind::Regular, dpt, witness.public());
        let copy = WitnessCopy {
            form,
            participant: "01".into(),
        }
        .sign(&witness);
        let verdict = RecordedVerdict {
            accepted: true,
            rejected_by: vec![],
            warnings: vec![],
            rulebook: current_rulebook(),
        };
        let digest = copy.digest();
        let entry = Entry::Copy {
            copy,
            verdict,
            digest,
        };
        let bytes = entry.encode();
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            canonical::to_vec(&value).unwrap(),
            bytes,
            "copy entries are JCS"
        );
        match Entry::decode(&bytes).unwrap() {
            Entry::Copy {
                copy, digest: d, ..
            } => {
                assert!(copy.signature_valid());
                assert_eq!(d, digest);
            }
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn verdict_writer_is_jcs() {
        for verdict in [
            RecordedVerdict {
                accepted: true,
                rejected_by: vec![],
                warnings: vec!["W_BLOC_VOTE".into()],
                rulebook: current_rulebook(),
            },
            RecordedVerdict {
                accepted: false,
                rejected_by: vec!["LP_SUM".into(), "VOTES_SUM".into()],
                warnings: vec![],
                rulebook: intern_rulebook("x"),
            },
        ] {
            let mut direct = Vec::new();
            verdict.write_canonical(&mut direct);
            assert_eq!(direct, canonical::to_vec(&verdict.to_json()).unwrap());
        }
    }
}
