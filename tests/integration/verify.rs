//! `saksi verify` and `saksi mirror` against honest and tampered logs: each kind of tampering is
//! caught with a precise message and exit code 1; an honest log verifies clean with exit code 0.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use saksi_election::sign::SecretKey;
use saksi_recap::entry::{Entry, RecordedVerdict};
use saksi_tlog::note::{self, Signer, Verifier};
use saksi_tlog::tproof::TlogProof;
use saksi_tlog::{DirStorage, Log, Storage};

use crate::util::{gen_and_init, http, import, saksi, text, Server, TempDir};

/// A small election, initialised and imported: (dir, data path, vkey).
fn election(name: &str) -> (TempDir, String, String) {
    let dir = TempDir::new(name);
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "600", "--seed", "3", "--fault-rate", "0.01"],
    );
    // Injected faults are rejected or refused: done, with exit 1.
    import(&data, &format!("{election}/forms.ndjson"), 1);
    let vkey = std::fs::read_to_string(dir.0.join("data/log.vkey"))
        .unwrap()
        .trim()
        .to_string();
    (dir, data, vkey)
}

fn verify(args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    let out = saksi(&all);
    (out.status.code(), text(&out))
}

fn copy(from: &str, to: &str) {
    let status = std::process::Command::new("cp")
        .args(["-a", from, to])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn honest_log_verifies_and_flipped_bytes_are_located() {
    let (dir, data, vkey) = election("verify-bytes");
    let log = format!("{data}/log");
    let (code, out) = verify(&["--dir", &log, "--vkey", &vkey]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("saksi verify: OK"), "{out}");

    // A byte flipped inside an entry of a full bundle.
    let bundle = dir.0.join("data/log/tile/entries/001");
    let original = std::fs::read(&bundle).unwrap();
    let mut bytes = original.clone();
    bytes[100] ^= 1;
    std::fs::write(&bundle, &bytes).unwrap();
    let (code, out) = verify(&["--dir", &log, "--vkey", &vkey]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("tile/0/001 does not match the entries"),
        "{out}"
    );
    std::fs::write(&bundle, &original).unwrap();

    // A byte flipped in a hash tile.
    let tile = dir.0.join("data/log/tile/0/000");
    let original = std::fs::read(&tile).unwrap();
    let mut bytes = original.clone();
    bytes[64] ^= 0x80;
    std::fs::write(&tile, &bytes).unwrap();
    let (code, out) = verify(&["--dir", &log, "--vkey", &vkey]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("tile/0/000 does not match the entries"),
        "{out}"
    );
    std::fs::write(&tile, &original).unwrap();

    // Could not check at all: exit 2.
    let (code, _) = verify(&["--dir", &dir.path("nothing-here"), "--vkey", &vkey]);
    assert_eq!(code, Some(2));
}

#[test]
fn rollback_and_split_view_are_caught_by_a_verifier_with_memory() {
    let (dir, data, vkey) = election("verify-history");
    let state = dir.path("verifier-state");
    let before = dir.path("before");
    copy(&data, &before);
    // The log grows by one registry change; the verifier sees it.
    let officer = SecretKey::from_seed([1; 32]).public().to_base64();
    let tps = std::fs::read_to_string(dir.0.join("election/registry/tps.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    assert!(saksi(&[
        "enroll",
        "--data",
        &data,
        "--authority-key",
        &format!("{data}-authority/authority.key"),
        "--code",
        &tps,
        "--key",
        &officer
    ])
    .status
    .success());
    let (code, out) = verify(&[
        "--dir",
        &format!("{data}/log"),
        "--vkey",
        &vkey,
        "--state",
        &state,
    ]);
    assert_eq!(code, Some(0), "{out}");
    // Shown the older copy later: a rollback.
    let (code, out) = verify(&[
        "--dir",
        &format!("{before}/log"),
        "--vkey",
        &vkey,
        "--state",
        &state,
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("rollback: the log now shows size"), "{out}");
    // The older copy grows differently to the same size, signed with the same log key: a split view.
    let other = SecretKey::from_seed([2; 32]).public().to_base64();
    assert!(saksi(&[
        "enroll",
        "--data",
        &before,
        "--authority-key",
        &format!("{data}-authority/authority.key"),
        "--code",
        &tps,
        "--key",
        &other
    ])
    .status
    .success());
    let (code, out) = verify(&[
        "--dir",
        &format!("{before}/log"),
        "--vkey",
        &vkey,
        "--state",
        &state,
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("split view: two checkpoints of size"), "{out}");
    // A mirror refuses to follow it too.
    let server = Server::start(&before);
    let mirror = dir.path("mirror");
    let first = saksi(&[
        "mirror",
        "--url",
        &server.base,
        "--dir",
        &mirror,
        "--vkey",
        &vkey,
    ]);
    assert!(first.status.success(), "{}", text(&first));
    drop(server);
    let server = Server::start(&data);
    let out = saksi(&[
        "mirror",
        "--url",
        &server.base,
        "--dir",
        &mirror,
        "--vkey",
        &vkey,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not an extension") || text(&out).contains("fork"),
        "{}",
        text(&out)
    );
}

/// Appends entries with the log's own key, as an operator with full access could.
fn operator_appends(data: &str, entries: Vec<Entry>) {
    let key = std::fs::read_to_string(format!("{data}/keys/log.key")).unwrap();
    let signer = Signer::parse(key.trim()).unwrap();
    let storage: Arc<dyn Storage> =
        Arc::new(DirStorage::open(std::path::Path::new(&format!("{data}/log"))).unwrap());
    let mut log = Log::open(storage, signer).unwrap();
    let encoded: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
    log.append(&encoded.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .unwrap();
}

#[test]
fn entries_slipped_in_by_an_operator_are_caught() {
    let (dir, data, vkey) = election("verify-operator");
    let forms: Vec<saksi_election::SignedForm> =
        std::fs::read_to_string(dir.0.join("election/forms.ndjson"))
            .unwrap()
            .lines()
            .map(|l| saksi_election::SignedForm::decode(l.as_bytes()).unwrap())
            .collect();
    let accepted = RecordedVerdict::from_verdict(
        &saksi_election::rules::Verdict::default(),
        saksi_election::rules::Rulebook::CURRENT,
    );
    let accepted_copy = accepted.clone();
    // A forged signature on a real officer's form, recorded as accepted.
    let mut forged = forms[10].clone();
    forged.form.votes[1].1 += 50;
    forged.form.valid += 50;
    let forged_digest = forged.digest();
    // A form signed by a key that was never enrolled (a registry change never logged).
    let rogue = SecretKey::from_seed([9; 32]);
    let mut unenrolled = forms[11].form.clone();
    unenrolled.correction = Some(saksi_election::form::Correction { reason: "x".into() });
    unenrolled.signer = rogue.public();
    let unenrolled = unenrolled.sign(&rogue);
    let unenrolled_digest = unenrolled.digest();
    // An authority statement the log already holds (entry 1, a registry part), logged again: with
    // the log key an operator can append it, but a statement counts once.
    let replayed = {
        let storage: Arc<dyn Storage> = Arc::new(saksi_tlog::ReadOnlyDir::new(
            std::path::Path::new(&format!("{data}/log")),
        ));
        let checkpoint = std::fs::read_to_string(format!("{data}/log/checkpoint")).unwrap();
        let size: u64 = checkpoint.lines().nth(1).unwrap().parse().unwrap();
        let bytes = saksi_tlog::TileReader::new(storage, size).entry(1).unwrap();
        Entry::decode(&bytes).unwrap()
    };
    // A poll witness's copy with its figures changed after signing, recorded as accepted.
    let copies = std::fs::read_to_string(dir.0.join("election/copies.ndjson")).unwrap();
    let mut forged_copy =
        saksi_election::copy::SignedCopy::decode(copies.lines().next().unwrap().as_bytes())
            .unwrap();
    forged_copy.copy.form.votes[0].1 += 7;
    let forged_copy_digest = forged_copy.digest();
    // A citizen's report whose signature is not its reporter's.
    let reporter = SecretKey::from_seed([8; 32]);
    let mut forged_report = saksi_election::report::Report {
        election: "pemilu-2024".into(),
        place: forms[12].form.tps,
        category: saksi_election::report::Category::MoneyPolitics,
        event_at: 1_707_800_000,
        filed_at: 1_707_900_000,
        text_sha256: [7; 32],
        photos: vec![],
        reporter: reporter.public(),
        follows: None,
        withdraw: false,
        contact: None,
    }
    .sign(&reporter);
    forged_report.signature.0[5] ^= 1;
    // A verifier with memory has seen the honest log: it checks only the slipped entries later,
    // and must catch them all the same.
    let state = dir.path("verifier-state");
    let (code, out) = verify(&[
        "--dir",
        &format!("{data}/log"),
        "--vkey",
        &vkey,
        "--state",
        &state,
    ]);
    assert_eq!(code, Some(0), "{out}");
    operator_appends(
        &data,
        vec![
            Entry::Form {
                form: forged,
                verdict: accepted.clone(),
                digest: forged_digest,
            },
            Entry::Form {
                form: unenrolled,
                verdict: accepted.clone(),
                digest: unenrolled_digest,
            },
            // Before the replayed statement, which stops the replay.
            Entry::Copy {
                copy: forged_copy,
                verdict: accepted_copy,
                digest: forged_copy_digest,
            },
            Entry::Report {
                report: forged_report,
            },
            replayed,
        ],
    );
    let incremental = verify(&[
        "--dir",
        &format!("{data}/log"),
        "--vkey",
        &vkey,
        "--state",
        &state,
    ]);
    let whole = verify(&["--dir", &format!("{data}/log"), "--vkey", &vkey]);
    for (code, out) in [incremental, whole] {
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains("the form's signature does not verify"),
            "{out}"
        );
        assert!(
            out.contains("who is not enrolled for it in the logged registry"),
            "{out}"
        );
        assert!(
            out.contains("the authority statement of entry 1 logged again"),
            "{out}"
        );
        assert!(
            out.contains("the copy's signature does not verify"),
            "{out}"
        );
        assert!(out.contains("the signature is not its reporter's"), "{out}");
    }
}

/// `saksi verify --state`: a second run checks only the entries appended since the first, and ends
/// where a whole verification ends (the same forms, the same totals as the server publishes); a
/// damaged saved state is set aside, never trusted; `--follow` checks each growth as it comes.
#[test]
fn a_verifier_with_state_checks_only_what_is_new() {
    let dir = TempDir::new("verify-incremental");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "600", "--seed", "5", "--fault-rate", "0.01"],
    );
    let forms = std::fs::read_to_string(format!("{election}/forms.ndjson")).unwrap();
    let lines: Vec<&str> = forms.lines().collect();
    let (first, rest) = lines.split_at(lines.len() / 2);
    let first_file = dir.path("first.ndjson");
    let rest_file = dir.path("rest.ndjson");
    std::fs::write(&first_file, first.join("\n") + "\n").unwrap();
    std::fs::write(&rest_file, rest.join("\n") + "\n").unwrap();
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey"))
        .unwrap()
        .trim()
        .to_string();
    let log = format!("{data}/log");
    let state = dir.path("verifier-state");
    import(&data, &first_file, 1);
    let (code, out) = verify(&["--dir", &log, "--vkey", &vkey, "--state", &state]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("every tile, entry and signature checked"),
        "{out}"
    );
    let verified_size = size_in(&out);

    import(&data, &rest_file, 1);
    let (code, out) = verify(&["--dir", &log, "--vkey", &vkey, "--state", &state]);
    assert_eq!(code, Some(0), "{out}");
    let size = size_in(&out);
    assert!(size > verified_size);
    assert!(
        out.contains(&format!("entries {verified_size} to {} checked", size - 1)),
        "{out}"
    );
    let (code, whole) = verify(&["--dir", &log, "--vkey", &vkey]);
    assert_eq!(code, Some(0), "{whole}");
    assert_eq!(forms_in(&out), forms_in(&whole), "{out}\n{whole}");

    // Through a server: the state continues (same log, same key) and every published region total
    // equals the one the incremental state gives.
    let server = Server::start(&data);
    let (code, out) = verify(&["--url", &server.base, "--vkey", &vkey, "--state", &state]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("no entries since the"), "{out}");
    assert!(
        out.contains("published region totals equal the log's"),
        "{out}"
    );
    drop(server);

    // A damaged saved state is not trusted: the whole log is checked again.
    let saved = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "verified"))
        .expect("a saved verification");
    let mut bytes = std::fs::read(&saved).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&saved, &bytes).unwrap();
    let (code, out) = verify(&["--dir", &log, "--vkey", &vkey, "--state", &state]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("not continuing from"), "{out}");
    assert!(
        out.contains("every tile, entry and signature checked"),
        "{out}"
    );

    // Following: each growth of the log is checked as it comes.
    let follow_out = dir.path("follow.txt");
    let _follower = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_saksi"))
            .args([
                "verify", "--follow", "--dir", &log, "--vkey", &vkey, "--state", &state,
            ])
            .stdout(std::fs::File::create(&follow_out).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let followed = |needle: &str| {
        std::fs::read_to_string(&follow_out)
            .unwrap_or_default()
            .contains(needle)
    };
    crate::util::wait_until(&|| followed("saksi verify: OK"));
    let tps = std::fs::read_to_string(format!("{election}/registry/tps.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let officer = SecretKey::from_seed([7; 32]).public().to_base64();
    let enrolled = saksi(&[
        "enroll",
        "--data",
        &data,
        "--authority-key",
        &format!("{data}-authority/authority.key"),
        "--code",
        &tps,
        "--key",
        &officer,
    ]);
    assert!(enrolled.status.success(), "{}", text(&enrolled));
    crate::util::wait_until(&|| followed(&format!("entries {size} to {size} checked")));
}

/// A child process that never outlives its test, even one that fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The size in a `saksi verify` line ("... size N root ...").
fn size_in(out: &str) -> u64 {
    out.split(" size ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {out}"))
}

/// The forms count in a `saksi verify` OK line.
fn forms_in(out: &str) -> u64 {
    out.split(" forms re-verified")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no forms count in {out}"))
}

/// A proxy in front of a server that changes one region's published total.
fn altering_proxy(upstream: String, region: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = stream.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let line = String::from_utf8_lossy(&request)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, _, mut body) = http("GET", &format!("{upstream}{path}"), b"");
                if path == format!("/api/v1/regions/{region}") {
                    let mut value: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let votes = value["tally"]["votes"]["02"].as_i64().unwrap();
                    value["tally"]["votes"]["02"] = (votes + 1000).into();
                    body = serde_json::to_vec(&value).unwrap();
                }
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    base
}

