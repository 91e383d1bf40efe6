//! Properties of generated elections: honest forms always pass, every injected fault is caught by the
//! rule `truth.json` names (and nothing else is rejected), and generation is deterministic.

use sha2::Digest as _;
use std::path::PathBuf;

use proptest::prelude::*;
use saksi_election::checker::{Checker, Outcome};
use saksi_election::{Election, Registry};
use saksi_gen::{generate, Config, FaultKind};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "saksi-gen-test-{}-{name}-{}",
            std::process::id(),
            rand_suffix()
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Generates and checks an election; returns (truth JSON, outcomes in line order).
fn generate_and_check(config: &Config) -> (serde_json::Value, Vec<Outcome>) {
    let dir = TempDir::new("check");
    generate(config, &dir.0, &|_, _| {}).unwrap();
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("truth.json")).unwrap()).unwrap();
    let registry = Registry::load_dir(&dir.0.join("registry")).unwrap();
    let election = Election::pemilu_2024();
    let text = std::fs::read_to_string(dir.0.join("forms.ndjson")).unwrap();
    let lines: Vec<(usize, &[u8])> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.as_bytes()))
        .collect();
    let outcomes = Checker::new(&registry, &election).check(&lines);
    (truth, outcomes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn honest_forms_always_pass(seed in any::<u64>(), tps in 30usize..2500) {
        let (truth, outcomes) = generate_and_check(&Config { tps, seed, fault_rate: 0.0, photos: false, forensic_rate: 0.0 });
        prop_assert_eq!(truth["faults"].as_array().unwrap().len(), 0);
        prop_assert_eq!(outcomes.len(), tps);
        for (i, outcome) in outcomes.iter().enumerate() {
            match outcome {
                Outcome::Checked { verdict, .. } => prop_assert!(verdict.accepted(), "line {}: {:?}", i + 1, verdict),
                Outcome::Malformed(e) => prop_assert!(false, "line {} malformed: {}", i + 1, e),
            }
        }
    }

    #[test]
    fn every_injected_fault_is_caught_by_its_rule(seed in any::<u64>(), tps in 200usize..2500) {
        // The highest rate the generator allows: about one TPS in nine gets each kind of fault.
        let config = Config { tps, seed, fault_rate: 1.0 / FaultKind::ALL.len() as f64 * 0.9, photos: false, forensic_rate: 0.0 };
        let (truth, outcomes) = generate_and_check(&config);
        let mut expected: std::collections::HashMap<usize, String> = std::collections::HashMap::new();
        for fault in truth["faults"].as_array().unwrap() {
            expected.insert(fault["line"].as_u64().unwrap() as usize, fault["rule"].as_str().unwrap().to_string());
        }
        prop_assert!(expected.len() > tps / 4, "too few faults injected: {}", expected.len());
        prop_assert_eq!(outcomes.len(), truth["forms_lines"].as_u64().unwrap() as usize);
        for (i, outcome) in outcomes.iter().enumerate() {
            let line = i + 1;
            let Outcome::Checked { verdict, .. } = outcome else { panic!("line {line} malformed") };
            match expected.get(&line) {
                Some(rule) => prop_assert!(
                    verdict.rejecting_codes().contains(&rule.as_str()),
                    "line {}: expected {}, got {:?}", line, rule, verdict.rejecting_codes()
                ),
                None => prop_assert!(verdict.accepted(), "line {}: honest form rejected: {:?}", line, verdict),
            }
        }
    }
}

#[test]
fn generation_is_deterministic() {
    let (a, b) = (TempDir::new("a"), TempDir::new("b"));
    let config = Config {
        tps: 3000,
        seed: 7,
        fault_rate: 0.01,
        photos: true,
        forensic_rate: 0.01,
    };
    generate(&config, &a.0, &|_, _| {}).unwrap();
    generate(&config, &b.0, &|_, _| {}).unwrap();
    for file in [
        "forms.ndjson",
        "registry/tps.csv",
        "registry/regions.csv",
        "truth.json",
        "election.json",
    ] {
        assert!(
            std::fs::read(a.0.join(file)).unwrap() == std::fs::read(b.0.join(file)).unwrap(),
            "{file} differs"
        );
    }
    // Every photo a form names exists, is a PNG and hashes to its name; both runs wrote the same.
    let forms = std::fs::read_to_string(a.0.join("forms.ndjson")).unwrap();
    let mut named = 0;
    for line in forms.lines().take(200) {
        let form: serde_json::Value = serde_json::from_str(line).unwrap();
        for digest in form["form"]["evidence"].as_array().unwrap() {
            let hex = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
            let path = format!("photos/sha256/{}/{hex}", &hex[..2]);
            let photo = std::fs::read(a.0.join(&path)).unwrap();
            assert!(photo.starts_with(b"\x89PNG"));
            let digest: String = sha2::Sha256::digest(&photo)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(digest, hex);
            assert_eq!(photo, std::fs::read(b.0.join(&path)).unwrap());
            named += 1;
        }
    }
    assert_eq!(named, 600);
}

#[test]
fn national_plan_matches_2024() {
    let regions = Registry::embedded_regions();
    let planned = saksi_gen::plan_tps(&regions, &Config::default()).unwrap();
    assert_eq!(planned.len(), 823_220);
    let overseas = planned
        .iter()
        .filter(|(_, kind)| kind.is_overseas())
        .count();
    assert_eq!(overseas, 3_059);
    let khusus = planned
        .iter()
        .filter(|(_, kind)| *kind == saksi_election::TpsKind::Khusus)
        .count();
    assert!((1500..2200).contains(&khusus), "{khusus} TPS khusus");
    // Every domestic village has at least one TPS when there are enough TPS.
    let villages: std::collections::HashSet<_> = planned
        .iter()
        .map(|(code, _)| code.parent().unwrap())
        .collect();
    assert!(villages.len() > 83_000);
}
