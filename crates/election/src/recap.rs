//! Recapitulation forms (D.Hasil): at each level the committee writes, for each child region, the
//! figures it read from the level below, and the region's total. Kecamatan (PPK) lists its desa;
//! kabupaten/kota its kecamatan; provinsi its kabupaten/kota; nasional its provinces.
//!
//! ```json
//! {"form": {"contest": "ppwp", "election": "pemilu-2024", "format": "saksi/d-hasil/v1",
//!           "level": "kecamatan", "region": "110101",
//!           "rows": [{"child": "1101012001", "invalid": 3, "valid": 500, "voters": 503,
//!                     "votes": {"01": 200, "02": 250, "03": 50}}, ...],
//!           "signer": "<base64 key>",
//!           "total": {"invalid": .., "valid": .., "voters": .., "votes": {...}}},
//!  "signature": "<base64 Ed25519 over saksi/sig/v1/d-hasil\n || JCS(form)>"}
//! ```
//! `region` is the region's code, or "nasional" at the national level.

use std::fmt;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::canonical;
use crate::code::{Code, Level};
use crate::rules::codes;
use crate::sign::{self, PublicKey, SecretKey, Signature};

pub const FORMAT_D_HASIL: &str = "saksi/d-hasil/v1";
pub const CONTEXT_D_HASIL: &[u8] = b"saksi/sig/v1/d-hasil\n";
/// Rows per recap form: a kecamatan has at most a few hundred desa; the nation 39 provinces.
pub const MAX_ROWS: usize = 1024;
/// Largest encoded recap form.
pub const MAX_RECAP_BYTES: usize = 60 * 1024;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum RecapLevel {
    Kecamatan,
    KabKota,
    Provinsi,
    Nasional,
}

impl RecapLevel {
    pub const ALL: [RecapLevel; 4] = [
        RecapLevel::Kecamatan,
        RecapLevel::KabKota,
        RecapLevel::Provinsi,
        RecapLevel::Nasional,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecapLevel::Kecamatan => "kecamatan",
            RecapLevel::KabKota => "kabkota",
            RecapLevel::Provinsi => "provinsi",
            RecapLevel::Nasional => "nasional",
        }
    }

    pub fn parse(text: &str) -> Option<RecapLevel> {
        RecapLevel::ALL.into_iter().find(|l| l.as_str() == text)
    }

    /// The region level this recap covers (None for the nation).
    pub fn region_level(self) -> Option<Level> {
        match self {
            RecapLevel::Kecamatan => Some(Level::Kecamatan),
            RecapLevel::KabKota => Some(Level::KabKota),
            RecapLevel::Provinsi => Some(Level::Provinsi),
            RecapLevel::Nasional => None,
        }
    }

    /// The level of the rows' children.
    pub fn child_level(self) -> Level {
        match self {
            RecapLevel::Kecamatan => Level::Desa,
            RecapLevel::KabKota => Level::Kecamatan,
            RecapLevel::Provinsi => Level::KabKota,
            RecapLevel::Nasional => Level::Provinsi,
        }
    }

    pub fn of_region(region: Option<Code>) -> Option<RecapLevel> {
        match region.map(Code::level) {
            None => Some(RecapLevel::Nasional),
            Some(Level::Kecamatan) => Some(RecapLevel::Kecamatan),
            Some(Level::KabKota) => Some(RecapLevel::KabKota),
            Some(Level::Provinsi) => Some(RecapLevel::Provinsi),
            _ => None,
        }
    }
}

/// Figures for one region: votes per position (in order), valid, invalid, voters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    pub votes: Vec<(String, i64)>,
    pub valid: i64,
    pub invalid: i64,
    pub voters: i64,
}

impl Figures {
    fn to_json(&self) -> Value {
        let votes: serde_json::Map<String, Value> = self
            .votes
            .iter()
            .map(|(p, v)| (p.clone(), Value::from(*v)))
            .collect();
        json!({"votes": votes, "valid": self.valid, "invalid": self.invalid, "voters": self.voters})
    }

    fn from_json(value: &Value) -> Result<Figures, String> {
        let int = |key: &str| -> Result<i64, String> {
            let v = value[key]
                .as_i64()
                .ok_or_else(|| format!("{key} must be an integer"))?;
            if !canonical::is_safe_integer(v) {
                return Err(format!("{key} out of range"));
            }
            Ok(v)
        };
        let object = value.as_object().ok_or("figures must be an object")?;
        if object
            .keys()
            .any(|k| !matches!(k.as_str(), "votes" | "valid" | "invalid" | "voters"))
        {
            return Err("unknown field in figures".into());
        }
        let mut votes: Vec<(String, i64)> = value["votes"]
            .as_object()
            .ok_or("votes must be an object")?
            .iter()
            .map(|(p, v)| {
                Ok((
                    p.clone(),
                    v.as_i64()
                        .filter(|v| canonical::is_safe_integer(*v))
                        .ok_or("a vote count must be an integer")?,
                ))
            })
            .collect::<Result<_, String>>()?;
        votes.sort();
        Ok(Figures {
            votes,
            valid: int("valid")?,
            invalid: int("invalid")?,
            voters: int("voters")?,
        })
    }

