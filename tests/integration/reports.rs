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
            follows: None,
            withdraw: false,
            contact: None,
        }
        .sign(&key),
        text: text.into(),
        stamp: None,
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
    // A mirror keeps the reports' texts and photos, except what a moderator hides now (counted,
    // not an error): the good report's text is copied, the hidden one's withheld.
    let mirror = dir.path("mirror");
    let out = saksi(&[
        "mirror",
        "--url",
        &server.base,
        "--dir",
        &format!("{mirror}/log"),
        "--vkey",
        vkey.trim(),
        "--evidence",
        &format!("{mirror}/evidence"),
        "--reports",
        &format!("{mirror}/reports"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out)
            .contains("report texts: 2 named by the log, 1 copied, 0 held already, 1 withheld"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("1 withheld by moderators, 0 missing"),
        "{}",
        text(&out)
    );
    let (status, _, _) = http(
        "GET",
        &format!(
            "{}/api/v1/report-texts/sha256/{}",
            server.base,
            item["text_sha256"].as_str().unwrap()
        ),
        b"",
    );
    assert_eq!(status, 451);
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

/// The index in `saksi report`'s "log entry N" line.
fn filed_index(out: &std::process::Output) -> u64 {
    let all = text(out);
    let at = all.find("log entry ").expect("a log entry line") + "log entry ".len();
    all[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_reporter_follows_up_and_withdraws_and_contact_details_reach_only_the_oversight_body() {
    let dir = TempDir::new("report-thread");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "20"]);
    let server = Server::serve(&data, &["--rate-limit", "0"]);
    let tps = std::fs::read_to_string(format!("{election}/registry/tps.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    // The oversight body makes its key; the authority enrols its recipient.
    let identity = dir.path("bawaslu.age");
    let out = saksi(&["contact", "--new-identity", &identity]);
    assert!(out.status.success(), "{}", text(&out));
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let authority = format!("{data}-authority/authority.key");
    let out = saksi(&[
        "enroll",
        "--authority-key",
        &authority,
        "--oversight-recipient",
        &recipient,
        "--url",
        &server.base,
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let key = dir.path("reporter.key");
    let report = |extra: &[&str]| {
        let mut args = vec!["report", "--url", &server.base, "--key", &key];
        args.extend_from_slice(extra);
        saksi(&args)
    };
    let out = report(&[
        "--tps",
        &tps,
        "--category",
        "money_politics",
        "--text",
        "Amplop dibagikan malam sebelum pemungutan.",
        "--contact",
        "Siti Aminah, 0812-3456-7890",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let first = filed_index(&out);
    let (_, _, entry) = http(
        "GET",
        &format!("{}/api/v1/entries/{first}", server.base),
        b"",
    );
    let entry_text = String::from_utf8_lossy(&entry);
    assert!(entry_text.contains("\"contact\":"), "{entry_text}");
    assert!(!entry_text.contains("Siti") && !entry_text.contains("0812"));
    let out = saksi(&[
        "contact",
        "--identity",
        &identity,
        "--report",
        &first.to_string(),
        "--url",
        &server.base,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).trim(), "Siti Aminah, 0812-3456-7890");

    // A follow-up by the same key; another key's is refused; then the reporter withdraws it.
    let first_text = first.to_string();
    let out = report(&[
        "--follows",
        &first_text,
        "--text",
        "Pembagi amplop kembali pagi ini.",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let follow_up = filed_index(&out);
    let other_key = dir.path("other.key");
    let out = saksi(&[
        "report",
        "--url",
        &server.base,
        "--key",
        &other_key,
        "--follows",
        &first_text,
        "--text",
        "Saya juga melihat.",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("REPORT_NOT_REPORTER"), "{}", text(&out));
    let out = report(&[
        "--follows",
        &follow_up.to_string(),
        "--withdraw",
        "--text",
        "Salah orang; saya tarik laporan ini.",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let withdrawal = filed_index(&out);
    let out = report(&["--follows", &first_text, "--text", "Satu lagi."]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("REPORT_WITHDRAWN"), "{}", text(&out));

    let listed = get_json(&format!("{}/api/v1/reports?region={tps}", server.base));
    let items = listed["reports"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{listed}");
    assert_eq!(
        items[0]["follow_ups"],
        serde_json::json!([follow_up, withdrawal])
    );
    assert_eq!(items[0]["withdrawn"], withdrawal);
    assert_eq!(items[0]["contact"], "encrypted to the oversight body");
    assert_eq!(items[1]["follows"], first);
    assert_eq!(items[2]["withdraws"], first);
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let out = saksi(&["verify", "--url", &server.base, "--vkey", vkey.trim()]);
    assert!(out.status.success(), "{}", text(&out));
}
