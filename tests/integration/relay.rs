//! Relays through the real binary: a relay takes reports (with its own receipts) while the main
//! server is down and forwards them when it returns; a report filed with the relay and the main
//! server is one entry; a proxy that drops one report on its way upstream is caught by
//! `saksi audit relay`, with the report's signature and the relay's receipt as evidence.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use saksi_election::report::{text_digest, Category, Report, ReportSubmission};
use saksi_election::sign::SecretKey;

use crate::util::{gen_and_init, get_json, http, saksi, text, Server, TempDir};

fn first_tps(election: &str) -> String {
    std::fs::read_to_string(format!("{election}/registry/tps.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string()
}

fn report(place: &str, words: &str, seed: u8) -> ReportSubmission {
    let key = SecretKey::from_seed([seed; 32]);
    ReportSubmission {
        signed: Report {
            election: "pemilu-2024".into(),
            place: saksi_election::Code::parse(place).unwrap(),
            category: Category::Intimidation,
            event_at: 1_707_800_000,
            filed_at: 1_707_900_000,
            text_sha256: text_digest(words),
            photos: vec![],
            reporter: key.public(),
            follows: None,
            withdraw: false,
            contact: None,
        }
        .sign(&key),
        text: words.into(),
        stamp: None,
    }
}

fn post(base: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let (status, _, body) = http("POST", &format!("{base}/api/v1/reports"), body);
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

/// Waits (at most a minute) until the relay says nothing is pending.
fn wait_forwarded(relay: &Server) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = get_json(&format!("{}/api/v1/relay", relay.base));
        if status["pending"] == 0 {
            return status;
        }
        assert!(Instant::now() < deadline, "still pending: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn relay(data: &str, upstream: &str) -> Server {
    Server::spawn(
        &[
            "relay",
            "--data",
            data,
            "--upstream",
            upstream,
            "--addr",
            "127.0.0.1:0",
            "--name",
            "relay.test/kampus",
        ],
        "relay listening on ",
    )
}

#[test]
fn a_relay_keeps_reports_while_the_upstream_is_down_and_forwards_them() {
    let dir = TempDir::new("relay");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "20"]);
    let tps = first_tps(&election);
    // Find a free port for the main server, then keep it down while the relay takes reports.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = format!("http://127.0.0.1:{port}");
    let relay_dir = dir.path("relay");
    let relay = relay(&relay_dir, &upstream);
    let vkey = std::fs::read_to_string(format!("{relay_dir}/relay.vkey")).unwrap();

    // Filed with `saksi report` against the relay: its receipt is the relay's, checked.
    let out = saksi(&[
        "report",
        "--url",
        &relay.base,
        "--tps",
        &tps,
        "--category",
        "system",
        "--text",
        "Situs pelaporan tidak dapat dibuka sejak pagi.",
        "--key",
        &dir.path("reporter.key"),
        "--vkey",
        vkey.trim(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("the receipt proves it is in the log signed by relay.test/kampus"));
    let both = report(&tps, "Saksi diusir dari TPS.", 4);
    let (status, answer) = post(&relay.base, &both.encode());
    assert_eq!(status, 201, "{answer}");
    let receipt =
        saksi_tlog::tproof::TlogProof::parse(answer["receipt"].as_str().unwrap()).unwrap();
    // Forged and malformed reports get the main server's answers and change nothing.
    let mut forged = report(&tps, "Kotak suara dibuka.", 5);
    forged.signed.signature.0[1] ^= 1;
    assert_eq!(post(&relay.base, &forged.encode()).0, 401);
    assert_eq!(post(&relay.base, b"{\"report\":1}").0, 400);
    assert_eq!(post(&relay.base, &vec![b' '; 20_000]).0, 413);
    let status = get_json(&format!("{}/api/v1/relay", relay.base));
    assert_eq!(status["size"], 2, "{status}");
    assert_eq!(status["pending"], 2, "{status}");
    assert!(status["upstream_trouble"].is_object(), "{status}");
    assert_eq!(receipt.index, 1);

    // The main server comes up on its port; the relay forwards both.
    let main = Server::spawn_command(
        {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_saksi"));
            command.args([
                "serve",
                "--data",
                &data,
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--rate-limit",
                "0",
            ]);
            command
        },
        "serving on ",
    );
    // The same report filed directly with the main server too: one entry there.
    let (status, direct) = post(&main.base, &both.encode());
    assert_eq!(status, 201, "{direct}");
    let status = wait_forwarded(&relay);
    assert_eq!(status["forwarded"], 2, "{status}");
    let listed = get_json(&format!("{}/api/v1/reports", main.base));
    assert_eq!(listed["reports"].as_array().unwrap().len(), 2, "{listed}");

    // The audit finds every relay report in the main log.
    let main_vkey = format!("{data}/log.vkey");
    let out = saksi(&[
        "audit",
        "relay",
        "--relay",
        &relay.base,
        "--relay-vkey",
        vkey.trim(),
        "--log",
        &main.base,
        "--vkey",
        &main_vkey,
        "--max-delay",
        "0s",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 in the main log"), "{}", text(&out));
}

/// A minimal HTTP/1.1 proxy in front of `upstream` that answers one report (the one whose text
/// contains `drop`) with a made-up success instead of forwarding it.
fn dropping_proxy(upstream: String, drop: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                let _ = proxy_one(&mut stream, &upstream, drop);
            });
        }
    });
    base
}

