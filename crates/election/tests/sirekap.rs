//! Sirekap's own JSON, read into sheets and checked. Skips when `../shared` is absent.

use std::path::{Path, PathBuf};

use saksi_election::code::Code;
use saksi_election::rules::{check_sheet, TpsFacts};
use saksi_election::sirekap::{sheet_from_tps_json, SirekapRow};
use saksi_election::{Election, TpsKind};

fn samples() -> Option<PathBuf> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sirekap-json-samples");
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
    let regular = Some(TpsFacts {
        kind: TpsKind::Regular,
        dpt: None,
    });

    let SirekapRow::Reported(sheet) =
        read(&dir, "hhcw_ppwp_tps_1101012001003.json", "1101012001003")
    else {
        panic!()
    };
    assert_eq!(
        sheet.votes,
        vec![
            ("01".into(), Some(202)),
            ("02".into(), Some(38)),
            ("03".into(), Some(7))
        ]
    );
    let verdict = check_sheet(&sheet, regular, &election);
    assert!(verdict.accepted(), "{verdict:?}");

    // An early snapshot of TPS 001: it added up then.
    let early = "hhcw_ppwp_tps_1101012001001_zakiego_dump.json";
    let SirekapRow::Reported(sheet) = read(&dir, early, "1101012001001") else {
        panic!()
    };
    assert!(check_sheet(&sheet, regular, &election).accepted());

    let not_digitized = "hhcw_ppwp_tps_1101012004002_not_digitized_abdshomad.json";
    assert!(matches!(
        read(&dir, not_digitized, "1101012004002"),
        SirekapRow::NotReported(_)
    ));
}

#[test]
fn kpu_registry_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/wilayah/kpu_sirekap_wilayah_ppwp.csv.gz");
    if !path.exists() {
        eprintln!("skipping: {} is absent", path.display());
        return;
    }
    let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
        std::fs::File::open(&path).unwrap(),
    ));
    let registry = saksi_election::Registry::from_kpu_wilayah(reader, "kpu").unwrap();
    use saksi_election::Level;
    assert_eq!(
        registry.region_count(Level::Provinsi),
        39,
        "38 provinces and Luar Negeri"
    );
    let domestic: Vec<_> = registry
        .all_tps()
        .iter()
        .filter(|t| !t.code.is_overseas())
        .collect();
    assert_eq!(domestic.len(), 820_161);
    assert_eq!(
        domestic
            .iter()
            .filter(|t| t.kind == TpsKind::Khusus)
            .count(),
        1_822
    );
    let overseas = registry.all_tps().iter().filter(|t| t.code.is_overseas());
    assert!(
        overseas.clone().any(|t| t.kind == TpsKind::Ksk)
            && overseas.clone().any(|t| t.kind == TpsKind::Pos)
    );
    // KPU's overseas city codes run past 99 with letters: 99AA.
    assert!(registry.region_name(Code::parse("99AA").unwrap()).is_some());
}