#[test]
fn an_altered_published_total_is_caught() {
    let (_dir, data, vkey) = election("verify-api");
    let server = Server::start(&data);
    let (code, out) = verify(&["--url", &server.base, "--vkey", &vkey]);
    assert_eq!(code, Some(0), "{out}");
    let proxy = altering_proxy(server.base.clone(), "11");
    let (code, out) = verify(&[
        "--dir",
        &format!("{data}/log"),
        "--api",
        &proxy,
        "--vkey",
        &vkey,
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("region 11 (Aceh): votes.02 published"),
        "{out}"
    );
}

/// `saksi witness` for the log of `vkey`, keeping its state in DIR/NAME; and its vkey.
fn start_witness(dir: &TempDir, name: &str, vkey: &str, addr: &str) -> (Server, String) {
    let witness = Server::spawn(
        &[
            "witness",
            "--data",
            &dir.path(name),
            "--name",
            &format!("witness.test/{name}"),
            "--log-vkey",
            vkey,
            "--addr",
            addr,
        ],
        "witness listening on ",
    );
    let key = witness
        .preamble
        .iter()
        .find_map(|l| l.strip_prefix("witness vkey: "))
        .unwrap()
        .to_string();
    (witness, key)
}

#[test]
fn a_witness_cosigns_over_http_and_refuses_what_the_spec_refuses() {
    let (dir, data, vkey) = election("witness");
    let (witness, _) = start_witness(&dir, "w1", &vkey, "127.0.0.1:0");
    let checkpoint = std::fs::read_to_string(format!("{data}/log/checkpoint")).unwrap();
    let body = format!("old 0\n\n{checkpoint}");
    let (status, _, lines) = http(
        "POST",
        &format!("{}/add-checkpoint", witness.base),
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&lines));
    assert!(String::from_utf8(lines)
        .unwrap()
        .starts_with("\u{2014} witness.test/w1 "));
    let (status, head, size) = http(
        "POST",
        &format!("{}/add-checkpoint", witness.base),
        body.as_bytes(),
    );
    assert_eq!(status, 409);
    assert!(head.contains("text/x.tlog.size"), "{head}");
    assert!(String::from_utf8(size).unwrap().ends_with('\n'));
    let (status, _, _) = http(
        "POST",
        &format!("{}/add-checkpoint", witness.base),
        b"not a request",
    );
    assert_eq!(status, 400);
}

