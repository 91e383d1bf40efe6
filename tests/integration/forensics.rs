//! `saksi audit forensics`: flags explained, through the real binary, on Sirekap rows (constructed and
//! real) and on a data directory.

use crate::util::*;

const HEADER: &str = "kode_tps,kode_prov,kode_kab,kode_kec,kode_kel,no_tps,paslon_01,paslon_02,paslon_03,dpt_j,dpt_l,dpt_p,pengguna_dpt_j,pengguna_dpt_l,pengguna_dpt_p,pengguna_dptb_j,pengguna_dptb_l,pengguna_dptb_p,pengguna_dpk_j,pengguna_dpk_l,pengguna_dpk_p,pengguna_total_j,pengguna_total_l,pengguna_total_p,suara_sah,suara_tidak_sah,suara_total,ts,img1,img2,img3";

/// One consistent Sirekap row: DPT, voters (all from the DPT list), 2 invalid ballots.
fn row(code: &str, votes: [u32; 3], dpt: u32) -> String {
    let valid: u32 = votes.iter().sum();
    let voters = valid + 2;
    let (dl, dp) = (dpt / 2, dpt - dpt / 2);
    let (vl, vp) = (voters / 2, voters - voters / 2);
    format!(
        "{code},{},{},{},{},{},{},{},{},{dpt},{dl},{dp},{voters},{vl},{vp},0,0,0,0,0,0,{voters},{vl},{vp},{valid},2,{voters},2024-02-20 13:00:00,,,",
        &code[..2], &code[..4], &code[..6], &code[..10], &code[10..],
        votes[0], votes[1], votes[2]
    )
}

/// A kecamatan of 6 desa x 8 TPS whose shares vary a little, as real ones do.
fn kecamatan_rows() -> Vec<(String, [u32; 3], u32)> {
    let mut rows = Vec::new();
    for desa in 0..6u32 {
        for tps in 0..8u32 {
            let wobble = (desa * 7 + tps * 13) % 11;
            let a = 50 + wobble * 2 + desa;
            let b = 110 + (tps * 5) % 17;
            let c = 30 + (wobble * 3) % 13;
            let dpt = 230 + (desa * 11 + tps * 3) % 40;
            let code = format!("510101{:04}{:03}", 2001 + desa, tps + 1);
            rows.push((code, [a, b, c], dpt));
        }
    }
    rows
}

