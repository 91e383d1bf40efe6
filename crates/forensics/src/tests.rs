//! Every score on constructed cases: an honest synthetic kabupaten (beta-binomial shares around
//! per-desa means, like real TPS), into which one known anomaly is placed per test.

use saksi_election::registry::TpsKind;
use saksi_election::Code;

use crate::rng::SplitMix;
use crate::tps::one_digit_readings;
use crate::{analyze, Analysis, ForensicsError, Settings, Stratum, TpsRow};

/// The crate's SplitMix64 (same data on every run), with a binomial draw.
struct Rng(SplitMix);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(SplitMix(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next()
    }
    fn unit(&mut self) -> f64 {
        self.0.unit()
    }
    fn normal(&mut self) -> f64 {
        self.0.normal()
    }
    fn binomial(&mut self, n: u32, p: f64) -> u32 {
        (0..n).filter(|_| self.unit() < p).count() as u32
    }
}

fn pairs() -> Vec<String> {
    vec!["paslon 01".into(), "paslon 02".into(), "paslon 03".into()]
}

/// A kabupaten `kab` (4 digits) of `kecamatan` x `desa` x `tps`: each desa has its own shares and
/// turnout around the kabupaten's, each TPS a little spread around its desa's.
fn honest_kabupaten(kab: &str, kecamatan: u32, desa: u32, tps: u32, seed: u64) -> Vec<TpsRow> {
    let mut rng = Rng::new(seed);
    let mut rows = Vec::new();
    for k in 1..=kecamatan {
        for d in 1..=desa {
            let base = [0.25, 0.55, 0.20];
            let mut shares: Vec<f64> = base
                .iter()
                .map(|s: &f64| (s.ln() + 0.25 * rng.normal()).exp())
                .collect();
            let sum: f64 = shares.iter().sum();
            shares.iter_mut().for_each(|s| *s /= sum);
            let turnout = (0.80 + 0.04 * rng.normal()).clamp(0.5, 0.97);
            for t in 1..=tps {
                let dpt = 200 + (rng.next() % 100) as u32;
                let tps_turnout = (turnout + 0.02 * rng.normal()).clamp(0.3, 0.99);
                let voters = rng.binomial(dpt, tps_turnout);
                let valid = voters - voters / 50;
                let s0 = (shares[0] * (1.0 + 0.1 * rng.normal())).clamp(0.01, 0.9);
                let s1 = (shares[1] * (1.0 + 0.1 * rng.normal())).clamp(0.01, 0.9);
                let a = rng.binomial(valid, s0);
                let b = rng.binomial(valid - a, (s1 / (1.0 - s0)).min(0.99));
                let code = format!("{kab}{k:02}{:04}{t:03}", 2000 + d);
                rows.push(TpsRow {
                    tps: Code::parse(&code).expect("a valid code"),
                    kind: TpsKind::Regular,
                    dpt: Some(dpt),
                    voters: Some(voters),
                    votes: vec![a, b, valid - a - b],
                    disagreeing_copies: false,
                });
            }
        }
    }
    rows
}

fn run(rows: &[TpsRow]) -> Analysis {
    analyze(rows, &pairs(), &Settings::default()).expect("valid input")
}

fn score<'a>(analysis: &'a Analysis, tps: &str) -> &'a crate::TpsScore {
    analysis
        .tps
        .iter()
        .find(|s| s.tps == tps)
        .expect("the TPS was scored")
}

fn codes(score: &crate::TpsScore) -> Vec<&'static str> {
    score.tests.iter().map(|t| t.code).collect()
}

#[test]
fn honest_data_is_rarely_flagged() {
    let rows = honest_kabupaten("3201", 10, 8, 6, 1);
    let analysis = run(&rows);
    let flagged = analysis.tps.iter().filter(|s| s.flagged).count();
    // 480 honest TPS at FDR 5%: a flag or two is the most a calibrated model should give.
    assert!(flagged <= 2, "{flagged} honest TPS flagged");
    assert!(analysis.regions.iter().all(|r| !r.flagged));
}

#[test]
fn a_misread_hundreds_digit_is_flagged_with_its_reading() {
    let mut rows = honest_kabupaten("3201", 10, 8, 6, 2);
    let target = 100;
    let original = rows[target].votes[2];
    assert!(original < 100);
    // Only the pair counts changed, as Sirekap's OCR did: a blank hundreds box read as a 3.
    rows[target].votes[2] = 300 + original;
    rows[target].voters = None;
    let analysis = run(&rows);
    let s = score(&analysis, &rows[target].tps.to_string());
    assert!(s.flagged, "{s:?}");
    let misread = s
        .tests
        .iter()
        .find(|t| t.code == "F_MISREAD")
        .expect("labelled as a misread");
    assert_eq!(misread.suggested, Some(original));
    assert!(misread.en.contains("misread") && misread.id.contains("salah baca"));
}