#[test]
fn checkpoints_are_published_only_with_a_quorum_of_witness_cosignatures() {
    use saksi_election::form::Correction;
    let (dir, data, vkey) = election("witness-policy");
    let (mut witnesses, keys): (Vec<Option<Server>>, Vec<String>) = (1..=3)
        .map(|n| {
            let (server, key) = start_witness(&dir, &format!("w{n}"), &vkey, "127.0.0.1:0");
            (Some(server), key)
        })
        .unzip();
    let spec: Vec<String> = keys
        .iter()
        .zip(&witnesses)
        .map(|(k, w)| format!("{k}@{}", w.as_ref().unwrap().base))
        .collect();
    let authority = format!("{data}-authority/authority.key");
    let mut args = vec![
        "witnesses",
        "--data",
        &data,
        "--authority-key",
        &authority,
        "--quorum",
        "2",
        "--witness",
    ];
    args.extend(spec.iter().map(String::as_str));
    let set = saksi(&args);
    assert!(set.status.success(), "{}", text(&set));
    assert!(!text(&set).contains("not yet published"), "{}", text(&set));

    let witness_keys: Vec<Verifier> = keys.iter().map(|k| Verifier::parse(k).unwrap()).collect();
    let log_key = Verifier::parse(&vkey).unwrap();
    let server = Server::start(&data);
    let (_, _, checkpoint) = http("GET", &format!("{}/log/checkpoint", server.base), b"");
    let mut known = vec![log_key.clone()];
    known.extend(witness_keys.iter().cloned());
    // The log and at least the quorum (witnesses are asked together; gathering stops at the quorum).
    assert!(
        note::open(&checkpoint, &known).unwrap().verified.len() >= 3,
        "the log and two witnesses"
    );

    // A correction (a new entry) now comes back with a receipt carrying at least two cosignatures.
    let forms: Vec<saksi_election::SignedForm> =
        std::fs::read_to_string(dir.0.join("election/forms.ndjson"))
            .unwrap()
            .lines()
            .map(|l| saksi_election::SignedForm::decode(l.as_bytes()).unwrap())
            .collect();
    let correct = |n: usize, reason: &str| {
        let mut form = forms[n].form.clone();
        form.correction = Some(Correction {
            reason: reason.into(),
        });
        let key = saksi_gen::corrector_key(
            3,
            form.tps.ancestor(saksi_election::Level::KabKota).unwrap(),
        );
        form.signer = key.public();
        form.sign(&key).encode()
    };
    let (status, _, body) = http(
        "POST",
        &format!("{}/api/v1/forms", server.base),
        &correct(0, "first"),
    );
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 201, "{body}");
    let receipt = TlogProof::parse(body["receipt"].as_str().unwrap()).unwrap();
    let (_, _, entry) = http(
        "GET",
        &format!("{}/api/v1/entries/{}", server.base, receipt.index),
        b"",
    );
    receipt
        .verify(&saksi_tlog::leaf_hash(&entry), &log_key, &witness_keys, 2)
        .unwrap();

    // Two witnesses down: the entry is recorded but nothing new is published.
    let size_before = note::open(
        &http("GET", &format!("{}/log/checkpoint", server.base), b"").2,
        &known,
    )
    .unwrap()
    .text;
    let address_of_2 = witnesses[1]
        .as_ref()
        .unwrap()
        .base
        .trim_start_matches("http://")
        .to_string();
    witnesses[1] = None;
    witnesses[2] = None;
    let (status, _, body) = http(
        "POST",
        &format!("{}/api/v1/forms", server.base),
        &correct(1, "second"),
    );
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("WITNESS_PENDING")),
        "{body}"
    );
    let size_after = note::open(
        &http("GET", &format!("{}/log/checkpoint", server.base), b"").2,
        &known,
    )
    .unwrap()
    .text;
    assert_eq!(
        size_before, size_after,
        "no checkpoint published without a quorum"
    );

    // One comes back (same key, same state): the next commit publishes both entries.
    witnesses[1] = Some(start_witness(&dir, "w2", &vkey, &address_of_2).0);
    let (status, _, body) = http(
        "POST",
        &format!("{}/api/v1/forms", server.base),
        &correct(2, "third"),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    // An observer's verification includes the policy.
    let (code, out) = verify(&["--url", &server.base, "--vkey", &vkey]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("witness cosignatures (policy 2)"), "{out}");
    drop(witnesses);
}