fn proxy_one(stream: &mut TcpStream, upstream: &str, drop: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = Vec::new();
    let mut buffer = [0u8; 8192];
    let (head, body) = loop {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buffer[..n]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while request.len() < end + 4 + length {
                let n = stream.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
            }
            break (head, request[end + 4..].to_vec());
        }
    };
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or("GET"), words.next().unwrap_or("/"));
    let (status, body) = if String::from_utf8_lossy(&body).contains(drop) {
        (201, br#"{"index":0,"duplicate":false}"#.to_vec())
    } else {
        let (status, _, body) = http(method, &format!("{upstream}{path}"), &body);
        (status, body)
    };
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)
}

#[test]
fn a_report_dropped_upstream_is_caught_by_the_audit_with_its_evidence() {
    let dir = TempDir::new("relay-drop");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "20"]);
    let tps = first_tps(&election);
    let main = Server::serve(&data, &["--rate-limit", "0"]);
    let proxy = dropping_proxy(main.base.clone(), "DIBUANG");
    let relay_dir = dir.path("relay");
    let relay = relay(&relay_dir, &proxy);
    let vkey = std::fs::read_to_string(format!("{relay_dir}/relay.vkey")).unwrap();
    let kept = report(&tps, "Surat suara sudah tercoblos.", 6);
    let dropped = report(&tps[..6], "Laporan ini DIBUANG di jalan.", 7);
    assert_eq!(post(&relay.base, &kept.encode()).0, 201);
    assert_eq!(post(&relay.base, &dropped.encode()).0, 201);
    let status = wait_forwarded(&relay);
    assert_eq!(
        status["forwarded"], 2,
        "the relay believes both arrived: {status}"
    );

    let main_vkey = format!("{data}/log.vkey");
    let audit = |delay: &str, json: bool| {
        let mut args = vec![
            "audit",
            "relay",
            "--relay",
            &relay.base,
            "--relay-vkey",
            vkey.trim(),
            "--log",
            &main.base,
            "--vkey",
            &main_vkey,
            "--max-delay",
            delay,
        ];
        if json {
            args.push("--json");
        }
        saksi(&args)
    };
    // Within the delay, nothing is yet owed.
    let out = audit("1h", false);
    assert!(out.status.success(), "{}", text(&out));
    // After it, the dropped report is listed: exit 1, with its signature and the relay's receipt.
    let out = audit("0s", false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("1 in the main log"), "{}", text(&out));
    assert!(
        text(&out).contains(&dropped.signed.signature.to_base64()),
        "{}",
        text(&out)
    );
    let out = audit("0s", true);
    assert_eq!(out.status.code(), Some(1));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let missing = found["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{found}");
    assert_eq!(
        missing[0]["signature"].as_str(),
        Some(dropped.signed.signature.to_base64().as_str())
    );
    // The evidence stands offline: the relay's entry, its receipt under the relay's key, and the
    // reporter's signature over the report.
    let entry = saksi_election::canonical::to_vec(&missing[0]["entry"]).unwrap();
    let relayed = saksi_recap::relay::RelayedReport::decode(&entry).unwrap();
    assert!(relayed.report.signature_valid());
    assert_eq!(relayed.report, dropped.signed);
    let relay_key = saksi_tlog::note::Verifier::parse(vkey.trim()).unwrap();
    saksi_tlog::tproof::TlogProof::parse(missing[0]["relay_receipt"].as_str().unwrap())
        .unwrap()
        .verify(&saksi_tlog::hash::leaf_hash(&entry), &relay_key, &[], 0)
        .unwrap();
}