#[test]
fn consistent_stuffing_is_flagged() {
    let mut rows = honest_kabupaten("3201", 10, 8, 6, 3);
    let target = 200;
    let row = &mut rows[target];
    let extra = (row.dpt.unwrap() - row.voters.unwrap()).min(row.voters.unwrap() * 3 / 10);
    row.voters = Some(row.voters.unwrap() + extra);
    row.votes[0] += extra;
    let analysis = run(&rows);
    let s = score(&analysis, &rows[target].tps.to_string());
    assert!(s.flagged, "{s:?}");
    assert!(codes(s).contains(&"F_STUFFING") || codes(s).contains(&"F_BLOC"));
}

#[test]
fn a_bloc_vote_is_flagged_outside_noken_and_not_inside() {
    let bloc = |row: &mut TpsRow| {
        let dpt = row.dpt.unwrap();
        row.voters = Some(dpt);
        row.votes = vec![0, dpt - 1, 1];
    };
    let mut rows = honest_kabupaten("3201", 10, 8, 6, 4);
    bloc(&mut rows[50]);
    let analysis = run(&rows);
    let s = score(&analysis, &rows[50].tps.to_string());
    assert!(s.flagged);
    assert!(codes(s).contains(&"F_BLOC"), "{:?}", codes(s));

    // The same figures in Papua Pegunungan (noken) are what the law allows: never flagged, no test.
    let mut rows = honest_kabupaten("9501", 10, 8, 6, 4);
    bloc(&mut rows[50]);
    for row in rows.iter_mut().step_by(7) {
        bloc(row);
    }
    let analysis = run(&rows);
    assert!(analysis
        .tps
        .iter()
        .all(|s| !s.flagged && s.tests.is_empty()));
    assert!(analysis.tps.iter().all(|s| s.stratum == Stratum::Noken));
    let province = analysis
        .regions
        .iter()
        .find(|r| r.region == "95")
        .expect("listed");
    assert!(!province.flagged);
    assert!(province.not_tested.as_ref().unwrap()[0].contains("noken"));
}

#[test]
fn overseas_units_are_not_flagged_for_size_or_turnout() {
    let mut rows = honest_kabupaten("3201", 4, 4, 4, 5);
    // Overseas units: one postal unit with thousands of voters and a low return, TPSLN beside it.
    let mut rng = Rng::new(9);
    for unit in 1..=40u32 {
        let postal = unit % 4 == 0;
        let dpt = if postal { 3000 + unit * 10 } else { 400 };
        let voters = if postal {
            600
        } else {
            150 + (rng.next() % 60) as u32
        };
        let a = rng.binomial(voters, 0.3);
        let b = rng.binomial(voters - a, 0.6);
        rows.push(TpsRow {
            tps: Code::parse(&format!("9901010001{unit:03}")).unwrap(),
            kind: if postal { TpsKind::Pos } else { TpsKind::Tpsln },
            dpt: Some(dpt),
            voters: Some(voters),
            votes: vec![a, b, voters - a - b],
            disagreeing_copies: false,
        });
    }
    let analysis = run(&rows);
    let overseas: Vec<_> = analysis
        .tps
        .iter()
        .filter(|s| s.stratum == Stratum::Overseas)
        .collect();
    assert_eq!(overseas.len(), 40);
    assert!(overseas.iter().all(|s| !s.flagged), "{overseas:?}");
    assert!(overseas.iter().all(|s| s
        .tests
        .iter()
        .all(|t| !matches!(t.code, "F_TURNOUT" | "F_STUFFING" | "F_BLOC"))));
    assert!(analysis
        .regions
        .iter()
        .any(|r| r.region == "99" && r.not_tested.is_some()));
}

#[test]
fn copied_figures_in_one_desa_are_flagged_on_both() {
    let mut rows = honest_kabupaten("3201", 10, 8, 6, 6);
    // TPS 2 of a desa copies TPS 1's counts.
    rows[31].votes = rows[30].votes.clone();
    rows[31].voters = rows[30].voters;
    assert_eq!(
        rows[30].tps.ancestor(saksi_election::Level::Desa),
        rows[31].tps.ancestor(saksi_election::Level::Desa)
    );
    let analysis = run(&rows);
    for i in [30, 31] {
        let s = score(&analysis, &rows[i].tps.to_string());
        assert!(s.flagged, "{s:?}");
        let copied = s.tests.iter().find(|t| t.code == "F_COPIED").unwrap();
        assert_eq!(copied.same_as, vec![rows[61 - i].tps.to_string()]);
    }
}