    pub fn add(&mut self, other: &Figures) {
        for (position, v) in &other.votes {
            match self.votes.iter_mut().find(|(p, _)| p == position) {
                Some((_, total)) => *total += v,
                None => {
                    self.votes.push((position.clone(), *v));
                    self.votes.sort();
                }
            }
        }
        self.valid += other.valid;
        self.invalid += other.invalid;
        self.voters += other.voters;
    }

    pub fn vote(&self, position: &str) -> i64 {
        self.votes
            .iter()
            .find(|(p, _)| p == position)
            .map_or(0, |(_, v)| *v)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecapRow {
    pub child: Code,
    pub figures: Figures,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecapForm {
    pub election: String,
    pub contest: String,
    pub level: RecapLevel,
    /// None at the national level.
    pub region: Option<Code>,
    pub rows: Vec<RecapRow>,
    pub total: Figures,
    pub signer: PublicKey,
    pub correction: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRecap {
    pub form: RecapForm,
    pub signature: Signature,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecapDecodeError(pub String);

impl fmt::Display for RecapDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed recap form: {}", self.0)
    }
}

impl std::error::Error for RecapDecodeError {}

impl RecapForm {
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "format": FORMAT_D_HASIL,
            "election": self.election,
            "contest": self.contest,
            "level": self.level.as_str(),
            "region": self.region.map_or("nasional".to_string(), |c| c.to_string()),
            "rows": self.rows.iter().map(|r| {
                let mut row = r.figures.to_json();
                row["child"] = Value::String(r.child.to_string());
                row
            }).collect::<Vec<_>>(),
            "total": self.total.to_json(),
            "signer": self.signer.to_base64(),
        });
        if let Some(reason) = &self.correction {
            value["correction"] = json!({"reason": reason});
        }
        value
    }

    pub fn canonical_json(&self) -> Vec<u8> {
        canonical::to_vec(&self.to_json()).expect("recap forms are canonicalisable")
    }

    pub fn sign(self, key: &SecretKey) -> SignedRecap {
        let signature = key.sign(CONTEXT_D_HASIL, &self.canonical_json());
        SignedRecap {
            form: self,
            signature,
        }
    }

    fn from_json(value: &Value) -> Result<RecapForm, RecapDecodeError> {
        let bad = |m: &str| RecapDecodeError(m.to_string());
        let object = value
            .as_object()
            .ok_or_else(|| bad("form must be an object"))?;
        let allowed = [
            "format",
            "election",
            "contest",
            "level",
            "region",
            "rows",
            "total",
            "signer",
            "correction",
        ];
        if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(RecapDecodeError(format!("unknown field {unknown}")));
        }
        if value["format"] != FORMAT_D_HASIL {
            return Err(bad("format must be saksi/d-hasil/v1"));
        }
        let text = |key: &str| {
            value[key]
                .as_str()
                .map(String::from)
                .ok_or_else(|| RecapDecodeError(format!("{key} must be a string")))
        };
        let level = RecapLevel::parse(&text("level")?).ok_or_else(|| bad("unknown level"))?;
        let region_text = text("region")?;
        let region = if region_text == "nasional" {
            None
        } else {
            Some(Code::parse(&region_text).map_err(|e| RecapDecodeError(e.to_string()))?)
        };
        if RecapLevel::of_region(region) != Some(level) {
            return Err(bad("region does not match the level"));
        }
        let rows_json = value["rows"]
            .as_array()
            .ok_or_else(|| bad("rows must be an array"))?;
        if rows_json.len() > MAX_ROWS {
            return Err(bad("too many rows"));
        }
        let rows = rows_json
            .iter()
            .map(|row| {
                let mut figures = row.clone();
                let child = figures
                    .as_object_mut()
                    .and_then(|o| o.remove("child"))
                    .and_then(|c| c.as_str().map(String::from))
                    .ok_or_else(|| bad("a row needs a child"))?;
                let child = Code::parse(&child).map_err(|e| RecapDecodeError(e.to_string()))?;
                Ok(RecapRow {
                    child,
                    figures: Figures::from_json(&figures).map_err(RecapDecodeError)?,
                })
            })
            .collect::<Result<Vec<_>, RecapDecodeError>>()?;
        let signer = PublicKey::from_base64(&text("signer")?)
            .map_err(|e| RecapDecodeError(format!("signer: {e}")))?;
        let correction = match value.get("correction") {
            None => None,
            Some(c) => {
                let reason = c["reason"]
                    .as_str()
                    .ok_or_else(|| bad("correction.reason"))?
                    .to_string();
                if reason.trim().is_empty() || reason.len() > crate::form::MAX_REASON_BYTES {
                    return Err(bad("bad correction reason"));
                }
                canonical::check_free_text("the correction reason", &reason)
                    .map_err(RecapDecodeError)?;
                Some(reason)
            }
        };
        Ok(RecapForm {
            election: text("election")?,
            contest: text("contest")?,
            level,
            region,
            rows,
            total: Figures::from_json(&value["total"]).map_err(RecapDecodeError)?,
            signer,
            correction,
        })
    }
}

