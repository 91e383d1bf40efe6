//! The rulebook: every check a tally sheet must pass, as versioned data.
//!
//! Each rule has a stable code (never reused for another meaning), the fields it reads, a severity, and a
//! message in Indonesian and English. A `Reject` rule that fails means the form is not counted; a `Warn`
//! rule is a soft signal published beside the form and never changes a verdict. Changing what any rule
//! accepts means a new [`RULEBOOK_VERSION`]; a published result names the version (and [`digest`]) it
//! passed.
//!
//! A rule applies only when every field it reads is reported (see `sheet.rs`). Caps depend on the kind of
//! TPS: only a regular TPS is bound by the 300-voter DPT cap and the 306 lock on every count; special and
//! overseas units are capped by their own registered DPT plus the 2% reserve, and noken regions are never
//! warned about bloc votes.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::code::is_noken;
use crate::contest::Election;
use crate::form::CHasil;
use crate::registry::{Lp, Registry, TpsKind};
use crate::sheet::{Col, Field, Row, Sheet, COLS, ROWS};

/// The rulebook new logs are made with (see [`Rulebook`]).
pub const RULEBOOK_VERSION: &str = "saksi-rulebook/2024.2";

/// A version of the rulebook. A log names its version in the genesis, and every verdict in it is made
/// (and re-derived by verifiers) under that version, so a log made under 2024.1 keeps its meaning
/// after 2024.2 exists. A later version only adds rules: a code never changes meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rulebook(u8);

impl Rulebook {
    /// The first rulebook: 21 reject rules and 2 warnings for TPS forms.
    pub const V2024_1: Rulebook = Rulebook(1);
    /// Adds VOTES_CAP (the candidates' votes together within the TPS's cap, even when `valid` is not
    /// reported) and lists the recapitulation forms' own rules (RECAP_*), which 2024.1 applied
    /// without listing them.
    pub const V2024_2: Rulebook = Rulebook(2);
    pub const CURRENT: Rulebook = Rulebook::V2024_2;
    pub const ALL: [Rulebook; 2] = [Rulebook::V2024_1, Rulebook::V2024_2];

    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "saksi-rulebook/2024.1",
            _ => RULEBOOK_VERSION,
        }
    }

    pub fn named(name: &str) -> Option<Rulebook> {
        Rulebook::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The rules of this version, in reporting order.
    pub fn rules(self) -> impl Iterator<Item = &'static Rule> {
        RULES.iter().filter(move |rule| rule.since <= self)
    }

    /// This version as canonical JSON: what gets published (and logged) as the rules in force.
    pub fn json(self) -> Vec<u8> {
        let rules: Vec<&Rule> = self.rules().collect();
        let value = serde_json::json!({
            "version": self.name(),
            "limits": {
                "regular_dpt_cap": REGULAR_DPT_CAP,
                "reserve_percent": RESERVE_PERCENT,
                "max_count": MAX_COUNT,
            },
            "rules": rules,
        });
        crate::canonical::to_vec(&value)
            .expect("invariant: the rulebook has only integers and strings")
    }

    /// SHA-256 of [`Rulebook::json`], hex: names the exact rules a result passed.
    pub fn digest(self) -> String {
        crate::form::hex(&Sha256::digest(self.json()))
    }
}

/// Most registered voters at a regular TPS (PKPU 7/2022).
pub const REGULAR_DPT_CAP: i64 = 300;
/// Reserve ballots, percent of DPT, rounded up (UU 7/2017 art. 344(2)).
pub const RESERVE_PERCENT: i64 = 2;
/// No count on any form may exceed this: far above the largest overseas postal unit, far below overflow.
pub const MAX_COUNT: i64 = 1_000_000;

/// Ballots a TPS with `dpt` registered voters receives: DPT plus 2% rounded up (300 -> 306).
pub const fn ballot_cap(dpt: i64) -> i64 {
    dpt + (dpt * RESERVE_PERCENT + 99) / 100
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Reject,
    Warn,
}

