//! The rulebook, rule by rule: each case breaks one rule on an otherwise valid form, asserts that rule
//! fires, and snapshots the full error output (codes, fields, messages in Indonesian and English), so any
//! change in what an officer or observer reads shows up in review.

use saksi_election::checker::{Checker, Outcome};
use saksi_election::code::Code;
use saksi_election::form::{Ballots, CHasil, Disability, Lpj, PhotoDigest, VoterRows};
use saksi_election::registry::{Lp, Registry, Tps, TpsKind};
use saksi_election::rules::{self, Severity};
use saksi_election::sign::SecretKey;
use saksi_election::Election;

const TPS: &str = "1101012001001";
const KHUSUS_TPS: &str = "1101012001901";
const NOKEN_TPS: &str = "9501012001001";

fn officer(code: &str) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..code.len()].copy_from_slice(code.as_bytes());
    SecretKey::from_seed(seed)
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    for (code, name) in [
        ("11", "Aceh"),
        ("1101", "Kab. Aceh Selatan"),
        ("110101", "Bakongan"),
        ("1101012001", "Keude Bakongan"),
        ("95", "Papua Pegunungan"),
        ("9501", "Kab. Jayawijaya"),
        ("950101", "Wamena"),
        ("9501012001", "Wamena Kota"),
    ] {
        registry
            .add_region(Code::parse(code).unwrap(), name)
            .unwrap();
    }
    let dpt = Some(Lp { l: 139, p: 145 });
    for (code, kind) in [
        (TPS, TpsKind::Regular),
        (KHUSUS_TPS, TpsKind::Khusus),
        (NOKEN_TPS, TpsKind::Regular),
    ] {
        let tps = Tps {
            code: Code::parse(code).unwrap(),
            kind,
            dpt,
            officers: vec![officer(code).public()],
        };
        registry.add_tps(tps).unwrap();
    }
    registry
        .add_corrector(
            Code::parse("110101").unwrap(),
            officer("ppk-110101").public(),
        )
        .unwrap();
    registry
        .add_corrector(Code::parse("9501").unwrap(), officer("kpu-9501").public())
        .unwrap();
    registry
}

fn lpj(l: i64, p: i64) -> Lpj {
    Lpj { l, p, j: l + p }
}

/// A form that passes every rule at a regular TPS with DPT 139 + 145.
fn valid_form(tps: &str) -> CHasil {
    CHasil {
        election: "pemilu-2024".into(),
        contest: "ppwp".into(),
        correction: None,
        tps: Code::parse(tps).unwrap(),
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
        evidence: vec![
            PhotoDigest::of(b"page 1"),
            PhotoDigest::of(b"page 2"),
            PhotoDigest::of(b"page 3"),
        ],
        signer: officer(tps).public(),
    }
}

/// Signs each form (with its TPS's officer unless `key` says otherwise), checks them in order, and
/// renders the last one's findings.
fn check_sequence(
    forms: Vec<(CHasil, Option<SecretKey>)>,
    tamper: impl Fn(&mut Vec<u8>),
) -> (rules::Verdict, String) {
    let registry = registry();
    let election = Election::pemilu_2024();
    let mut checker = Checker::new(&registry, &election);
    let lines: Vec<Vec<u8>> = forms
        .into_iter()
        .map(|(form, key)| {
            let key = key.unwrap_or_else(|| officer(form.tps.as_str()));
            let mut bytes = form.sign(&key).encode();
            tamper(&mut bytes);
            bytes
        })
        .collect();
    let numbered: Vec<(usize, &[u8])> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i + 1, l.as_slice()))
        .collect();
    let outcomes = checker.check(&numbered);
    let Some(Outcome::Checked { verdict, .. }) = outcomes.into_iter().last() else {
        panic!("malformed")
    };
    let mut text = String::new();
    for finding in &verdict.findings {
        text.push_str(&format!(
            "{:?}\nen: {}\nid: {}\n",
            finding.severity(),
            finding.render("en"),
            finding.render("id")
        ));
    }
    (verdict, text)
}

