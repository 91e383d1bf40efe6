//! The server end to end: a real `saksi serve` process over a real socket. Each kind of submission
//! gets its documented answer; totals at every level equal a recomputation from the log's entries;
//! receipts verify offline; the served log verifies with Go's sumdb where Go is installed; a restart
//! rebuilds the same state.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use saksi_election::form::{Correction, SignedForm};
use saksi_election::Code;
use saksi_tlog::hash::leaf_hash;
use saksi_tlog::note::Verifier;
use saksi_tlog::tile::{self, Tile, TileKind};
use saksi_tlog::tproof::TlogProof;
use serde_json::Value;

use crate::util::{gen_and_init, get_json, http, saksi, text, Server, TempDir};

const SEED: u64 = 77;

fn forms(dir: &TempDir) -> Vec<SignedForm> {
    std::fs::read_to_string(dir.0.join("election/forms.ndjson"))
        .unwrap()
        .lines()
        .map(|l| SignedForm::decode(l.as_bytes()).unwrap())
        .collect()
}

fn post(server: &Server, body: &[u8]) -> (u16, Value) {
    let (status, _, body) = http("POST", &format!("{}/api/v1/forms", server.base), body);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Recomputes every region's totals from the log's entries, the way an observer would.
fn recompute(server: &Server, size: u64) -> BTreeMap<String, [i64; 5]> {
    let mut current: HashMap<String, [i64; 5]> = HashMap::new();
    for index in 0..size {
        let (status, _, body) = http(
            "GET",
            &format!("{}/api/v1/entries/{index}", server.base),
            b"",
        );
        assert_eq!(status, 200);
        let entry: Value = serde_json::from_slice(&body).unwrap();
        if entry["type"] == "form" && entry["verdict"]["accepted"] == true {
            let form = &entry["form"];
            let counts = [
                form["votes"]["01"].as_i64().unwrap(),
                form["votes"]["02"].as_i64().unwrap(),
                form["votes"]["03"].as_i64().unwrap(),
                form["valid"].as_i64().unwrap(),
                form["invalid"].as_i64().unwrap(),
            ];
            current.insert(form["tps"].as_str().unwrap().to_string(), counts);
        }
    }
    let mut totals: BTreeMap<String, [i64; 5]> = BTreeMap::new();
    for (tps, counts) in current {
        for region in [
            String::new(),
            tps[..2].to_string(),
            tps[..4].to_string(),
            tps[..6].to_string(),
            tps[..10].to_string(),
        ] {
            let total = totals.entry(region).or_default();
            for (t, c) in total.iter_mut().zip(counts) {
                *t += c;
            }
        }
    }
    totals
}

fn api_counts(region: &Value) -> [i64; 5] {
    let t = &region["tally"];
    [
        t["votes"]["01"].as_i64().unwrap(),
        t["votes"]["02"].as_i64().unwrap(),
        t["votes"]["03"].as_i64().unwrap(),
        t["valid"].as_i64().unwrap(),
        t["invalid"].as_i64().unwrap(),
    ]
}

/// Copies the served log over HTTP into a directory, as a mirror would.
fn mirror(server: &Server, into: &Path) -> u64 {
    let (_, _, checkpoint) = http("GET", &format!("{}/log/checkpoint", server.base), b"");
    let text = String::from_utf8(checkpoint.clone()).unwrap();
    let size: u64 = text.lines().nth(1).unwrap().parse().unwrap();
    std::fs::create_dir_all(into.join("checkpoints")).unwrap();
    std::fs::write(into.join("checkpoint"), &checkpoint).unwrap();
    std::fs::write(into.join(format!("checkpoints/{size}")), &checkpoint).unwrap();
    let mut wanted = Vec::new();
    for level in 0..=tile::MAX_TILE_LEVEL {
        let count = tile::stored_hashes_at(level, size);
        if count == 0 {
            break;
        }
        for n in 0..count.div_ceil(256) {
            let width = (count - n * 256).min(256) as u16;
            wanted.push(Tile {
                kind: TileKind::Hashes { level },
                index: n,
                width,
            });
        }
    }
    for n in 0..size.div_ceil(256) {
        wanted.push(Tile {
            kind: TileKind::Entries,
            index: n,
            width: (size - n * 256).min(256) as u16,
        });
    }
    for tile in wanted {
        let (status, head, bytes) =
            http("GET", &format!("{}/log/{}", server.base, tile.path()), b"");
        assert_eq!(status, 200, "{}", tile.path());
        assert!(
            head.to_ascii_lowercase().contains("immutable"),
            "tiles are cacheable: {head}"
        );
        let path = into.join(tile.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    size
}

#[test]
fn submissions_totals_receipts_and_restart() {
    let dir = TempDir::new("server");
    let election = dir.path("election");
    let data = dir.path("data");
    let gen = saksi(&[
        "gen",
        "--out",
        &election,
        "--tps",
        "400",
        "--seed",
        &SEED.to_string(),
        "--fault-rate",
        "0",
    ]);
    assert!(gen.status.success(), "{}", text(&gen));
    let init = saksi(&[
        "init",
        "--data",
        &data,
        "--gen",
        &election,
        "--origin",
        "saksi.test/e2e",
    ]);
    assert!(init.status.success(), "{}", text(&init));
    let vkey = std::fs::read_to_string(dir.0.join("data/log.vkey"))
        .unwrap()
        .trim()
        .to_string();
    let verifier = Verifier::parse(&vkey).unwrap();

    let server = Server::start(&data);
    let forms = forms(&dir);
    let officer = |tps: Code| saksi_gen::officer_key(SEED, tps);

    // Valid: logged and accepted, with a receipt that verifies offline.
    let valid = &forms[0];
    let (status, body) = post(&server, &valid.encode());
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["accepted"], true);
    let index = body["index"].as_u64().unwrap();
    let receipt = TlogProof::parse(body["receipt"].as_str().unwrap()).unwrap();
    let (_, _, entry) = http(
        "GET",
        &format!("{}/api/v1/entries/{index}", server.base),
        b"",
    );
    receipt
        .verify(&leaf_hash(&entry), &verifier, &[], 0)
        .unwrap();

    // Identical resubmission: the original entry, no new one.
    let (status, again) = post(&server, &valid.encode());
    assert_eq!(
        (
            status,
            again["index"].as_u64(),
            again["duplicate"].as_bool()
        ),
        (200, Some(index), Some(true))
    );

    // Invalid arithmetic from the right officer: logged, rejected, with the rule and messages.
    let mut broken = forms[1].form.clone();
    broken.votes[0].1 += 10;
    let (status, body) = post(&server, &broken.clone().sign(&officer(broken.tps)).encode());
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["accepted"], false);
    assert!(
        body["rejected_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "VOTES_SUM" && r["id"].is_string()),
        "{body}"
    );

    // Forged signature: 401, not logged.
    let mut forged = forms[2].clone();
    forged.signature.0[5] ^= 1;
    let (status, body) = post(&server, &forged.encode());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("SIGNATURE_INVALID"))
    );

    // Signed by another TPS's officer: 403, not logged.
    let mut wrong = forms[3].form.clone();
    let other = forms[4].form.tps;
    wrong.signer = officer(other).public();
    let (status, body) = post(&server, &wrong.sign(&officer(other)).encode());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("SIGNER_NOT_ENROLLED"))
    );

    // Unknown TPS, malformed, oversized.
    let mut unknown = forms[5].form.clone();
    unknown.tps = Code::parse("1101012001999").unwrap();
    let (status, body) = post(&server, &unknown.sign(&officer(forms[5].form.tps)).encode());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("TPS_UNKNOWN"))
    );
    let (status, body) = post(&server, b"{\"form\": 1}");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("MALFORMED"))
    );
    let (status, _) = post(&server, &vec![b' '; 20_000]);
    assert_eq!(status, 413);

    // A second, different original for an accepted TPS: logged and rejected.
    let mut second = valid.form.clone();
    second.evidence.pop();
    let (status, body) = post(&server, &second.clone().sign(&officer(second.tps)).encode());
    assert_eq!(status, 201, "{body}");
    assert!(
        body["rejected_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "TPS_ALREADY_REPORTED"),
        "{body}"
    );

    // A correction by the kabupaten/kota commission: accepted, and the TPS's current result.
    let mut corrected = valid.form.clone();
    corrected.votes[0].1 -= 3;
    corrected.votes[1].1 += 3;
    corrected.correction = Some(Correction {
        reason: "recount in the PPK plenary".into(),
    });
    let corrector = saksi_gen::corrector_key(
        SEED,
        corrected
            .tps
            .ancestor(saksi_election::Level::KabKota)
            .unwrap(),
    );
    corrected.signer = corrector.public();
    let (status, body) = post(&server, &corrected.sign(&corrector).encode());
    assert_eq!(
        (status, body["accepted"].as_bool()),
        (201, Some(true)),
        "{body}"
    );
    let correction_index = body["index"].as_u64().unwrap();
    let tps = get_json(&format!("{}/api/v1/tps/{}", server.base, valid.form.tps));
    assert_eq!(tps["current"]["index"].as_u64(), Some(correction_index));
    let sources: Vec<&str> = tps["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, vec!["officer", "officer", "correction"]);
    assert_eq!(tps["current"]["evidence"].as_array().unwrap().len(), 3);
    // The site lists the correction with its reason, in the TPS's region and not elsewhere, and the
    // TPS page shows every version with the correction's reason.
    let tps_code = valid.form.tps.to_string();
    let (_, _, page) = http(
        "GET",
        &format!("{}/koreksi?wilayah={}", server.base, &tps_code[..4]),
        b"",
    );
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains(&format!("data-index=\"{correction_index}\"")),
        "{page}"
    );
    assert!(page.contains("recount in the PPK plenary"));
    let (_, _, elsewhere) = http("GET", &format!("{}/koreksi?wilayah=99", server.base), b"");
    assert!(!String::from_utf8(elsewhere)
        .unwrap()
        .contains("recount in the PPK plenary"));
    let (_, _, page) = http("GET", &format!("{}/tps/{tps_code}", server.base), b"");
    let page = String::from_utf8(page).unwrap();
    assert_eq!(page.matches("<tr data-index=").count(), 3, "three versions");
    assert!(page.contains("recount in the PPK plenary"));

    // The rest of the honest forms.
    for form in &forms[4..60] {
        let (status, body) = post(&server, &form.encode());
        assert_eq!(status, 201, "{body}");
    }

    // Totals at every level equal a recomputation from the log.
    let national = get_json(&format!("{}/api/v1/regions", server.base));
    let size = national["checkpoint"]["size"].as_u64().unwrap();
    let expected = recompute(&server, size);
    assert_eq!(api_counts(&national), expected[""]);
    for region in expected.keys().filter(|k| !k.is_empty()) {
        let api = get_json(&format!("{}/api/v1/regions/{region}", server.base));
        assert_eq!(api_counts(&api), expected[region], "region {region}");
        assert_eq!(api["checkpoint"]["size"].as_u64(), Some(size));
    }
    assert_eq!(national["tally"]["tps_total"], 400);
    assert_eq!(national["tally"]["rejected_entries"], 2);

    // The served log, mirrored over HTTP, verifies with Go's sumdb where Go is installed.
    let mirror_dir = dir.0.join("mirror");
    assert_eq!(mirror(&server, &mirror_dir), size);
    crate::util::go_verify(&mirror_dir, &vkey);
    // Nothing beyond the checkpoint is served.
    let (status, _, _) = http(
        "GET",
        &format!("{}/log/checkpoints/{}", server.base, size + 1),
        b"",
    );
    assert_eq!(status, 404);

    // Restart: the state is rebuilt from the log, identical.
    drop(server);
    let server = Server::start(&data);
    let after = get_json(&format!("{}/api/v1/regions", server.base));
    assert_eq!(after["tally"], national["tally"]);
    assert_eq!(after["checkpoint"], national["checkpoint"]);
    let (status, again) = post(&server, &valid.encode());
    assert_eq!(
        (status, again["index"].as_u64()),
        (200, Some(index)),
        "duplicates are still recognised after a restart"
    );
}