#[derive(Debug, Serialize)]
pub struct Rule {
    /// The first rulebook version that has it (not part of the published JSON, whose `version` says it).
    #[serde(skip)]
    pub since: Rulebook,
    pub code: &'static str,
    pub severity: Severity,
    /// The fields it reads, as paths of the signed form.
    pub fields: &'static str,
    pub id: &'static str,
    pub en: &'static str,
}

/// Every rule's code, as a constant: code that names a rule uses these, so a misspelt code does not
/// compile, and `codes::ALL` is checked against [`RULES`] (each code has exactly one rule).
pub mod codes {
    macro_rules! codes {
        ($($name:ident),* $(,)?) => {
            $(pub const $name: &str = stringify!($name);)*
            /// Every code, in the order of the rulebook.
            pub const ALL: &[&str] = &[$($name),*];
        };
    }
    codes!(
        DUPLICATE,
        TPS_ALREADY_REPORTED,
        TPS_UNKNOWN,
        CONTEST_MISMATCH,
        SIGNATURE_INVALID,
        SIGNER_NOT_ENROLLED,
        COUNT_RANGE,
        LP_SUM,
        REGISTERED_SUM,
        VOTED_SUM,
        VOTED_WITHIN_REGISTERED,
        BALLOTS_BALANCE,
        BALLOTS_USED_VOTERS,
        VOTERS_VOTES,
        VOTES_TOTAL,
        VOTES_SUM,
        DISABILITY_WITHIN,
        DPT_CAP,
        DPT_MISMATCH,
        BALLOTS_CAP,
        COUNT_CAP,
        VOTES_CAP,
        RECAP_VOTES_SUM,
        RECAP_TOTAL_SUM,
        RECAP_CHILDREN,
        W_TURNOUT_HIGH,
        W_BLOC_VOTE,
    );
}

macro_rules! rule {
    ($code:expr, $severity:ident, $fields:literal, $id:literal, $en:literal) => {
        rule!(since V2024_1, $code, $severity, $fields, $id, $en)
    };
    (since $since:ident, $code:expr, $severity:ident, $fields:literal, $id:literal, $en:literal) => {
        Rule {
            since: Rulebook::$since,
            code: $code,
            severity: Severity::$severity,
            fields: $fields,
            id: $id,
            en: $en,
        }
    };
}