fn check(form: CHasil) -> (rules::Verdict, String) {
    check_sequence(vec![(form, None)], |_| {})
}

/// Asserts `code` fires and snapshots the output under the rule's name.
fn expect(code: &str, (verdict, text): (rules::Verdict, String)) {
    assert!(
        verdict.findings.iter().any(|f| f.code == code),
        "{code} did not fire:\n{text}"
    );
    let severity = rules::rule(code).unwrap().severity;
    assert_eq!(
        verdict.accepted(),
        severity == Severity::Warn,
        "{code}:\n{text}"
    );
    insta::assert_snapshot!(code, text);
}

#[test]
fn the_valid_form_passes() {
    for tps in [TPS, KHUSUS_TPS, NOKEN_TPS] {
        let (verdict, text) = check(valid_form(tps));
        assert!(verdict.findings.is_empty(), "{tps}: {text}");
    }
}

#[test]
fn every_rule_has_a_case() {
    // Keep this list in step with the tests below: a new rule needs a case.
    let covered = [
        "DUPLICATE",
        "TPS_ALREADY_REPORTED",
        "TPS_UNKNOWN",
        "CONTEST_MISMATCH",
        "SIGNATURE_INVALID",
        "SIGNER_NOT_ENROLLED",
        "COUNT_RANGE",
        "LP_SUM",
        "REGISTERED_SUM",
        "VOTED_SUM",
        "VOTED_WITHIN_REGISTERED",
        "BALLOTS_BALANCE",
        "BALLOTS_USED_VOTERS",
        "VOTERS_VOTES",
        "VOTES_TOTAL",
        "VOTES_SUM",
        "DISABILITY_WITHIN",
        "DPT_CAP",
        "DPT_MISMATCH",
        "BALLOTS_CAP",
        "COUNT_CAP",
        "VOTES_CAP",
        // The recapitulation forms' own rules: `recap_rules_fire` below.
        "RECAP_VOTES_SUM",
        "RECAP_TOTAL_SUM",
        "RECAP_CHILDREN",
        "W_TURNOUT_HIGH",
        "W_BLOC_VOTE",
    ];
    for rule in rules::RULES {
        assert!(
            covered.contains(&rule.code),
            "no test case for {}",
            rule.code
        );
    }
    assert_eq!(covered.len(), rules::RULES.len());
}

#[test]
fn duplicate() {
    expect(
        "DUPLICATE",
        check_sequence(
            vec![(valid_form(TPS), None), (valid_form(TPS), None)],
            |_| {},
        ),
    );
}

#[test]
fn tps_already_reported() {
    let mut second = valid_form(TPS);
    second.evidence.pop();
    expect(
        "TPS_ALREADY_REPORTED",
        check_sequence(vec![(valid_form(TPS), None), (second, None)], |_| {}),
    );
}

#[test]
fn a_rejected_form_does_not_take_the_tps_slot() {
    let mut wrong = valid_form(TPS);
    wrong.invalid += 1;
    let (verdict, text) = check_sequence(vec![(wrong, None), (valid_form(TPS), None)], |_| {});
    assert!(verdict.accepted(), "{text}");
}

#[test]
fn tps_unknown() {
    let mut form = valid_form(TPS);
    form.tps = Code::parse("1101012001002").unwrap();
    expect(
        "TPS_UNKNOWN",
        check_sequence(vec![(form, Some(officer(TPS)))], |_| {}),
    );
}

#[test]
fn contest_mismatch() {
    let mut form = valid_form(TPS);
    form.votes.retain(|(p, _)| p != "03");
    form.votes.push(("04".into(), 10));
    expect("CONTEST_MISMATCH", check(form));
    let mut form = valid_form(TPS);
    form.contest = "dpr".into();
    assert!(check(form)
        .0
        .findings
        .iter()
        .any(|f| f.code == "CONTEST_MISMATCH"));
    let mut form = valid_form(TPS);
    form.election = "pemilu-2029".into();
    assert!(check(form)
        .0
        .findings
        .iter()
        .any(|f| f.code == "CONTEST_MISMATCH"));
}