impl SignedRecap {
    pub fn decode(bytes: &[u8]) -> Result<SignedRecap, RecapDecodeError> {
        if bytes.len() > MAX_RECAP_BYTES {
            return Err(RecapDecodeError("too large".into()));
        }
        // Strict: a repeated member is refused (a lenient parser keeps the last, another reader the
        // first, and the two would disagree about what was signed).
        let value: Value = canonical::parse_strict(bytes).map_err(RecapDecodeError)?;
        let object = value
            .as_object()
            .ok_or_else(|| RecapDecodeError("not an object".into()))?;
        if object.keys().any(|k| k != "form" && k != "signature") {
            return Err(RecapDecodeError("unknown field in the envelope".into()));
        }
        let form = RecapForm::from_json(&value["form"])?;
        let signature = value["signature"]
            .as_str()
            .and_then(|s| Signature::from_base64(s).ok())
            .ok_or_else(|| RecapDecodeError("signature".into()))?;
        Ok(SignedRecap { form, signature })
    }

    pub fn encode(&self) -> Vec<u8> {
        canonical::to_vec(
            &json!({"form": self.form.to_json(), "signature": self.signature.to_base64()}),
        )
        .expect("canonicalisable")
    }

    pub fn signature_valid(&self) -> bool {
        sign::verify(
            &self.form.signer,
            CONTEXT_D_HASIL,
            &self.form.canonical_json(),
            &self.signature,
        )
    }

    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }
}

/// One broken arithmetic rule on a recap form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecapFinding {
    pub code: &'static str,
    pub detail: String,
}

/// The recap form's own arithmetic and shape: counts in range; each row's and the total's votes add up
/// to valid; the total is the sum of the rows; the rows are exactly the region's children.
pub fn check_recap(form: &RecapForm, children: &[Code], positions: &[String]) -> Vec<RecapFinding> {
    let mut out = Vec::new();
    let check_figures = |what: &str, f: &Figures, out: &mut Vec<RecapFinding>| {
        let mut got: Vec<&str> = f.votes.iter().map(|(p, _)| p.as_str()).collect();
        got.sort();
        let mut want: Vec<&str> = positions.iter().map(String::as_str).collect();
        want.sort();
        if got != want {
            out.push(RecapFinding {
                code: codes::CONTEST_MISMATCH,
                detail: format!("{what}: positions {got:?}, expected {want:?}"),
            });
        }
        let counts = f
            .votes
            .iter()
            .map(|(_, v)| *v)
            .chain([f.valid, f.invalid, f.voters]);
        if counts
            .clone()
            .any(|v| !(0..=crate::rules::MAX_COUNT * 1000).contains(&v))
        {
            out.push(RecapFinding {
                code: codes::COUNT_RANGE,
                detail: format!("{what}: a count is negative or too large"),
            });
        }
        let sum: i64 = f.votes.iter().map(|(_, v)| v).sum();
        if sum != f.valid {
            out.push(RecapFinding {
                code: codes::RECAP_VOTES_SUM,
                detail: format!("{what}: votes add up to {sum}, valid = {}", f.valid),
            });
        }
    };
    for row in &form.rows {
        check_figures(&format!("row {}", row.child), &row.figures, &mut out);
    }
    check_figures("total", &form.total, &mut out);
    let mut sum = Figures::default();
    for row in &form.rows {
        sum.add(&row.figures);
    }
    if sum != form.total {
        out.push(RecapFinding {
            code: codes::RECAP_TOTAL_SUM,
            detail: format!("total {:?} but the rows add up to {:?}", form.total, sum),
        });
    }
    let mut listed: Vec<Code> = form.rows.iter().map(|r| r.child).collect();
    listed.sort();
    let before = listed.len();
    listed.dedup();
    if listed.len() != before || listed != children {
        let missing: Vec<String> = children
            .iter()
            .filter(|c| !listed.contains(c))
            .map(|c| c.to_string())
            .collect();
        let extra: Vec<String> = listed
            .iter()
            .filter(|c| !children.contains(c))
            .map(|c| c.to_string())
            .collect();
        out.push(RecapFinding {
            code: codes::RECAP_CHILDREN,
            detail: format!("missing {missing:?}, extra or repeated {extra:?}"),
        });
    }
    out
}