/// The rules, in the order they are reported. `DUPLICATE` and `TPS_ALREADY_REPORTED` concern a form
/// against the forms before it, so whoever holds that history (a file check, the server) applies them.
pub static RULES: &[Rule] = &[
    rule!(codes::DUPLICATE, Reject, "the whole signed form",
        "formulir yang sama persis sudah pernah diterima; salinan kedua tidak dihitung",
        "this exact signed form was already received; the second copy is not counted"),
    rule!(codes::TPS_ALREADY_REPORTED, Reject, "tps",
        "TPS ini sudah memiliki formulir lain; perubahan harus diajukan sebagai koreksi",
        "this TPS already has a different form; a change must come as a correction"),
    rule!(codes::TPS_UNKNOWN, Reject, "tps",
        "TPS tidak terdaftar dalam registri wilayah",
        "the TPS is not in the region registry"),
    rule!(codes::CONTEST_MISMATCH, Reject, "election, contest, votes",
        "pemilu, jenis pemilihan, atau nomor urut peserta tidak sesuai dengan definisi pemilu",
        "the election, contest or ballot positions do not match the election definition"),
    rule!(codes::SIGNATURE_INVALID, Reject, "signature, signer",
        "tanda tangan digital formulir tidak sah",
        "the form's digital signature is not valid"),
    rule!(codes::SIGNER_NOT_ENROLLED, Reject, "signer",
        "penanda tangan bukan petugas yang terdaftar untuk TPS ini",
        "the signer is not an officer enrolled for this TPS"),
    rule!(codes::COUNT_RANGE, Reject, "every count",
        "angka harus bilangan bulat tidak negatif dan tidak melebihi 1.000.000",
        "a count must be a non-negative integer no larger than 1,000,000"),
    rule!(codes::LP_SUM, Reject, "every L/P/J row",
        "jumlah laki-laki (L) ditambah perempuan (P) harus sama dengan jumlah (J)",
        "male (L) plus female (P) must equal the total (J)"),
    rule!(codes::REGISTERED_SUM, Reject, "registered.*",
        "A.4 harus sama dengan A.1 + A.2 + A.3",
        "A.4 must equal A.1 + A.2 + A.3"),
    rule!(codes::VOTED_SUM, Reject, "voted.*",
        "B.4 (jumlah pengguna hak pilih) harus sama dengan B.1 + B.2 + B.3",
        "B.4 (voters) must equal B.1 + B.2 + B.3"),
    rule!(codes::VOTED_WITHIN_REGISTERED, Reject, "voted.*.j, registered.*.j",
        "pengguna hak pilih tidak boleh melebihi pemilih terdaftar pada baris yang sama",
        "voters cannot exceed registered voters on the same row"),
    rule!(codes::BALLOTS_BALANCE, Reject, "ballots.*",
        "surat suara diterima harus sama dengan digunakan + rusak/keliru coblos + tidak digunakan",
        "ballots received must equal used + damaged + unused"),
    rule!(codes::BALLOTS_USED_VOTERS, Reject, "ballots.used, voted.total.j",
        "surat suara yang digunakan harus sama dengan jumlah pengguna hak pilih (B.4)",
        "ballots used must equal the number of voters (B.4)"),
    rule!(codes::VOTERS_VOTES, Reject, "voted.total.j, total",
        "jumlah pengguna hak pilih (B.4) harus sama dengan jumlah suara sah dan tidak sah",
        "the number of voters (B.4) must equal valid plus invalid votes"),
    rule!(codes::VOTES_TOTAL, Reject, "valid, invalid, total",
        "jumlah suara harus sama dengan suara sah + suara tidak sah",
        "total votes must equal valid + invalid votes"),
    rule!(codes::VOTES_SUM, Reject, "votes.*, valid",
        "jumlah perolehan suara seluruh peserta harus sama dengan suara sah",
        "the votes of all candidates must add up to the valid votes"),
    rule!(codes::DISABILITY_WITHIN, Reject, "disability.*, voted.total.j",
        "pemilih disabilitas yang memilih tidak boleh melebihi pemilih disabilitas terdaftar maupun B.4",
        "voters with disabilities who voted cannot exceed those registered, nor B.4"),
    rule!(codes::DPT_CAP, Reject, "registered.dpt.j",
        "DPT di TPS reguler paling banyak 300 pemilih",
        "a regular TPS has at most 300 registered voters (DPT)"),
    rule!(codes::DPT_MISMATCH, Reject, "registered.dpt.*",
        "DPT pada formulir tidak sama dengan DPT TPS ini dalam registri",
        "the DPT on the form differs from this TPS's DPT in the registry"),
    rule!(codes::BALLOTS_CAP, Reject, "ballots.received, registered.dpt.j",
        "surat suara diterima tidak boleh melebihi DPT ditambah cadangan 2% (dibulatkan ke atas)",
        "ballots received cannot exceed the DPT plus the 2% reserve, rounded up"),
    rule!(codes::COUNT_CAP, Reject, "voted.*, ballots.*, votes.*, valid, invalid, total",
        "tidak ada angka pemilih, surat suara, atau suara yang boleh melebihi batas TPS (306 di TPS reguler)",
        "no count of voters, ballots or votes may exceed the TPS's cap (306 at a regular TPS)"),
    rule!(since V2024_2, codes::VOTES_CAP, Reject, "votes.*",
        "jumlah suara seluruh peserta melebihi batas TPS (306 di TPS reguler), juga bila suara sah tidak dilaporkan",
        "the votes of all candidates together exceed the TPS's cap (306 at a regular TPS), even when valid votes are not reported"),
    rule!(since V2024_2, codes::RECAP_VOTES_SUM, Reject, "rows.*.votes.*, rows.*.valid, total.votes.*, total.valid",
        "pada formulir rekapitulasi, jumlah suara seluruh peserta di setiap baris dan di total harus sama dengan suara sah",
        "on a recapitulation form, the votes of all candidates in each row and in the total must add up to the valid votes"),
    rule!(since V2024_2, codes::RECAP_TOTAL_SUM, Reject, "rows.*, total",
        "total formulir rekapitulasi harus sama dengan jumlah seluruh barisnya",
        "a recapitulation form's total must equal the sum of its rows"),
    rule!(since V2024_2, codes::RECAP_CHILDREN, Reject, "rows.*.child",
        "baris formulir rekapitulasi harus tepat wilayah di bawahnya dalam registri, masing-masing sekali",
        "a recapitulation form's rows must be exactly the regions below it in the registry, each once"),
    rule!(codes::W_TURNOUT_HIGH, Warn, "voted.dpt.j, registered.dpt.j",
        "partisipasi pemilih DPT di atas 98% (tidak berlaku di wilayah noken)",
        "turnout of DPT voters above 98% (not applied in noken regions)"),
    rule!(codes::W_BLOC_VOTE, Warn, "votes.*, valid",
        "seluruh suara sah untuk satu peserta (tidak berlaku di wilayah noken)",
        "every valid vote went to one candidate (not applied in noken regions)"),
];