#[test]
fn a_misread_in_sirekap_rows_is_flagged_and_explained() {
    let dir = TempDir::new("forensics-sirekap");
    let file = dir.path("rows.csv");
    let mut rows = kecamatan_rows();
    // TPS 5101012003004: paslon 03's 35 read as 835 would break the rulebook (more votes than
    // DPT); 35 read as 185, with the other fields matching, is possible and still wrong.
    let target = 2 * 8 + 3;
    let original = rows[target].1[2];
    rows[target].1[2] = 100 + original;
    rows[target].1[1] -= 100;
    let mut text = format!("{HEADER}\n");
    for (code, votes, dpt) in &rows {
        text.push_str(&row(code, *votes, *dpt));
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();

    let out = saksi(&["audit", "forensics", "--sirekap", &file, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let flagged = json["tps"].as_array().unwrap();
    let code = &rows[target].0;
    let flag = flagged
        .iter()
        .find(|t| t["tps"] == code.as_str())
        .unwrap_or_else(|| panic!("{code} flagged: {json}"));
    assert!(flag["q"].as_f64().unwrap() <= 0.05);
    let tests = flag["tests"].as_array().unwrap();
    assert!(
        tests
            .iter()
            .any(|t| t["code"] == "F_SHARE" || t["code"] == "F_MISREAD"),
        "{flag}"
    );
    assert!(tests
        .iter()
        .all(|t| t["en"].is_string() && t["id"].is_string()));
    assert!(json["regions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["region"] == "5101"));

    // The text report names it with its explanation; an FDR outside (0, 1) is refused (exit 2).
    let out = saksi(&["audit", "forensics", "--sirekap", &file]);
    let report = crate::util::text(&out);
    assert!(
        report.contains(code.as_str()) && report.contains("predict about"),
        "{report}"
    );
    let out = saksi(&["audit", "forensics", "--sirekap", &file, "--fdr", "1.5"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn real_2024_rows_are_scored_with_few_flags() {
    let Some(shared) = shared_data() else { return };
    let bali = shared.join("sirekap-2024/pilpres_tps_51-bali.csv.gz");
    let out = saksi(&[
        "audit",
        "forensics",
        "--sirekap",
        &bali.display().to_string(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let regular = json["rows_by_stratum"]["regular"].as_u64().unwrap();
    let flagged = json["tps"].as_array().unwrap().len() as u64;
    assert!(regular > 5_000, "{regular}");
    // Flags are leads, under a tenth of rows even in Bali, whose rows flag most (docs/forensics.md has the measured rates).
    assert!(flagged * 10 < regular, "{flagged} of {regular}");
    assert!(flagged > 0, "real rows carry real misreads");
}

/// The TPS whose official result a poll witness's copy disagrees with, per `saksi audit copies`.
fn disagreeing_tps(data: &str) -> std::collections::BTreeSet<String> {
    let out = saksi(&["audit", "copies", "--data", data, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|d| d["tps"].as_str().unwrap().to_string())
        .collect()
}

fn copy_flags(tps: &serde_json::Value) -> std::collections::BTreeSet<String> {
    tps.as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["tests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["code"] == "F_COPY_DISAGREES")
        })
        .map(|t| t["tps"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_data_directory_and_the_server_flag_every_disagreeing_copy() {
    let dir = TempDir::new("forensics-data");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "3000", "--fault-rate", "0.02"]);
    import(&data, &format!("{election}/forms.ndjson"), 1);
    import(&data, &format!("{election}/copies.ndjson"), 1);
    let disagreeing = disagreeing_tps(&data);
    assert!(
        !disagreeing.is_empty(),
        "the election injects disagreements"
    );

    let out = saksi(&["audit", "forensics", "--data", &data, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let scored: u64 = json["rows_by_stratum"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    // About one TPS in ten carries an injected fault the rulebook rejects; the rest are scored.
    assert!(scored >= 2_400, "{scored}");
    // Every TPS a poll witness contradicts is flagged, with that as its evidence (a disagreeing copy
    // of a result the rulebook rejected has no accepted result to flag).
    let flagged = copy_flags(&json["tps"]);
    assert!(
        flagged.is_subset(&disagreeing),
        "{flagged:?} vs {disagreeing:?}"
    );
    assert!(
        flagged.len() * 10 >= disagreeing.len() * 8,
        "{flagged:?} vs {disagreeing:?}"
    );

    // The server scores the same log in the background and answers with the log size it reflects.
    let server = Server::start(&data);
    let url = format!("{}/api/v1/flags", server.base);
    let started = std::time::Instant::now();
    let answer = loop {
        let (status, _, body) = http("GET", &url, b"");
        if status == 200 {
            break serde_json::from_slice::<serde_json::Value>(&body).unwrap();
        }
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
        assert!(
            started.elapsed().as_secs() < 60,
            "no scoring within a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(answer["log_size"], answer["current_log_size"]);
    assert_eq!(copy_flags(&answer["tps"]), flagged);
    assert!(answer["note"]
        .as_str()
        .unwrap()
        .contains("never a rejection"));

    // By region: only that province's TPS and regions.
    let one = flagged.iter().next().unwrap();
    let province = &one[..2];
    let (status, _, body) = http("GET", &format!("{url}?region={province}"), b"");
    assert_eq!(status, 200);
    let by_region: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let tps = by_region["tps"].as_array().unwrap();
    assert!(tps.iter().any(|t| t["tps"] == one.as_str()));
    assert!(tps
        .iter()
        .all(|t| t["tps"].as_str().unwrap().starts_with(province)));
    assert!(by_region["regions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["region"].as_str().unwrap().starts_with(province)));
    // The site shows the same flags with their explanations, on the region and the TPS page.
    let (status, _, page) = http("GET", &format!("{}/wilayah/{province}", server.base), b"");
    let page = String::from_utf8_lossy(&page);
    assert_eq!(status, 200);
    assert!(
        page.contains("Tanda forensik") && page.contains(one.as_str()),
        "{page}"
    );
    let (status, _, page) = http("GET", &format!("{}/tps/{one}?lang=en", server.base), b"");
    let page = String::from_utf8_lossy(&page);
    assert_eq!(status, 200);
    assert!(
        page.contains("This TPS is flagged") && page.contains("F_COPY_DISAGREES"),
        "{page}"
    );
    assert!(page.contains("not a rejection"));

    // A bad region code is a clear 400 and a TPS code is not a region.
    assert_eq!(http("GET", &format!("{url}?region=x1"), b"").0, 400);
    assert_eq!(http("GET", &format!("{url}?region={one}"), b"").0, 400);
}

#[test]
fn the_generators_forensic_faults_are_found() {
    let dir = TempDir::new("forensics-gen");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(
        &election,
        &data,
        &[
            "--tps",
            "20000",
            "--fault-rate",
            "0",
            "--forensic-rate",
            "0.03",
        ],
    );
    // Every form passes the rules: these faults are for the statistics alone.
    import(&data, &format!("{election}/forms.ndjson"), 0);
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{election}/truth.json")).unwrap()).unwrap();
    let faults = truth["forensic_faults"].as_array().unwrap();
    let of_kind = |kind: &str| -> std::collections::BTreeSet<String> {
        faults
            .iter()
            .filter(|f| f["kind"] == kind)
            .map(|f| f["tps"].as_str().unwrap().to_string())
            .collect()
    };
    let (switched, stuffed, copied) =
        (of_kind("switching"), of_kind("stuffing"), of_kind("copied"));
    assert!(switched.len() > 100, "{}", switched.len());
    assert!(stuffed.len() > 50, "{}", stuffed.len());
    // A copy needs two TPS in one desa, rare in an election of 20,000 TPS spread over 83,000 desa.
    assert!(!copied.is_empty());

    // (TPS -> its tests' codes) of every TPS with q <= fdr.
    let flags_at = |fdr: &str| -> std::collections::BTreeMap<String, Vec<String>> {
        let out = saksi(&[
            "audit",
            "forensics",
            "--data",
            &data,
            "--fdr",
            fdr,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", crate::util::text(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["tps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let tests = t["tests"].as_array().unwrap().iter();
                let codes = tests.map(|x| x["code"].as_str().unwrap().to_string());
                (t["tps"].as_str().unwrap().to_string(), codes.collect())
            })
            .collect()
    };
    let flagged = flags_at("0.05");
    let found = |set: &std::collections::BTreeSet<String>| {
        set.iter().filter(|t| flagged.contains_key(*t)).count()
    };
    // Measured (seed 2024): 128 of 155 switched and 74 of 83 stuffed found; 25 other TPS flagged.
    assert!(
        found(&switched) * 10 >= switched.len() * 7,
        "{} of {}",
        found(&switched),
        switched.len()
    );
    assert!(
        found(&stuffed) * 10 >= stuffed.len() * 8,
        "{} of {}",
        found(&stuffed),
        stuffed.len()
    );
    let others = flagged
        .keys()
        .filter(|t| !switched.contains(*t) && !stuffed.contains(*t) && !copied.contains(*t))
        .count();
    assert!(others * 100 <= 20_000 / 2, "{others} untouched TPS flagged");
    // Each copy and its source carry F_COPIED. With three pairs of ~150 votes a tie has a chance of
    // about 2e-4, just short of FDR 5% among 20,000 TPS (found there in a national election: see
    // docs/forensics.md), so the evidence is checked at a loose FDR.
    let loose = flags_at("0.5");
    for fault in faults.iter().filter(|f| f["kind"] == "copied") {
        for tps in [&fault["tps"], &fault["from"]] {
            let tests = &loose[tps.as_str().unwrap()];
            assert!(tests.iter().any(|c| c == "F_COPIED"), "{tps}: {tests:?}");
        }
    }
}