#[test]
fn under_a_flood_the_operator_asks_for_work_and_bounds_each_key_and_relays_still_get_through() {
    let dir = TempDir::new("relay-flood");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "20"]);
    let tps = first_tps(&election);
    let main = Server::serve(&data, &["--rate-limit", "0"]);
    let log_size = || {
        get_json(&format!("{}/api/v1/log", main.base))["checkpoint"]["size"]
            .as_u64()
            .unwrap()
    };
    // The operator raises the work asked, publicly: the setting is a log entry.
    let before = log_size();
    let out = saksi(&[
        "intake",
        "--data",
        &data,
        "--pow-bits",
        "12",
        "--reports-per-key-per-hour",
        "2",
        "--note",
        "banjir laporan otomatis",
        "--url",
        &main.base,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(log_size(), before + 1);
    let intake = get_json(&format!("{}/api/v1/intake", main.base));
    assert_eq!(intake["pow_bits"], 12, "{intake}");

    // Without a stamp, or with one too weak: 403 POW_REQUIRED, nothing logged.
    let before = log_size();
    let mut unstamped = report(&tps, "Massa berkumpul di depan PPK.", 9);
    let (status, body) = post(&main.base, &unstamped.encode());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("POW_REQUIRED")),
        "{body}"
    );
    let weak = (0u64..)
        .map(|n| format!("w{n}"))
        .find(|s| saksi_election::report::stamp_bits(&unstamped.signed.signature, s) < 12)
        .unwrap();
    unstamped.stamp = Some(weak);
    assert_eq!(post(&main.base, &unstamped.encode()).0, 403);
    assert_eq!(log_size(), before);

    // With the work done: logged. The same key's third report within the hour: 429.
    let key = dir.path("reporter.key");
    for (n, expect) in [(1, 0), (2, 0), (3, 1)] {
        let words = format!("Laporan nomor {n}.");
        let out = saksi(&[
            "report",
            "--url",
            &main.base,
            "--key",
            &key,
            "--tps",
            &tps,
            "--category",
            "other",
            "--text",
            &words,
        ]);
        assert_eq!(out.status.code(), Some(expect), "{}", text(&out));
        if expect == 1 {
            assert!(text(&out).contains("RATE_LIMITED"), "{}", text(&out));
        }
    }

    // A relay's report still gets through: the relay does the work the upstream asks.
    let relay_dir = dir.path("relay");
    let relay = relay(&relay_dir, &main.base);
    let relayed = report(&tps, "Dikirim lewat relay kampus.", 10);
    assert_eq!(post(&relay.base, &relayed.encode()).0, 201);
    let status = wait_forwarded(&relay);
    assert_eq!(status["forwarded"], 1, "{status}");
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let out = saksi(&["verify", "--url", &main.base, "--vkey", vkey.trim()]);
    assert!(out.status.success(), "{}", text(&out));
}