#[test]
fn import_is_idempotent_and_reports_by_rule() {
    let dir = TempDir::new("import");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "3000", "--seed", "5", "--fault-rate", "0.01"],
    );
    let forms = format!("{election}/forms.ndjson");
    let first = saksi(&["import", "--data", &data, &forms]);
    let report = text(&first);
    assert_eq!(first.status.code(), Some(1), "faults rejected: {report}");
    assert!(
        report.contains("rejections by rule:") && report.contains("VOTES_SUM"),
        "{report}"
    );
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("election/truth.json")).unwrap()).unwrap();
    let honest = truth["honest_forms"].as_u64().unwrap();
    assert!(report.contains(&format!("({honest} accepted")), "{report}");
    let second = saksi(&["import", "--data", &data, &forms]);
    let report = text(&second);
    assert!(
        report.contains(" 0 logged (0 accepted, 0 rejected"),
        "re-import adds nothing: {report}"
    );

    // Nothing logged is not success: a junk file, and another election's forms (unenrolled).
    let junk = dir.path("junk.ndjson");
    std::fs::write(&junk, "this is not a form\n{\"form\": 1}\n").unwrap();
    let out = saksi(&["import", "--data", &data, &junk]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("0 logged"), "{}", text(&out));
    let empty = dir.path("empty.ndjson");
    std::fs::write(&empty, "\n").unwrap();
    let out = saksi(&["import", "--data", &data, &empty]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let other = dir.path("other");
    let out = saksi(&["gen", "--out", &other, "--tps", "300", "--seed", "99"]);
    assert!(out.status.success());
    let out = saksi(&["import", "--data", &data, &format!("{other}/forms.ndjson")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("0 logged"), "{}", text(&out));
}

#[test]
fn import_decides_the_file_kind_by_decoding() {
    // A valid recap file written with ordinary JSON spacing is still read as recap forms.
    let dir = TempDir::new("import-kind");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "300", "--seed", "6", "--fault-rate", "0"],
    );
    let out = saksi(&[
        "import",
        "--data",
        &data,
        &format!("{election}/forms.ndjson"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let spaced: String = std::fs::read_to_string(dir.0.join("election/recap.ndjson"))
        .unwrap()
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            // serde_json's compact output, with a space after every separator a person would type.
            serde_json::to_string(&value)
                .unwrap()
                .replace("\":", "\": ")
                .replace(",\"", ", \"")
                + "\n"
        })
        .collect();
    let recaps = dir.path("recap-spaced.ndjson");
    std::fs::write(&recaps, spaced).unwrap();
    let out = saksi(&["import", "--data", &data, &recaps]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(!report.contains("MALFORMED"), "{report}");
    assert!(
        report.contains("recap") || report.contains("logged"),
        "{report}"
    );
}

#[test]
fn registry_changes_are_signed_log_entries() {
    let dir = TempDir::new("enroll");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "50", "--seed", "9", "--fault-rate", "0"],
    );
    let keygen = saksi(&["keygen", "--out", &dir.path("new.key")]);
    let public = String::from_utf8(keygen.stdout).unwrap().trim().to_string();
    let forms = forms(&dir);
    let mut form = forms[0].form.clone();
    let new_key = saksi_recap::keyfile::read_secret_key(&dir.0.join("new.key")).unwrap();
    form.signer = new_key.public();
    let signed = form.sign(&new_key).encode();
    {
        let server = Server::start(&data);
        assert_eq!(post(&server, &signed).0, 403, "not enrolled yet");
    }
    // The authority's key is not in the data directory: init put it beside it, to take offline.
    let authority = format!("{data}-authority/authority.key");
    assert!(std::path::Path::new(&authority).exists());
    assert!(!dir.0.join("data/keys/authority.key").exists());
    // Signed offline into a statement, then logged through the running server.
    let statement = dir.path("enrol.statement");
    let enroll = saksi(&[
        "enroll",
        "--authority-key",
        &authority,
        "--code",
        forms[0].form.tps.as_str(),
        "--key",
        &public,
        "--out",
        &statement,
    ]);
    assert!(enroll.status.success(), "{}", text(&enroll));
    let server = Server::start(&data);
    // A statement for a TPS that does not exist is refused before anything is logged; so is one
    // signed by anyone but the authority.
    let bad = dir.path("bad.statement");
    let out = saksi(&[
        "enroll",
        "--authority-key",
        &authority,
        "--code",
        "1101012001999",
        "--key",
        &public,
        "--out",
        &bad,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = saksi(&["log-statement", "--url", &server.base, &bad]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("STATEMENT_REFUSED"), "{}", text(&out));
    let forged = dir.path("forged.statement");
    let out = saksi(&[
        "enroll",
        "--authority-key",
        &dir.path("new.key"),
        "--code",
        forms[0].form.tps.as_str(),
        "--key",
        &public,
        "--out",
        &forged,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = saksi(&["log-statement", "--url", &server.base, &forged]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not signed by the authority"),
        "{}",
        text(&out)
    );
    let out = saksi(&["log-statement", "--url", &server.base, &statement]);
    assert!(out.status.success(), "{}", text(&out));
    // A statement is logged once: a copy cannot be replayed.
    let out = saksi(&["log-statement", "--url", &server.base, &statement]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("already in the log"), "{}", text(&out));
    let (status, body) = post(&server, &signed);
    assert_eq!(
        (status, body["accepted"].as_bool()),
        (201, Some(true)),
        "{body}"
    );
    // The enrolment is itself in the log, signed by the authority.
    let index = body["index"].as_u64().unwrap() - 1;
    let entry = get_json(&format!("{}/api/v1/entries/{index}", server.base));
    assert_eq!(entry["type"], "admin");
    assert_eq!(entry["statement"]["enrollments"][0][1], public);

    // A statement larger than one log entry is refused before it is logged, and the log goes on.
    drop(server);
    let authority_key = saksi_recap::keyfile::read_secret_key(Path::new(&authority)).unwrap();
    let region = saksi_election::Code::parse(&forms[0].form.tps.as_str()[..4]).unwrap();
    let mut part = saksi_recap::entry::RegistryPart::default();
    for n in 0..1500u32 {
        let mut seed = [7u8; 32];
        seed[..4].copy_from_slice(&n.to_le_bytes());
        part.correctors.push((
            region,
            saksi_election::sign::SecretKey::from_seed(seed).public(),
        ));
    }
    let huge = saksi_recap::entry::Admin::Registry(part)
        .sign(&authority_key)
        .encode();
    assert!(huge.len() > 65_535);
    let huge_file = dir.path("huge.statement");
    std::fs::write(&huge_file, &huge).unwrap();
    let out = saksi(&["log-statement", "--data", &data, &huge_file]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("larger than one log entry"),
        "{}",
        text(&out)
    );
    let out = saksi(&["log-statement", "--data", &data, &bad]);
    assert!(
        text(&out).contains("STATEMENT") || text(&out).contains("refused"),
        "{}",
        text(&out)
    );

    // A server never runs with the authority's secret beside its log.
    std::fs::copy(&authority, dir.0.join("data/keys/authority.key")).unwrap();
    let out = saksi(&["serve", "--data", &data, "--addr", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("must not be on the server"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_writer_holds_the_points_of_every_key_that_signs_forms() {
    // Decompressed once when the registry enrols them, not once per form (issue 18): the points
    // are a cache, so what matters is that a writer has every form signer's, including a key the
    // authority enrols while it runs, and that a key's cached point is its decompression.
    let dir = TempDir::new("key-points");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "40", "--seed", "4"]);
    let registry = saksi_election::Registry::load_dir(&dir.0.join("election/registry")).unwrap();
    let signers: Vec<saksi_election::sign::PublicKey> = registry
        .all_tps()
        .iter()
        .flat_map(|t| t.officers.iter().copied())
        .chain(
            registry
                .correctors()
                .flat_map(|(_, keys)| keys.iter().copied()),
        )
        .collect();
    assert!(signers.len() >= 40);
    let held = |engine: &saksi_recap::engine::Engine, key: &saksi_election::sign::PublicKey| {
        let shared = engine.shared();
        let points = shared.key_points.read().unwrap();
        points.get(key).map(|point| {
            let fresh = saksi_election::sign::KeyPoint::decompress(key).unwrap();
            format!("{point:?}") == format!("{fresh:?}")
        })
    };
    use saksi_recap::engine::KeyPointsFill;
    // A tool that checks no signature pays for no point.
    let mut engine = saksi_recap::engine::Engine::open(Path::new(&data)).unwrap();
    assert_eq!(engine.shared().key_points.read().unwrap().len(), 0);
    // An import holds them all before its first form.
    engine.hold_key_points(KeyPointsFill::Now);
    for key in &signers {
        assert_eq!(held(&engine, key), Some(true), "{key:?}");
    }
    // A new officer enrolled while the writer runs.
    let authority = saksi_recap::keyfile::read_secret_key(Path::new(&format!(
        "{data}-authority/authority.key"
    )))
    .unwrap();
    let enrol = |engine: &mut saksi_recap::engine::Engine, tps: usize, seed: u8| {
        let officer = saksi_election::sign::SecretKey::from_seed([seed; 32]).public();
        assert_eq!(held(engine, &officer), None);
        let mut part = saksi_recap::entry::RegistryPart::default();
        part.enrollments
            .push((registry.all_tps()[tps].code, officer));
        let statement = saksi_recap::entry::Admin::Registry(part).sign(&authority);
        engine.submit_statement(&statement.encode()).unwrap();
        officer
    };
    let officer = enrol(&mut engine, 0, 42);
    assert_eq!(held(&engine, &officer), Some(true));
    // A standby checks no signature until it takes over, and pays for no point until then.
    drop(engine);
    let mut engine = saksi_recap::engine::Engine::open_standby_in(
        Path::new(&data),
        &saksi_recap::engine::LogStore::Dir,
    )
    .unwrap();
    engine.hold_key_points(KeyPointsFill::Background);
    engine.shared().wait_for_key_points();
    assert_eq!(engine.shared().key_points.read().unwrap().len(), 0);
    drop(engine);
    // A server fills them on a thread of its own, the enrolled officer's too.
    let mut engine = saksi_recap::engine::Engine::open(Path::new(&data)).unwrap();
    engine.hold_key_points(KeyPointsFill::Background);
    engine.shared().wait_for_key_points();
    assert_eq!(held(&engine, &officer), Some(true));
    for key in &signers {
        assert_eq!(held(&engine, key), Some(true), "{key:?}");
    }
    // A key enrolled while a server runs is added in the background as well.
    let another = enrol(&mut engine, 1, 43);
    engine.shared().wait_for_key_points();
    assert_eq!(held(&engine, &another), Some(true));
}

#[test]
fn a_transcription_missing_valid_votes_is_counted_as_unreported_not_zero() {
    let dir = TempDir::new("unreported");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "30", "--seed", "9", "--fault-rate", "0"],
    );
    let tps_csv = std::fs::read_to_string(dir.0.join("election/registry/tps.csv")).unwrap();
    let tps: Vec<&str> = tps_csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .take(2)
        .collect();
    let header = "kode_tps,kode_prov,kode_kab,kode_kec,kode_kel,no_tps,paslon_01,paslon_02,paslon_03,dpt_j,dpt_l,dpt_p,pengguna_dpt_j,pengguna_dpt_l,pengguna_dpt_p,pengguna_dptb_j,pengguna_dptb_l,pengguna_dptb_p,pengguna_dpk_j,pengguna_dpk_l,pengguna_dpk_p,pengguna_total_j,pengguna_total_l,pengguna_total_p,suara_sah,suara_tidak_sah,suara_total,ts,img1,img2,img3";
    let row = |code: &str, votes: [i64; 3], valid: &str| {
        format!(
            "{code},{},{},{},{},{},{},{},{},,,,,,,,,,,,,,,,{valid},,,2024-02-20 13:00:00,,,",
            &code[..2],
            &code[..4],
            &code[..6],
            &code[..10],
            &code[10..],
            votes[0],
            votes[1],
            votes[2]
        )
    };
    // Only the pair counts for the first TPS (as many 2024 rows); the second reports valid too.
    let csv = format!(
        "{header}\n{}\n{}\n",
        row(tps[0], [50, 60, 70], ""),
        row(tps[1], [10, 20, 30], "60")
    );
    let file = dir.path("sirekap.csv");
    std::fs::write(&file, csv).unwrap();
    let out = saksi(&["import", "--data", &data, "--sirekap", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let server = Server::start(&data);
    let national = get_json(&format!("{}/api/v1/regions", server.base));
    let tally = &national["tally"];
    assert_eq!(tally["tps_reported"], 2, "{tally}");
    assert_eq!(tally["votes"]["01"], 60, "{tally}");
    // 60 valid votes reported; the first TPS's missing figure is not a zero but an unreported one.
    assert_eq!(tally["valid"], 60, "{tally}");
    assert_eq!(tally["unreported"]["valid"], 1, "{tally}");
    assert_eq!(tally["unreported"]["invalid"], 2, "{tally}");
    assert_eq!(tally["unreported"]["votes"], 0, "{tally}");
}
