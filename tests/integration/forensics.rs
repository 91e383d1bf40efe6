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

#[test]
fn a_data_directory_is_scored() {
    let dir = TempDir::new("forensics-data");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "400", "--fault-rate", "0"]);
    import(&data, &format!("{election}/forms.ndjson"), 0);
    let out = saksi(&["audit", "forensics", "--data", &data, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let scored: u64 = json["rows_by_stratum"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(scored >= 390, "{json}");
}
