//! C2SP tlog-proof: an offline receipt that an entry is in the log, as text:
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! [extra <base64>]
//! index <n>
//! <inclusion proof hashes, one base64 per line>
//!
//! <signed checkpoint, verbatim>
//! ```

use base64::Engine as _;

use crate::checkpoint::{self, SignedCheckpoint};
use crate::hash::Hash;
use crate::merkle::{self, MAX_PROOF_HASHES};
use crate::note::{NoteError, Verifier};

pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlogProofError {
    Malformed(String),
    Checkpoint(NoteError),
    Inclusion(merkle::ProofError),
    /// Fewer valid witness cosignatures than the policy asks.
    Witnesses {
        valid: usize,
        required: usize,
    },
}

impl std::fmt::Display for TlogProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlogProofError::Malformed(why) => write!(f, "malformed tlog-proof: {why}"),
            TlogProofError::Checkpoint(e) => write!(f, "checkpoint: {e}"),
            TlogProofError::Inclusion(e) => write!(f, "inclusion: {e}"),
            TlogProofError::Witnesses { valid, required } => {
                write!(
                    f,
                    "{valid} valid witness cosignatures, policy requires {required}"
                )
            }
        }
    }
}

impl std::error::Error for TlogProofError {}

impl TlogProof {
    pub fn encode(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!(
                "extra {}\n",
                base64::engine::general_purpose::STANDARD.encode(extra)
            ));
        }
        out.push_str(&format!("index {}\n", self.index));
        for hash in &self.proof {
            out.push_str(&hash.to_base64());
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    pub fn parse(text: &str) -> Result<TlogProof, TlogProofError> {
        let bad = |why: &str| TlogProofError::Malformed(why.to_string());
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad("first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| bad("no index line"))?;
        let mut extra = None;
        if let Some(data) = line.strip_prefix("extra ") {
            extra = Some(
                base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|_| bad("extra is not base64"))?,
            );
            line = lines.next().ok_or_else(|| bad("no index line"))?;
        }
        let index_text = line
            .strip_prefix("index ")
            .ok_or_else(|| bad("expected an index line"))?;
        let canonical = !index_text.is_empty()
            && index_text.bytes().all(|b| b.is_ascii_digit())
            && (index_text == "0" || !index_text.starts_with('0'));
        let index: u64 = if canonical {
            index_text.parse().map_err(|_| bad("index out of range"))?
        } else {
            return Err(bad("bad index"));
        };
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() >= MAX_PROOF_HASHES {
                return Err(bad("proof too long"));
            }
            let hash =
                Hash::from_base64(line).ok_or_else(|| bad("proof line is not a base64 hash"))?;
            proof.push(hash);
        }
        Ok(TlogProof {
            extra,
            index,
            proof,
            checkpoint: checkpoint.to_string(),
        })
    }

    /// Verifies the proof for an entry whose leaf hash is `leaf`: the checkpoint is signed by the log,
    /// at least `required_witnesses` of `witnesses` cosigned it, and the inclusion proof leads from the
    /// leaf to its root.
    pub fn verify(
        &self,
        leaf: &Hash,
        log_key: &Verifier,
        witnesses: &[Verifier],
        required_witnesses: usize,
    ) -> Result<SignedCheckpoint, TlogProofError> {
        let signed = checkpoint::open(self.checkpoint.as_bytes(), log_key, witnesses)
            .map_err(TlogProofError::Checkpoint)?;
        let valid = signed
            .note
            .verified
            .iter()
            .filter(|s| witnesses.iter().any(|w| w.name == s.name && w.id == s.id))
            .count();
        if valid < required_witnesses {
            return Err(TlogProofError::Witnesses {
                valid,
                required: required_witnesses,
            });
        }
        let cp = &signed.checkpoint;
        merkle::verify_inclusion(leaf, self.index, cp.size, &self.proof, &cp.root)
            .map_err(TlogProofError::Inclusion)?;
        Ok(signed)
    }
}