#[test]
fn signature_invalid() {
    // Flip one bit inside the base64 signature (before its padding and closing quote).
    expect(
        "SIGNATURE_INVALID",
        check_sequence(vec![(valid_form(TPS), None)], |bytes| {
            let at = bytes.len() - 8;
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        }),
    );
}

#[test]
fn signer_not_enrolled() {
    let mut form = valid_form(TPS);
    form.signer = officer(KHUSUS_TPS).public();
    expect(
        "SIGNER_NOT_ENROLLED",
        check_sequence(vec![(form, Some(officer(KHUSUS_TPS)))], |_| {}),
    );
}

#[test]
fn count_range() {
    let mut form = valid_form(TPS);
    form.ballots.damaged = -1;
    form.ballots.unused = 52;
    expect("COUNT_RANGE", check(form));
}

#[test]
fn lp_sum() {
    let mut form = valid_form(TPS);
    form.disability.registered.l += 1;
    expect("LP_SUM", check(form));
}

#[test]
fn registered_sum() {
    let mut form = valid_form(TPS);
    form.registered.total = lpj(141, 147);
    expect("REGISTERED_SUM", check(form));
}

#[test]
fn voted_sum() {
    let mut form = valid_form(TPS);
    form.voted.dpk = lpj(3, 0);
    form.registered.dpk = lpj(3, 0);
    form.registered.total = lpj(142, 146);
    expect("VOTED_SUM", check(form));
}

#[test]
fn voted_within_registered() {
    let mut form = valid_form(TPS);
    form.registered.dptb = lpj(0, 0);
    form.registered.total = lpj(141, 145);
    expect("VOTED_WITHIN_REGISTERED", check(form));
}

#[test]
fn ballots_balance() {
    let mut form = valid_form(TPS);
    form.ballots.unused = 40;
    expect("BALLOTS_BALANCE", check(form));
}

#[test]
fn ballots_used_voters() {
    let mut form = valid_form(TPS);
    form.ballots.used = 238;
    form.ballots.unused = 51;
    expect("BALLOTS_USED_VOTERS", check(form));
}

#[test]
fn voters_votes() {
    let mut form = valid_form(TPS);
    form.total = 240;
    form.invalid = 5;
    expect("VOTERS_VOTES", check(form));
}

#[test]
fn votes_total() {
    let mut form = valid_form(TPS);
    form.invalid = 5;
    expect("VOTES_TOTAL", check(form));
}

#[test]
fn votes_sum() {
    // Sirekap's signature misread: 85 read as 855.
    let mut form = valid_form(TPS);
    form.votes[1].1 = 255;
    expect("VOTES_SUM", check(form));
}

#[test]
fn disability_within() {
    let mut form = valid_form(TPS);
    form.disability.voted = lpj(1, 2);
    expect("DISABILITY_WITHIN", check(form));
}

#[test]
fn dpt_cap() {
    let mut form = valid_form(TPS);
    form.registered.dpt = lpj(160, 145);
    form.registered.total = lpj(162, 146);
    expect("DPT_CAP", check(form));
}

#[test]
fn dpt_cap_does_not_bind_a_special_tps() {
    let mut form = valid_form(KHUSUS_TPS);
    form.registered.dpt = lpj(160, 145);
    form.registered.total = lpj(162, 146);
    let (verdict, _) = check(form);
    assert!(!verdict.findings.iter().any(|f| f.code == "DPT_CAP"));
    assert!(verdict.findings.iter().any(|f| f.code == "DPT_MISMATCH"));
}

#[test]
fn dpt_mismatch() {
    let mut form = valid_form(TPS);
    form.registered.dpt = lpj(140, 145);
    form.registered.total = lpj(142, 146);
    expect("DPT_MISMATCH", check(form));
}

#[test]
fn ballots_cap() {
    let mut form = valid_form(TPS);
    form.ballots.received = 291;
    form.ballots.unused = 51;
    expect("BALLOTS_CAP", check(form));
}

