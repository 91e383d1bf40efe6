//! Sirekap's own JSON, read into sheets and checked. Skips when `../shared` is absent.

use std::path::{Path, PathBuf};

use saksi_election::code::Code;
use saksi_election::rules::{check_sheet, TpsFacts};
use saksi_election::sirekap::{sheet_from_tps_json, SirekapRow};
use saksi_election::{Election, TpsKind};

fn samples() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sirekap-json-samples");
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!("skipping: {} is absent", path.display());
        None
    }
}

fn read(dir: &Path, file: &str, tps: &str) -> SirekapRow {
    let json = std::fs::read(dir.join(file)).unwrap();
    sheet_from_tps_json(Code::parse(tps).unwrap(), &json, &Election::pemilu_2024()).unwrap()
}

#[test]
fn tps_json_samples() {
    let Some(dir) = samples() else { return };
    let election = Election::pemilu_2024();
    let regular = Some(TpsFacts { kind: TpsKind::Regular, dpt: None });

    let SirekapRow::Reported(sheet) = read(&dir, "hhcw_ppwp_tps_1101012001003.json", "1101012001003") else { panic!() };
    assert_eq!(sheet.votes, vec![("01".into(), Some(202)), ("02".into(), Some(38)), ("03".into(), Some(7))]);
    let verdict = check_sheet(&sheet, regular, &election);
    assert!(verdict.accepted(), "{verdict:?}");

    // An early snapshot of TPS 001: it added up then.
    let early = "hhcw_ppwp_tps_1101012001001_zakiego_dump.json";
    let SirekapRow::Reported(sheet) = read(&dir, early, "1101012001001") else { panic!() };
    assert!(check_sheet(&sheet, regular, &election).accepted());

    let not_digitized = "hhcw_ppwp_tps_1101012004002_not_digitized_abdshomad.json";
    assert!(matches!(read(&dir, not_digitized, "1101012004002"), SirekapRow::NotReported(_)));
}