pub fn rule(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.code == code)
}

/// The current rulebook as canonical JSON (see [`Rulebook::json`]).
pub fn rulebook_json() -> Vec<u8> {
    Rulebook::CURRENT.json()
}

/// SHA-256 of [`rulebook_json`], hex.
pub fn digest() -> String {
    Rulebook::CURRENT.digest()
}

/// One broken rule on one sheet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    /// Field paths involved.
    pub fields: Vec<String>,
    /// The numbers that break the rule, as `label = value` statements joined by "; ".
    pub detail: String,
}

impl Finding {
    pub fn rule(&self) -> &'static Rule {
        rule(self.code).expect("invariant: findings carry codes from RULES")
    }

    pub fn severity(&self) -> Severity {
        self.rule().severity
    }

    /// `CODE [fields]: message (detail)` in Indonesian ("id") or English (anything else).
    pub fn render(&self, lang: &str) -> String {
        let rule = self.rule();
        let message = if lang == "id" { rule.id } else { rule.en };
        format!(
            "{} [{}]: {} ({})",
            self.code,
            self.fields.join(", "),
            message,
            self.detail
        )
    }
}

/// What the registry says about a TPS, for the rulebook.
#[derive(Clone, Copy, Debug)]
pub struct TpsFacts {
    pub kind: TpsKind,
    pub dpt: Option<Lp>,
}

/// The outcome of checking one sheet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub findings: Vec<Finding>,
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        self.findings.iter().all(|f| f.severity() == Severity::Warn)
    }

    /// Codes of the broken `Reject` rules, each once, in rulebook order.
    pub fn rejecting_codes(&self) -> Vec<&'static str> {
        self.codes(Severity::Reject)
    }

    pub fn warning_codes(&self) -> Vec<&'static str> {
        self.codes(Severity::Warn)
    }

    fn codes(&self, severity: Severity) -> Vec<&'static str> {
        RULES
            .iter()
            .filter(|rule| rule.severity == severity)
            .filter(|rule| self.findings.iter().any(|f| f.code == rule.code))
            .map(|rule| rule.code)
            .collect()
    }
}

/// The history rule TPS_ALREADY_REPORTED, in one place for everyone who holds a history (a file
/// check, the server, a verifier): an original form (not a correction) that passed every other rule
/// is rejected when its TPS already has an accepted result. `detail` says where that result is.
pub fn check_history(
    verdict: Verdict,
    form: &CHasil,
    tps_already_accepted: bool,
    detail: impl FnOnce() -> String,
) -> Verdict {
    if verdict.accepted() && form.correction.is_none() && tps_already_accepted {
        Verdict {
            findings: vec![finding(codes::TPS_ALREADY_REPORTED, &["tps"], detail())],
        }
    } else {
        verdict
    }
}

/// Checks a signed form. `signature_valid` comes from the caller (so signatures can be checked in
/// batches). An unauthenticated form gets only its authentication finding: its content is nobody's word.
pub fn check_signed_form(
    form: &CHasil,
    signature_valid: bool,
    registry: &Registry,
    election: &Election,
) -> Verdict {
    check_signed_form_in(Rulebook::CURRENT, form, signature_valid, registry, election)
}