#[test]
fn a_slow_witness_does_not_hold_submissions() {
    use saksi_election::form::Correction;
    let (dir, data, vkey) = election("slow-witness");
    let (real, real_key) = start_witness(&dir, "w1", &vkey, "127.0.0.1:0");
    // A witness that accepts, then answers one byte every 1.5 s, forever.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                use std::io::Write;
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                    .iter()
                    .cycle()
                {
                    if stream.write_all(&[*byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1500));
                }
            });
        }
    });
    let slow_key = saksi_tlog::note::Signer::generate(
        "witness.test/slow",
        saksi_tlog::note::TYPE_COSIGNATURE_V1,
    )
    .unwrap()
    .verifier()
    .encode();
    let authority = format!("{data}-authority/authority.key");
    let slow = format!("{slow_key}@{slow_url}");
    let fast = format!("{real_key}@{}", real.base);
    // The slow one first: asked one after the other, it alone held every submission for 10 s.
    let set = saksi(&[
        "witnesses",
        "--data",
        &data,
        "--authority-key",
        &authority,
        "--quorum",
        "1",
        "--witness",
        &slow,
        &fast,
    ]);
    assert!(set.status.success(), "{}", text(&set));
    let server = Server::start(&data);
    let forms: Vec<saksi_election::SignedForm> =
        std::fs::read_to_string(dir.0.join("election/forms.ndjson"))
            .unwrap()
            .lines()
            .map(|l| saksi_election::SignedForm::decode(l.as_bytes()).unwrap())
            .collect();
    for (n, signed) in forms.iter().take(3).enumerate() {
        let mut form = signed.form.clone();
        form.correction = Some(Correction {
            reason: format!("correction {n}"),
        });
        let key = saksi_gen::corrector_key(
            3,
            form.tps.ancestor(saksi_election::Level::KabKota).unwrap(),
        );
        form.signer = key.public();
        let started = std::time::Instant::now();
        let (status, _, body) = http(
            "POST",
            &format!("{}/api/v1/forms", server.base),
            &form.sign(&key).encode(),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "submission {n} took {:?}",
            started.elapsed()
        );
    }
}
