//! Checking a stream of signed forms: decode, verify signatures in batches on every core, apply the
//! rulebook, then the two rules that need the stream's history (`DUPLICATE`, `TPS_ALREADY_REPORTED`).
//!
//! A correction (signed by a commission) may follow an accepted form; a second original may not.
//! History holds only authenticated forms (valid signature from an officer enrolled for the TPS), so a
//! forger cannot block a TPS by sending something first. A TPS's slot is taken by its first *accepted*
//! form: an officer whose form was rejected for its arithmetic may send a corrected one.

use std::collections::HashMap;

use crate::code::Code;
use crate::contest::Election;
use crate::form::SignedForm;
use crate::registry::Registry;
use crate::rules::codes;
use crate::rules::{check_signed_form, Finding, Verdict};

/// What became of one input line.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Not a well-formed signed form: nothing about it can be attributed to anyone.
    Malformed(String),
    Checked {
        form: Box<SignedForm>,
        verdict: Verdict,
    },
}

pub struct Checker<'a> {
    registry: &'a Registry,
    election: &'a Election,
    /// Digest of every authenticated form -> the line it first came on.
    seen: HashMap<[u8; 32], usize>,
    /// TPS -> line of its accepted form.
    accepted_by_tps: HashMap<Code, usize>,
}

impl<'a> Checker<'a> {
    pub fn new(registry: &'a Registry, election: &'a Election) -> Checker<'a> {
        Checker {
            registry,
            election,
            seen: HashMap::new(),
            accepted_by_tps: HashMap::new(),
        }
    }

    /// Checks `lines` (line number, bytes) in order. The stateless work runs on every core; history is
    /// applied afterwards in line order, so the result does not depend on the number of cores.
    pub fn check(&mut self, lines: &[(usize, &[u8])]) -> Vec<Outcome> {
        let (registry, election) = (self.registry, self.election);
        let outcomes: Vec<Outcome> =
            crate::parallel::on_every_core(lines, |part| check_stateless(part, registry, election));
        lines
            .iter()
            .zip(outcomes)
            .map(|(&(line, _), outcome)| self.apply_history(line, outcome))
            .collect()
    }

    fn apply_history(&mut self, line: usize, outcome: Outcome) -> Outcome {
        let Outcome::Checked { form, verdict } = outcome else {
            return outcome;
        };
        let authenticated = !verdict.findings.iter().any(|f| {
            matches!(
                f.code,
                codes::SIGNATURE_INVALID | codes::SIGNER_NOT_ENROLLED
            )
        });
        if !authenticated {
            return Outcome::Checked { form, verdict };
        }
        let digest = form.digest();
        if let Some(first) = self.seen.get(&digest) {
            let verdict = history_verdict(codes::DUPLICATE, format!("first copy: line {first}"));
            return Outcome::Checked { form, verdict };
        }
        self.seen.insert(digest, line);
        let first = self.accepted_by_tps.get(&form.form.tps).copied();
        let verdict = crate::rules::check_history(verdict, &form.form, first.is_some(), || {
            format!("accepted form: line {}", first.unwrap_or_default())
        });
        if verdict.accepted() && form.form.correction.is_none() {
            self.accepted_by_tps.insert(form.form.tps, line);
        }
        Outcome::Checked { form, verdict }
    }
}

fn history_verdict(code: &'static str, detail: String) -> Verdict {
    Verdict {
        findings: vec![Finding {
            code,
            fields: vec!["form".into()],
            detail,
        }],
    }
}

fn check_stateless(
    lines: &[(usize, &[u8])],
    registry: &Registry,
    election: &Election,
) -> Vec<Outcome> {
    let decoded: Vec<Result<SignedForm, String>> = lines
        .iter()
        .map(|(_, bytes)| SignedForm::decode(bytes).map_err(|e| e.to_string()))
        .collect();
    let forms: Vec<Option<&SignedForm>> = decoded.iter().map(|d| d.as_ref().ok()).collect();
    // Offline, each key signs about one form: decompressing it beforehand would save nothing.
    let signature_ok = SignedForm::verify_signatures(&forms, &Default::default());
    decoded
        .into_iter()
        .zip(signature_ok)
        .map(|(decoded, ok)| match decoded {
            Err(message) => Outcome::Malformed(message),
            Ok(form) => {
                let verdict = check_signed_form(&form.form, ok, registry, election);
                Outcome::Checked {
                    form: Box::new(form),
                    verdict,
                }
            }
        })
        .collect()
}