/// [`check_signed_form`] under a given rulebook version (a log's, named in its genesis).
pub fn check_signed_form_in(
    rulebook: Rulebook,
    form: &CHasil,
    signature_valid: bool,
    registry: &Registry,
    election: &Election,
) -> Verdict {
    let tps = registry.tps(form.tps);
    if !signature_valid {
        let detail = format!("signer = {}", form.signer);
        return Verdict {
            findings: vec![finding(codes::SIGNATURE_INVALID, &["signature"], detail)],
        };
    }
    if let Some(tps) = tps {
        let enrolled = match &form.correction {
            // A correction comes from a commission above the TPS, never from the TPS's own officer.
            Some(_) => registry.corrector_region(form.tps, &form.signer).is_some(),
            None => tps.officers.contains(&form.signer),
        };
        if !enrolled {
            let role = if form.correction.is_some() {
                "corrector"
            } else {
                "officer"
            };
            let detail = format!("signer = {}, not an enrolled {role}", form.signer);
            return Verdict {
                findings: vec![finding(codes::SIGNER_NOT_ENROLLED, &["signer"], detail)],
            };
        }
    }
    check_sheet_in(
        rulebook,
        &Sheet::from_form(form),
        tps.map(|t| TpsFacts {
            kind: t.kind,
            dpt: t.dpt,
        }),
        election,
    )
}

/// Checks a poll witness's copy's figures with the same rulebook as an officer's form. Entitlement
/// (enrolment, scope, revocation) is decided before, by the registry: an unentitled copy is
/// refused, never judged. A copy's verdict is recorded with it and never touches the tallies.
pub fn check_copy_in(
    rulebook: Rulebook,
    copy: &crate::copy::WitnessCopy,
    registry: &Registry,
    election: &Election,
) -> Verdict {
    check_sheet_in(
        rulebook,
        &Sheet::from_form(&copy.form),
        registry.tps(copy.form.tps).map(|t| TpsFacts {
            kind: t.kind,
            dpt: t.dpt,
        }),
        election,
    )
}

/// Checks the content of a sheet. `tps` is `None` when the registry does not know the TPS.
pub fn check_sheet(sheet: &Sheet, tps: Option<TpsFacts>, election: &Election) -> Verdict {
    check_sheet_in(Rulebook::CURRENT, sheet, tps, election)
}

/// [`check_sheet`] under a given rulebook version.
pub fn check_sheet_in(
    rulebook: Rulebook,
    sheet: &Sheet,
    tps: Option<TpsFacts>,
    election: &Election,
) -> Verdict {
    let mut out = Vec::new();
    if tps.is_none() {
        out.push(finding(
            codes::TPS_UNKNOWN,
            &["tps"],
            format!("tps = {}", sheet.tps),
        ));
    }
    check_contest(sheet, election, &mut out);
    check_range(sheet, &mut out);
    check_arithmetic(sheet, &mut out);
    if let Some(facts) = tps {
        check_caps(rulebook, sheet, facts, &mut out);
        check_warnings(sheet, facts, &mut out);
    }
    // Report in rulebook order, so output does not depend on the order checks run in.
    out.sort_by_key(|f| RULES.iter().position(|r| r.code == f.code));
    Verdict { findings: out }
}

fn finding(code: &'static str, fields: &[&str], detail: String) -> Finding {
    debug_assert!(rule(code).is_some(), "unknown rule {code}");
    Finding {
        code,
        fields: fields.iter().map(|f| f.to_string()).collect(),
        detail,
    }
}

fn check_contest(sheet: &Sheet, election: &Election, out: &mut Vec<Finding>) {
    if let Some(id) = &sheet.election {
        if *id != election.id {
            out.push(finding(
                codes::CONTEST_MISMATCH,
                &["election"],
                format!("election = {id:?}, expected {:?}", election.id),
            ));
            return;
        }
    }
    let contest_id = sheet.contest.as_deref().unwrap_or("ppwp");
    let Some(contest) = election.contest(contest_id) else {
        out.push(finding(
            codes::CONTEST_MISMATCH,
            &["contest"],
            format!("contest = {contest_id:?} is not in {}", election.id),
        ));
        return;
    };
    let mut expected: Vec<&str> = contest
        .candidates
        .iter()
        .map(|c| c.number.as_str())
        .collect();
    let mut got: Vec<&str> = sheet.votes.iter().map(|(p, _)| p.as_str()).collect();
    expected.sort();
    got.sort();
    if expected != got {
        out.push(finding(
            codes::CONTEST_MISMATCH,
            &["votes"],
            format!(
                "positions = [{}], expected [{}]",
                got.join(", "),
                expected.join(", ")
            ),
        ));
    }
}

