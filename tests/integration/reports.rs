//! Citizens' reports through the real binary: filed with `saksi report` (a reporter key made on
//! first use, a photo uploaded first), its receipt checked by the command and again here offline;
//! listed with its text; forged, mismatched, oversized and misplaced reports get their documented
//! answers and change nothing; the same report twice is one entry; the log still verifies.

use saksi_election::report::{text_digest, Category, Report, ReportSubmission};
use saksi_election::sign::SecretKey;
use saksi_recap::entry::Entry;

use crate::util::{gen_and_init, get_json, http, saksi, text, Server, TempDir};

fn post(server: &Server, body: &[u8]) -> (u16, serde_json::Value) {
    let (status, _, body) = http("POST", &format!("{}/api/v1/reports", server.base), body);
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

fn log_size(server: &Server) -> u64 {
    get_json(&format!("{}/api/v1/log", server.base))["checkpoint"]["size"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_report_is_filed_with_a_receipt_and_bad_ones_change_nothing() {
    let dir = TempDir::new("reports");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "50"]);
    let server = Server::serve(&data, &["--rate-limit", "0", "--photo-rate", "0"]);
    let tps = std::fs::read_to_string(format!("{election}/registry/tps.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let photo = dir.path("photo.png");
    std::fs::write(
        &photo,
        saksi_gen::photo::photo_png(7, saksi_election::Code::parse(&tps).unwrap(), 1),
    )
    .unwrap();
    let key_file = dir.path("reporter.key");
    let out = saksi(&[
        "report",
        "--url",
        &server.base,
        "--tps",
        &tps,
        "--category",
        "counting",
        "--text",
        "Penghitungan dihentikan pukul 14.00.\nSaksi pasangan 02 diminta keluar.",
        "--photo",
        &photo,
        "--key",
        &key_file,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the receipt proves it is in the log"),
        "{}",
        text(&out)
    );
    assert!(
        std::path::Path::new(&key_file).exists(),
        "the reporter key was made"
    );

    // Listed under its TPS and its province, with its text and photo.
    let listed = get_json(&format!(
        "{}/api/v1/reports?region={}",
        server.base,
        &tps[..2]
    ));
    let item = &listed["reports"][0];
    assert_eq!(item["place"], tps.as_str());
    assert_eq!(item["category"]["code"], "counting");
    assert!(item["text"].as_str().unwrap().contains("Saksi pasangan 02"));
    assert_eq!(item["photos"].as_array().unwrap().len(), 1);
    let index = item["index"].as_u64().unwrap();

    // Offline: the entry is the reporter's signed report, and the receipt proves it under the
    // log key from the data directory.
    let (_, _, entry_bytes) = http(
        "GET",
        &format!("{}/api/v1/entries/{index}", server.base),
        b"",
    );
    let Entry::Report { report } = Entry::decode(&entry_bytes).unwrap() else {
        panic!("entry {index} is not a report");
    };
    assert!(report.signature_valid());
    let (_, _, receipt) = http(
        "GET",
        &format!("{}/api/v1/receipts/{index}", server.base),
        b"",
    );
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let verifier = saksi_tlog::note::Verifier::parse(vkey.trim()).unwrap();
    saksi_tlog::tproof::TlogProof::parse(&String::from_utf8(receipt).unwrap())
        .unwrap()
        .verify(
            &saksi_tlog::hash::leaf_hash(&entry_bytes),
            &verifier,
            &[],
            0,
        )
        .unwrap();

    // Bad reports: each refused with its answer, none logged.
    let before = log_size(&server);
    let key = SecretKey::from_seed([3; 32]);
    let make = |place: &str, text: &str| ReportSubmission {
        signed: Report {
            election: "pemilu-2024".into(),
            place: saksi_election::Code::parse(place).unwrap(),
            category: Category::MoneyPolitics,
            event_at: 1_707_800_000,
            filed_at: 1_707_900_000,
            text_sha256: text_digest(text),
            photos: vec![],
            reporter: key.public(),
        }
        .sign(&key),
        text: text.into(),
    };
    let mut forged = make(&tps, "Amplop dibagikan di depan TPS.");
    forged.signed.signature.0[0] ^= 1;
    let (status, body) = post(&server, &forged.encode());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("SIGNATURE_INVALID")),
        "{body}"
    );
    let mut swapped = make(&tps, "Amplop dibagikan di depan TPS.");
    swapped.text = "Teks lain.".into();
    let (status, body) = post(&server, &swapped.encode());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("MALFORMED")),
        "{body}"
    );
    let hidden_mark = make(&tps, "Teks \u{202e}terbalik");
    let (status, _) = post(&server, &hidden_mark.encode());
    assert_eq!(status, 400);
    let (status, _) = post(&server, &vec![b' '; 20_000]);
    assert_eq!(status, 413);
    let nowhere = make("1101012999", "Di desa yang tidak ada.");
    let (status, body) = post(&server, &nowhere.encode());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("REPORT_PLACE_UNKNOWN")),
        "{body}"
    );
    assert_eq!(log_size(&server), before, "nothing refused was logged");

    // A good one, twice: one entry.
    let good = make(&tps[..4], "Amplop dibagikan di depan TPS.");
    let (status, first) = post(&server, &good.encode());
    assert_eq!(status, 201, "{first}");
    let (status, again) = post(&server, &good.encode());
    assert_eq!(
        (status, again["duplicate"].as_bool()),
        (200, Some(true)),
        "{again}"
    );
    assert_eq!(first["index"], again["index"]);

    // Moderation in the open: the authority enrols a moderator; a status, then a hide: the text
    // and photo stop being served while the entry, its digests and the moderation stay public.
    let moderator_file = dir.path("moderator.key");
    let moderator = SecretKey::from_seed([8; 32]);
    std::fs::write(
        &moderator_file,
        saksi_recap::keyfile::secret_key_text(&moderator),
    )
    .unwrap();
    let authority = format!("{data}-authority/authority.key");
    let out = saksi(&[
        "enroll",
        "--authority-key",
        &authority,
        "--moderator",
        "--key",
        &moderator.public().to_base64(),
        "--url",
        &server.base,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let index_text = index.to_string();
    let moderate = |key: &str, action: &[&str]| {
        let mut args = vec![
            "moderate",
            "--key",
            key,
            "--report",
            &index_text,
            "--url",
            &server.base,
        ];
        args.extend_from_slice(action);
        saksi(&args)
    };
    let out = moderate(
        &moderator_file,
        &[
            "--status",
            "under_review",
            "--note",
            "diteruskan ke Bawaslu",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Not a moderator: refused, nothing logged.
    let before = log_size(&server);
    let out = moderate(&key_file, &["--hide", "spam"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(log_size(&server), before);
    // Restoring what is not hidden is refused too.
    assert_eq!(
        moderate(&moderator_file, &["--restore"]).status.code(),
        Some(1)
    );
    let out = moderate(
        &moderator_file,
        &["--hide", "personal_data", "--note", "names a voter"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let listed = get_json(&format!("{}/api/v1/reports?region={tps}", server.base));
    let item = &listed["reports"][0];
    assert_eq!(item["text"], serde_json::Value::Null, "{item}");
    assert_eq!(item["hidden"]["reason"], "personal_data");
    assert_eq!(item["status"]["status"], "under_review");
    assert!(item["text_sha256"].is_string() && item["photos"][0].is_string());
    let photo_hex = item["photos"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let (status, _, _) = http(
        "GET",
        &format!("{}/evidence/sha256/{photo_hex}", server.base),
        b"",
    );
    assert_eq!(status, 451);
    let (status, _, still) = http(
        "GET",
        &format!("{}/api/v1/entries/{index}", server.base),
        b"",
    );
    assert_eq!((status, &still), (200, &entry_bytes), "the entry stays");
    let summary = get_json(&format!("{}/api/v1/moderation", server.base));
    assert_eq!(
        summary["hidden_by_moderator"][moderator.public().to_base64()],
        1
    );
    assert_eq!(summary["hidden_by_province"][&tps[..2]], 1);
    // Restored: served again.
    let out = moderate(
        &moderator_file,
        &["--restore", "--note", "the name was a candidate's"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let listed = get_json(&format!("{}/api/v1/reports?region={tps}", server.base));
    assert!(listed["reports"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Saksi pasangan 02"));
    let (status, _, _) = http(
        "GET",
        &format!("{}/evidence/sha256/{photo_hex}", server.base),
        b"",
    );
    assert_eq!(status, 200);
    let summary = get_json(&format!("{}/api/v1/moderation", server.base));
    assert_eq!(summary["hidden_by_moderator"], serde_json::json!({}));

    let out = saksi(&["verify", "--url", &server.base, "--vkey", vkey.trim()]);
    assert!(out.status.success(), "{}", text(&out));
}
