//! Catching inflation across the recapitulation levels: every injected inflation is reported with its
//! exact delta, nothing else on honest recaps; recap forms over HTTP and the discrepancies read back.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{gen_and_init, get_json, http, import, saksi, text, Server, TempDir};

fn key(item: &Value) -> (String, String, Option<String>) {
    (
        item["level"].as_str().unwrap().into(),
        item["region"].as_str().unwrap().into(),
        item["child"].as_str().map(String::from),
    )
}

#[test]
fn every_injected_inflation_is_reported_with_its_delta_and_nothing_else() {
    let dir = TempDir::new("recap");
    let election = dir.path("election");
    let data = dir.path("data");
    assert!(
        saksi(&["gen", "--out", &election, "--tps", "6000", "--seed", "21"])
            .status
            .success()
    );
    assert!(saksi(&["init", "--data", &data, "--gen", &election])
        .status
        .success());
    // Injected faults are rejected or refused: done, with exit 1.
    import(&data, &format!("{election}/forms.ndjson"), 1);
    let recaps = saksi(&[
        "import",
        "--data",
        &data,
        &format!("{election}/recap.ndjson"),
    ]);
    // Recaps whose total is not the sum of their rows are rejected, by a rule the rulebook lists.
    assert_eq!(recaps.status.code(), Some(1), "{}", text(&recaps));
    assert!(
        text(&recaps).contains("RECAP_TOTAL_SUM") && text(&recaps).contains("sum of its rows"),
        "{}",
        text(&recaps)
    );
    let audit = saksi(&["audit", "recap", "--data", &data, "--json"]);
    assert_eq!(audit.status.code(), Some(1), "discrepancies found: exit 1");
    let found: Vec<Value> = serde_json::from_slice(&audit.stdout).unwrap();
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("election/truth.json")).unwrap()).unwrap();
    let injected = truth["recap_inflation"].as_array().unwrap();
    assert!(injected.len() >= 5, "every kind injected at least once");
    let by_key: BTreeMap<_, _> = found.iter().map(|d| (key(d), d)).collect();
    assert_eq!(by_key.len(), found.len(), "one report per place");
    for item in injected {
        let reported = by_key
            .get(&key(item))
            .unwrap_or_else(|| panic!("not reported: {item}"));
        let delta: BTreeMap<String, i64> = reported["fields"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "voters")
            .map(|(k, v)| (k.clone(), v["delta"].as_i64().unwrap()))
            .collect();
        let expected: BTreeMap<String, i64> = item["delta"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
            .collect();
        assert_eq!(delta, expected, "{item}");
    }
    assert_eq!(
        found.len(),
        injected.len(),
        "nothing reported beyond what was injected"
    );
    // The same report from a copy of the log, verified as it is read.
    let from_copy = saksi(&[
        "audit",
        "recap",
        "--dir",
        &format!("{data}/log"),
        "--vkey",
        &format!("{data}/log.vkey"),
        "--json",
    ]);
    assert_eq!(from_copy.stdout, audit.stdout);

    // An honest election: nothing at all.
    let honest = dir.path("honest");
    let honest_data = dir.path("honest-data");
    gen_and_init(
        &honest,
        &honest_data,
        &["--tps", "2000", "--seed", "22", "--fault-rate", "0"],
    );
    import(&honest_data, &format!("{honest}/forms.ndjson"), 0);
    import(&honest_data, &format!("{honest}/recap.ndjson"), 0);
    let audit = saksi(&["audit", "recap", "--data", &honest_data, "--json"]);
    assert_eq!(audit.status.code(), Some(0), "{}", text(&audit));
    assert_eq!(
        serde_json::from_slice::<Vec<Value>>(&audit.stdout)
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn recap_forms_over_http_and_discrepancies_read_back() {
    let dir = TempDir::new("recap-http");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "800", "--seed", "4", "--fault-rate", "0"],
    );
    import(&data, &format!("{election}/forms.ndjson"), 0);
    let server = Server::start(&data);
    let recaps: Vec<saksi_election::recap::SignedRecap> =
        std::fs::read_to_string(dir.0.join("election/recap.ndjson"))
            .unwrap()
            .lines()
            .map(|l| saksi_election::recap::SignedRecap::decode(l.as_bytes()).unwrap())
            .collect();
    // An honest kecamatan recap: accepted, no discrepancy.
    let honest = recaps
        .iter()
        .find(|r| {
            r.form.level == saksi_election::recap::RecapLevel::Kecamatan && r.form.total.valid > 0
        })
        .unwrap();
    let (status, _, body) = http(
        "POST",
        &format!("{}/api/v1/recaps", server.base),
        &honest.encode(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let region = honest.form.region.unwrap().to_string();
    let logged: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        discrepancies_including(
            &server,
            &format!("region={region}"),
            logged["index"].as_u64().unwrap()
        )["discrepancies"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The same committee corrects it with 300 votes added to pair 02 in one desa: a correction that adds
    // up, accepted, and reported as inflation against the TPS below.
    let mut inflated = honest.form.clone();
    let row = inflated
        .rows
        .iter()
        .position(|r| r.figures.valid > 0)
        .unwrap();
    inflated.rows[row].figures.votes[1].1 += 300;
    inflated.rows[row].figures.valid += 300;
    inflated.total.votes[1].1 += 300;
    inflated.total.valid += 300;
    inflated.correction = Some("plenary".into());
    let key = saksi_gen::recap::recap_officer_key(4, inflated.region);
    let (status, _, body) = http(
        "POST",
        &format!("{}/api/v1/recaps", server.base),
        &inflated.clone().sign(&key).encode(),
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, body["accepted"].as_bool()),
        (201, Some(true)),
        "{body}"
    );
    let found = discrepancies_including(
        &server,
        &format!("level=kecamatan&region={region}"),
        body["index"].as_u64().unwrap(),
    );
    let items = found["discrepancies"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["kind"], "votes_added");
    assert_eq!(items[0]["fields"]["votes.02"]["delta"], 300);
    assert_eq!(
        items[0]["child"].as_str(),
        Some(inflated.rows[row].child.as_str())
    );
    let page = get_json(&format!("{}/api/v1/regions/{region}", server.base));
    assert_eq!(page["recap"]["discrepancies"].as_array().unwrap().len(), 1);
    // A recap from someone who is not the committee: 403, not logged; broken arithmetic: logged, rejected.
    let stranger = saksi_election::sign::SecretKey::from_seed([7; 32]);
    let mut forged = honest.form.clone();
    forged.signer = stranger.public();
    let (status, _, _) = http(
        "POST",
        &format!("{}/api/v1/recaps", server.base),
        &forged.sign(&stranger).encode(),
    );
    assert_eq!(status, 403);
    // A desa left out of a kabupaten/kota... here a kecamatan recap without one of its desa: rejected,
    // and the missing child is reported with the votes that vanished.
    let mut partial = recaps
        .iter()
        .find(|r| {
            r.form.level == saksi_election::recap::RecapLevel::Kecamatan
                && r.form
                    .rows
                    .iter()
                    .filter(|row| row.figures.valid > 0)
                    .count()
                    >= 1
                && r.form.region != honest.form.region
        })
        .unwrap()
        .form
        .clone();
    let dropped = partial
        .rows
        .iter()
        .position(|r| r.figures.valid > 0)
        .unwrap();
    let dropped_row = partial.rows.remove(dropped);
    let dropped_valid = dropped_row.figures.valid;
    let mut total = saksi_election::recap::Figures {
        votes: vec![("01".into(), 0), ("02".into(), 0), ("03".into(), 0)],
        ..Default::default()
    };
    for row in &partial.rows {
        total.add(&row.figures);
    }
    partial.total = total;
    let partial_key = saksi_gen::recap::recap_officer_key(4, partial.region);
    let (status, _, body) = http(
        "POST",
        &format!("{}/api/v1/recaps", server.base),
        &partial.clone().sign(&partial_key).encode(),
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        status == 201
            && body["rejected_by"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["code"] == "RECAP_CHILDREN"),
        "{body}"
    );
    let found = discrepancies_including(
        &server,
        &format!("region={}", partial.region.unwrap()),
        body["index"].as_u64().unwrap(),
    );
    let missing = &found["discrepancies"][0];
    assert_eq!(
        (missing["kind"].as_str(), missing["child"].as_str()),
        (Some("child_missing"), Some(dropped_row.child.as_str())),
        "{found}"
    );
    assert_eq!(
        missing["fields"]["valid"]["delta"].as_i64(),
        Some(-dropped_valid)
    );

    let mut broken = honest.form.clone();
    broken.total.invalid += 1;
    let (status, _, body) = http(
        "POST",
        &format!("{}/api/v1/recaps", server.base),
        &broken.sign(&key).encode(),
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, body["accepted"].as_bool()),
        (201, Some(false)),
        "{body}"
    );
    assert!(
        body["rejected_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "RECAP_TOTAL_SUM"),
        "{body}"
    );
}

/// `/api/v1/discrepancies?QUERY` once the view includes log entry `index`: the view is rebuilt at most
/// once a second and names the log size it reflects.
fn discrepancies_including(server: &Server, query: &str, index: u64) -> Value {
    let started = std::time::Instant::now();
    loop {
        let found = get_json(&format!("{}/api/v1/discrepancies?{query}", server.base));
        if found["log_size"].as_u64().unwrap() > index {
            return found;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{found}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A recap sent twice in one import batch is one entry, the second copy counted as already in the
/// log, exactly as a repeated TPS form is (before issue 12 it was refused as DUPLICATE instead).
#[test]
fn a_recap_repeated_in_one_batch_is_the_same_entry() {
    let dir = TempDir::new("recap-repeat");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "200", "--fault-rate", "0"]);
    let first = std::fs::read_to_string(dir.0.join("election/recap.ndjson"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let twice = dir.path("twice.ndjson");
    std::fs::write(&twice, format!("{first}\n{first}\n")).unwrap();
    let out = saksi(&["import", "--data", &data, &twice]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(
            "2 lines: 1 logged (1 accepted, 0 rejected by the rulebook), 1 already in the log"
        ),
        "{said}"
    );
    assert!(!said.contains("not logged"), "{said}");
}