fn check_range(sheet: &Sheet, out: &mut Vec<Finding>) {
    for field in Field::all() {
        if let Some(value) = sheet.get(field) {
            if !(0..=MAX_COUNT).contains(&value) {
                out.push(finding(
                    codes::COUNT_RANGE,
                    &[field.path()],
                    format!("{} = {value}", field.label()),
                ));
            }
        }
    }
    for (position, value) in &sheet.votes {
        if let Some(value) = value {
            if !(0..=MAX_COUNT).contains(value) {
                let path = format!("votes.{position}");
                out.push(Finding {
                    code: codes::COUNT_RANGE,
                    fields: vec![path],
                    detail: format!("{position} = {value}"),
                });
            }
        }
    }
}

/// `lhs = sum(rhs)` when all are reported; a finding otherwise.
fn equation(sheet: &Sheet, code: &'static str, lhs: Field, rhs: &[Field], out: &mut Vec<Finding>) {
    let Some(left) = sheet.get(lhs) else { return };
    // Saturating: published rows may hold any integer (COUNT_RANGE reports those).
    let Some(right) = rhs
        .iter()
        .try_fold(0i64, |sum, &f| Some(sum.saturating_add(sheet.get(f)?)))
    else {
        return;
    };
    if left != right {
        let mut fields = vec![lhs.path().to_string()];
        fields.extend(rhs.iter().map(|f| f.path().to_string()));
        let labels: Vec<&str> = rhs.iter().map(|f| f.label()).collect();
        out.push(Finding {
            code,
            fields,
            detail: format!("{} = {left}; {} = {right}", lhs.label(), labels.join(" + ")),
        });
    }
}

/// `small <= big` when both are reported.
fn at_most(sheet: &Sheet, code: &'static str, small: Field, big: Field, out: &mut Vec<Finding>) {
    if let (Some(s), Some(b)) = (sheet.get(small), sheet.get(big)) {
        if s > b {
            out.push(finding(
                code,
                &[small.path(), big.path()],
                format!("{} = {s}; {} = {b}", small.label(), big.label()),
            ));
        }
    }
}