#[test]
fn count_cap() {
    // The 2024 headline: 855 votes for one pair at a TPS of 237 voters. Every sum agrees, yet no
    // regular TPS can hold 855 of anything.
    let mut form = valid_form(TPS);
    form.votes[0].1 = 855;
    form.valid = 890;
    form.total = 894;
    form.voted.dpt = lpj(400, 455);
    form.voted.total = lpj(402, 456);
    form.ballots.used = 858;
    expect("COUNT_CAP", check(form));
}

#[test]
fn votes_cap() {
    // Real 2024 rows (e.g. only the three pair counts reported, 307 to 458 in all at regular TPS)
    // passed every other rule because `valid` was missing. The same sheet here, built from a form.
    let mut form = valid_form(TPS);
    form.votes = vec![("01".into(), 150), ("02".into(), 150), ("03".into(), 100)];
    let mut sheet = saksi_election::sheet::Sheet::from_form(&form);
    for field in saksi_election::sheet::Field::all() {
        sheet.set(field, None);
    }
    let facts = Some(rules::TpsFacts {
        kind: TpsKind::Regular,
        dpt: None,
    });
    let election = Election::pemilu_2024();
    let verdict = rules::check_sheet(&sheet, facts, &election);
    assert_eq!(verdict.rejecting_codes(), ["VOTES_CAP"], "{verdict:?}");
    let text: Vec<String> = verdict.findings.iter().map(|f| f.render("id")).collect();
    insta::assert_snapshot!("VOTES_CAP", text.join("\n"));
    // A log made under 2024.1 keeps its meaning: there, the same sheet is accepted.
    let old = rules::check_sheet_in(rules::Rulebook::V2024_1, &sheet, facts, &election);
    assert!(old.accepted(), "{old:?}");
    // At the cap it does not fire.
    sheet.votes[2].1 = Some(6);
    assert!(rules::check_sheet(&sheet, facts, &election).accepted());
    // A missing count is not zero, but not negative either: the reported ones alone over the cap
    // are over it; under the cap with one missing, nothing is known.
    sheet.votes[2].1 = None;
    sheet.votes[0].1 = Some(200);
    assert_eq!(
        rules::check_sheet(&sheet, facts, &election).rejecting_codes(),
        ["VOTES_CAP"]
    );
    sheet.votes[0].1 = Some(100);
    assert!(rules::check_sheet(&sheet, facts, &election).accepted());
    // A full form breaking it breaks the lock on valid too; both are reported.
    let mut form = valid_form(TPS);
    form.votes = vec![("01".into(), 150), ("02".into(), 150), ("03".into(), 100)];
    form.valid = 400;
    let (verdict, _) = check(form);
    assert!(verdict.rejecting_codes().contains(&"VOTES_CAP"));
}

#[test]
fn recap_rules_fire() {
    use saksi_election::recap::{check_recap, Figures, RecapForm, RecapLevel, RecapRow};
    let figures = |a: i64, b: i64, valid: i64| Figures {
        votes: vec![("01".into(), a), ("02".into(), b)],
        valid,
        invalid: 0,
        voters: valid,
    };
    let child = Code::parse("1101012001").unwrap();
    let form = RecapForm {
        election: "pemilu-2024".into(),
        contest: "ppwp".into(),
        level: RecapLevel::Kecamatan,
        region: Some(Code::parse("110101").unwrap()),
        rows: vec![RecapRow {
            child,
            figures: figures(10, 20, 31),
        }],
        total: figures(10, 25, 35),
        signer: officer("recap").public(),
        correction: None,
    };
    let positions = ["01".to_string(), "02".to_string()];
    let codes: Vec<&str> = check_recap(&form, &[Code::parse("1101012002").unwrap()], &positions)
        .iter()
        .map(|f| f.code)
        .collect();
    for code in ["RECAP_VOTES_SUM", "RECAP_TOTAL_SUM", "RECAP_CHILDREN"] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    // Every code a recap verdict can carry is in the rulebook, with its messages.
    for code in codes {
        assert!(rules::rule(code).is_some(), "{code} is not in the rulebook");
    }
}