#[test]
fn a_copy_of_the_voter_count_too_is_stronger_evidence() {
    let copy_p = |same_voters: bool| {
        let mut rows = honest_kabupaten("3201", 10, 8, 6, 6);
        rows[31].votes = rows[30].votes.clone();
        rows[31].voters = rows[30].voters.map(|v| if same_voters { v } else { v + 7 });
        let analysis = run(&rows);
        let s = score(&analysis, &rows[31].tps.to_string());
        let copied = s.tests.iter().find(|t| t.code == "F_COPIED").unwrap();
        (copied.p, copied.en.contains("and voters"))
    };
    let (pairs_only, said_pairs_only) = copy_p(false);
    let (with_voters, said_with_voters) = copy_p(true);
    assert!(!said_pairs_only && said_with_voters);
    // The voter tie's chance is measured on the kabupaten's TPS (here about 1 in 3 differ from their
    // valid votes by the same number), so it divides the p-value by about that.
    assert!(
        with_voters < pairs_only * 0.6,
        "{with_voters} vs {pairs_only}"
    );
    assert!(
        with_voters > pairs_only * 0.05,
        "{with_voters} vs {pairs_only}"
    );
}

#[test]
fn round_numbers_are_reported_but_alone_are_weak() {
    let mut rows = honest_kabupaten("3201", 10, 8, 6, 7);
    rows[10].votes = vec![60, 110, 30];
    rows[10].voters = Some(204);
    let settings = Settings {
        report_p: 0.01,
        ..Settings::default()
    };
    let analysis = analyze(&rows, &pairs(), &settings).unwrap();
    let s = score(&analysis, &rows[10].tps.to_string());
    let round = s
        .tests
        .iter()
        .find(|t| t.code == "F_ROUND")
        .expect("reported");
    assert!((round.p - 1e-3).abs() < 1e-12);
}

#[test]
fn a_disagreeing_copy_is_always_flagged_even_in_noken() {
    let mut rows = honest_kabupaten("9401", 3, 3, 3, 8);
    rows[4].disagreeing_copies = true;
    let analysis = run(&rows);
    let s = score(&analysis, &rows[4].tps.to_string());
    assert!(s.flagged);
    assert_eq!(codes(s), vec!["F_COPY_DISAGREES"]);
    assert_eq!(analysis.tps.iter().filter(|s| s.flagged).count(), 1);
}

#[test]
fn digit_tests_say_when_they_do_not_apply_and_pass_honest_regions() {
    let small = run(&honest_kabupaten("3201", 2, 3, 4, 9));
    let region = small.regions.iter().find(|r| r.region == "3201").unwrap();
    assert!(region.tests.iter().all(|t| !t.applicable && t.p.is_none()));
    assert!(region.tests[0].en.contains("not applicable"));

    let large = run(&honest_kabupaten("3201", 12, 10, 8, 10));
    let region = large.regions.iter().find(|r| r.region == "3201").unwrap();
    assert!(region.tests.iter().all(|t| t.applicable));
    assert!(!region.flagged, "{:?}", region.tests);
    let fingerprint = region.fingerprint.as_ref().expect("enough TPS");
    assert!(fingerprint.extreme < 0.01, "{fingerprint:?}");
    let total: u32 = fingerprint.cells.iter().map(|c| c[2]).sum();
    assert_eq!(total as usize, 12 * 10 * 8);
}

#[test]
fn extreme_fraud_shows_in_the_fingerprint() {
    let mut rows = honest_kabupaten("3201", 12, 10, 8, 11);
    // One TPS in ten: everyone voted, nearly all for the region's winner.
    for row in rows.iter_mut().step_by(10) {
        let dpt = row.dpt.unwrap();
        row.voters = Some(dpt);
        row.votes = vec![2, dpt - 4, 2];
    }
    let analysis = run(&rows);
    let region = analysis
        .regions
        .iter()
        .find(|r| r.region == "3201")
        .unwrap();
    let fingerprint = region.fingerprint.as_ref().unwrap();
    assert!(
        (0.05..0.2).contains(&fingerprint.extreme),
        "{fingerprint:?}"
    );
}

#[test]
fn one_digit_readings_undo_sirekap_misreads() {
    assert!(one_digit_readings(385).contains(&85));
    assert!(one_digit_readings(941).contains(&62) || one_digit_readings(941).contains(&41));
    assert!(one_digit_readings(825).contains(&25));
    assert!(!one_digit_readings(7).contains(&7));
}

#[test]
fn bad_input_gets_a_clear_error() {
    let mut rows = honest_kabupaten("3201", 1, 1, 2, 12);
    rows[1].votes.pop();
    assert!(matches!(
        analyze(&rows, &pairs(), &Settings::default()),
        Err(ForensicsError::PairCountDiffers { .. })
    ));
    assert_eq!(
        analyze(&rows, &[], &Settings::default()).unwrap_err(),
        ForensicsError::NoPairs
    );
}