fn check_arithmetic(sheet: &Sheet, out: &mut Vec<Finding>) {
    // Every L + P = J.
    for row in ROWS {
        for field in [Field::registered as fn(Row, Col) -> Field, Field::voted] {
            equation(
                sheet,
                codes::LP_SUM,
                field(row, Col::J),
                &[field(row, Col::L), field(row, Col::P)],
                out,
            );
        }
    }
    for field in [
        Field::disability_registered as fn(Col) -> Field,
        Field::disability_voted,
    ] {
        equation(
            sheet,
            codes::LP_SUM,
            field(Col::J),
            &[field(Col::L), field(Col::P)],
            out,
        );
    }
    for col in COLS {
        let parts =
            |f: fn(Row, Col) -> Field| [f(Row::Dpt, col), f(Row::Dptb, col), f(Row::Dpk, col)];
        equation(
            sheet,
            codes::REGISTERED_SUM,
            Field::registered(Row::Total, col),
            &parts(Field::registered),
            out,
        );
        equation(
            sheet,
            codes::VOTED_SUM,
            Field::voted(Row::Total, col),
            &parts(Field::voted),
            out,
        );
    }
    for row in ROWS {
        at_most(
            sheet,
            codes::VOTED_WITHIN_REGISTERED,
            Field::voted(row, Col::J),
            Field::registered(row, Col::J),
            out,
        );
    }
    equation(
        sheet,
        codes::BALLOTS_BALANCE,
        Field::BALLOTS_RECEIVED,
        &[
            Field::BALLOTS_USED,
            Field::BALLOTS_DAMAGED,
            Field::BALLOTS_UNUSED,
        ],
        out,
    );
    equation(
        sheet,
        codes::BALLOTS_USED_VOTERS,
        Field::BALLOTS_USED,
        &[Field::voted(Row::Total, Col::J)],
        out,
    );
    equation(
        sheet,
        codes::VOTERS_VOTES,
        Field::voted(Row::Total, Col::J),
        &[Field::TOTAL],
        out,
    );
    equation(
        sheet,
        codes::VOTES_TOTAL,
        Field::TOTAL,
        &[Field::VALID, Field::INVALID],
        out,
    );
    if let Some(valid) = sheet.get(Field::VALID) {
        if let Some(sum) = reported_vote_sum(sheet) {
            if !sheet.votes.is_empty() && sum != valid {
                let mut fields: Vec<String> = sheet
                    .votes
                    .iter()
                    .map(|(p, _)| format!("votes.{p}"))
                    .collect();
                fields.push("valid".into());
                let positions: Vec<&str> = sheet.votes.iter().map(|(p, _)| p.as_str()).collect();
                out.push(Finding {
                    code: codes::VOTES_SUM,
                    fields,
                    detail: format!("{} = {sum}; Suara sah = {valid}", positions.join(" + ")),
                });
            }
        }
    }
    for col in COLS {
        at_most(
            sheet,
            codes::DISABILITY_WITHIN,
            Field::disability_voted(col),
            Field::disability_registered(col),
            out,
        );
    }
    at_most(
        sheet,
        codes::DISABILITY_WITHIN,
        Field::disability_voted(Col::J),
        Field::voted(Row::Total, Col::J),
        out,
    );
}

/// The sum of the vote counts when every position is reported; saturating, since published rows
/// (Sirekap's) may hold any integer.
fn reported_vote_sum(sheet: &Sheet) -> Option<i64> {
    sheet
        .votes
        .iter()
        .try_fold(0i64, |sum, (_, v)| Some(sum.saturating_add((*v)?)))
}

/// Fields bound by a TPS's count cap: everything that counts people who voted, ballots or votes.
fn capped_fields() -> impl Iterator<Item = Field> {
    let voted = ROWS
        .into_iter()
        .flat_map(|row| COLS.into_iter().map(move |col| Field::voted(row, col)));
    let disability = COLS.into_iter().map(Field::disability_voted);
    let rest = [
        Field::BALLOTS_RECEIVED,
        Field::BALLOTS_USED,
        Field::BALLOTS_DAMAGED,
        Field::BALLOTS_UNUSED,
        Field::VALID,
        Field::INVALID,
        Field::TOTAL,
    ];
    voted.chain(disability).chain(rest)
}