#[test]
fn turnout_high_is_a_warning_only() {
    let mut form = valid_form(TPS);
    form.voted.dpt = lpj(139, 144);
    form.voted.total = lpj(141, 145);
    form.ballots = Ballots {
        received: 290,
        used: 286,
        damaged: 1,
        unused: 3,
    };
    form.votes[0].1 = 247;
    form.valid = 282;
    form.total = 286;
    expect("W_TURNOUT_HIGH", check(form));
}

#[test]
fn bloc_vote_is_a_warning_outside_noken_and_silent_inside() {
    let bloc = |tps: &str| {
        let mut form = valid_form(tps);
        form.votes = vec![("01".into(), 0), ("02".into(), 235), ("03".into(), 0)];
        form
    };
    expect("W_BLOC_VOTE", check(bloc(TPS)));
    let (verdict, text) = check(bloc(NOKEN_TPS));
    assert!(
        verdict.findings.is_empty(),
        "noken bloc votes are lawful: {text}"
    );
}

#[test]
fn earlier_rulebooks_keep_their_identity() {
    // 2024.1 as published before 2024.2 existed: logs made under it name this digest.
    assert_eq!(
        rules::Rulebook::V2024_1.digest(),
        "dfadf40f23786746357911e23b68d52f0346f9ea66fbe4274af5f3fffa0d4dd3"
    );
    assert_eq!(rules::Rulebook::V2024_1.rules().count(), 23);
    assert_eq!(rules::Rulebook::CURRENT.name(), rules::RULEBOOK_VERSION);
    assert_eq!(
        rules::Rulebook::named("saksi-rulebook/2024.1"),
        Some(rules::Rulebook::V2024_1)
    );
    assert_eq!(rules::Rulebook::named("saksi-rulebook/1999.9"), None);
}

#[test]
fn rulebook_identity_is_stable() {
    insta::assert_snapshot!(
        "rulebook_json",
        String::from_utf8(rules::rulebook_json()).unwrap()
    );
}

fn correction(tps: &str, by: &str) -> (CHasil, Option<SecretKey>) {
    let mut form = valid_form(tps);
    form.votes[0].1 -= 5;
    form.votes[1].1 += 5;
    form.correction = Some(saksi_election::form::Correction {
        reason: "PPK plenary recount".into(),
    });
    form.signer = officer(by).public();
    (form, Some(officer(by)))
}

#[test]
fn corrections_come_from_commissions_above_the_tps() {
    // The kecamatan's PPK corrects an accepted form: accepted, and it does not count as a second original.
    let (verdict, text) = check_sequence(
        vec![(valid_form(TPS), None), correction(TPS, "ppk-110101")],
        |_| {},
    );
    assert!(verdict.accepted(), "{text}");
    // The TPS's own officer cannot sign a correction.
    let (verdict, _) = check_sequence(vec![(valid_form(TPS), None), correction(TPS, TPS)], |_| {});
    assert_eq!(verdict.rejecting_codes(), vec!["SIGNER_NOT_ENROLLED"]);
    // A commission elsewhere cannot either.
    let (verdict, _) = check_sequence(
        vec![(valid_form(TPS), None), correction(TPS, "kpu-9501")],
        |_| {},
    );
    assert_eq!(verdict.rejecting_codes(), vec!["SIGNER_NOT_ENROLLED"]);
    // But a corrector of a regency covers every TPS beneath it.
    let (verdict, text) = check_sequence(
        vec![
            (valid_form(NOKEN_TPS), None),
            correction(NOKEN_TPS, "kpu-9501"),
        ],
        |_| {},
    );
    assert!(verdict.accepted(), "{text}");
    // A correction still has to add up.
    let (mut form, key) = correction(TPS, "ppk-110101");
    form.valid += 1;
    let (verdict, _) = check_sequence(vec![(valid_form(TPS), None), (form, key)], |_| {});
    assert!(verdict.rejecting_codes().contains(&"VOTES_SUM"));
}