fn check_caps(rulebook: Rulebook, sheet: &Sheet, facts: TpsFacts, out: &mut Vec<Finding>) {
    let form_dpt = sheet.get(Field::registered(Row::Dpt, Col::J));
    let regular = facts.kind == TpsKind::Regular;
    if regular {
        if let Some(dpt) = form_dpt.filter(|&dpt| dpt > REGULAR_DPT_CAP) {
            out.push(finding(
                codes::DPT_CAP,
                &["registered.dpt.j"],
                format!("A.1 J = {dpt}; cap = {REGULAR_DPT_CAP}"),
            ));
        }
    }
    if let Some(registry_dpt) = facts.dpt {
        let registered = [
            (Col::L, registry_dpt.l as i64),
            (Col::P, registry_dpt.p as i64),
            (Col::J, registry_dpt.total() as i64),
        ];
        let differs: Vec<String> = registered
            .iter()
            .filter_map(|&(col, expected)| {
                let field = Field::registered(Row::Dpt, col);
                sheet
                    .get(field)
                    .filter(|&v| v != expected)
                    .map(|v| format!("{} = {v}, registry {expected}", field.label()))
            })
            .collect();
        if !differs.is_empty() {
            out.push(finding(
                codes::DPT_MISMATCH,
                &["registered.dpt"],
                differs.join("; "),
            ));
        }
    }
    // The DPT the ballot allocation was based on: the registry's when known, else the form's own.
    let dpt_for_ballots = facts.dpt.map(|d| d.total() as i64).or(form_dpt);
    if let (Some(dpt), Some(received)) = (dpt_for_ballots, sheet.get(Field::BALLOTS_RECEIVED)) {
        if received > ballot_cap(dpt) {
            out.push(finding(
                codes::BALLOTS_CAP,
                &["ballots.received", "registered.dpt.j"],
                format!("II.1 = {received}; DPT {dpt} + 2% = {}", ballot_cap(dpt)),
            ));
        }
    }
    // The lock: a regular TPS can never hold more than 306 of anything, whatever its DPT figure says.
    // Other kinds are capped by their registered DPT, when the registry knows it.
    let cap = if regular {
        Some(ballot_cap(REGULAR_DPT_CAP))
    } else {
        facts.dpt.map(|d| ballot_cap(d.total() as i64))
    };
    if let Some(cap) = cap {
        let mut over: Vec<(String, String)> = capped_fields()
            .filter_map(|f| {
                sheet
                    .get(f)
                    .filter(|&v| v > cap)
                    .map(|v| (f.path().to_string(), format!("{} = {v}", f.label())))
            })
            .collect();
        over.extend(sheet.votes.iter().filter_map(|(p, v)| {
            v.filter(|&v| v > cap)
                .map(|v| (format!("votes.{p}"), format!("{p} = {v}")))
        }));
        if !over.is_empty() {
            let (fields, values): (Vec<String>, Vec<String>) = over.into_iter().unzip();
            out.push(Finding {
                code: codes::COUNT_CAP,
                fields,
                detail: format!("{}; cap = {cap}", values.join("; ")),
            });
        }
        // Votes for all candidates together are bounded by the cap as well: no TPS holds more valid
        // votes than voters. Real 2024 rows reported only the pair counts (307 to 458 together at
        // regular TPS), which every other rule let through because `valid` was missing. The rule reads
        // the reported counts only: a missing count is not zero, but it cannot be negative either, so
        // reported counts above the cap are over it whatever the missing ones were.
        let reported: Vec<(&str, i64)> = sheet
            .votes
            .iter()
            .filter_map(|(p, v)| v.filter(|&v| v >= 0).map(|v| (p.as_str(), v)))
            .collect();
        let sum = reported
            .iter()
            .fold(0i64, |sum, (_, v)| sum.saturating_add(*v));
        if rulebook >= Rulebook::V2024_2 && sum > cap {
            let positions: Vec<&str> = reported.iter().map(|(p, _)| *p).collect();
            out.push(Finding {
                code: codes::VOTES_CAP,
                fields: positions.iter().map(|p| format!("votes.{p}")).collect(),
                detail: format!("{} = {sum}; cap = {cap}", positions.join(" + ")),
            });
        }
    }
}

fn check_warnings(sheet: &Sheet, facts: TpsFacts, out: &mut Vec<Finding>) {
    if facts.kind != TpsKind::Regular || is_noken(sheet.tps) {
        return;
    }
    if let (Some(voted), Some(dpt)) = (
        sheet.get(Field::voted(Row::Dpt, Col::J)),
        sheet.get(Field::registered(Row::Dpt, Col::J)),
    ) {
        if dpt >= 50 && voted * 100 > dpt * 98 {
            out.push(finding(
                codes::W_TURNOUT_HIGH,
                &["voted.dpt.j", "registered.dpt.j"],
                format!("B.1 J = {voted}; A.1 J = {dpt}"),
            ));
        }
    }
    if let Some(valid) = sheet.get(Field::VALID) {
        if valid >= 50 {
            if let Some((position, _)) = sheet.votes.iter().find(|(_, v)| *v == Some(valid)) {
                out.push(finding(
                    codes::W_BLOC_VOTE,
                    &["votes", "valid"],
                    format!("{position} = {valid}; Suara sah = {valid}"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod code_tests {
    use super::*;

    #[test]
    fn every_code_constant_names_exactly_one_rule() {
        let table: Vec<&str> = RULES.iter().map(|rule| rule.code).collect();
        assert_eq!(codes::ALL, table.as_slice());
    }
}
