//! Bad input: each kind gets its documented status and error code, nothing is logged that should not
//! be, nothing panics, and the server stays healthy.

use std::io::{Read, Write};
use std::time::Duration;

use saksi_election::{Code, SignedForm};
use serde_json::Value;

use crate::util::{gen_and_init, get_json, http, Server, TempDir};

const SEED: u64 = 41;

fn size(server: &Server) -> u64 {
    get_json(&format!("{}/api/v1/log", server.base))["checkpoint"]["size"]
        .as_u64()
        .unwrap()
}

fn post(server: &Server, body: &[u8]) -> (u16, Value) {
    let (status, _, body) = http("POST", &format!("{}/api/v1/forms", server.base), body);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn every_bad_input_gets_its_documented_answer() {
    let dir = TempDir::new("bad-input");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &[
            "--tps",
            "200",
            "--seed",
            &SEED.to_string(),
            "--fault-rate",
            "0",
        ],
    );
    let forms: Vec<SignedForm> = std::fs::read_to_string(dir.0.join("election/forms.ndjson"))
        .unwrap()
        .lines()
        .map(|l| SignedForm::decode(l.as_bytes()).unwrap())
        .collect();
    let officer = |tps: Code| saksi_gen::officer_key(SEED, tps);
    let mut server = Server::serve(&data, &["--rate-limit", "0", "--request-timeout", "1"]);
    let valid = String::from_utf8(forms[0].encode()).unwrap();
    let before = size(&server);

    // Not authenticated or not well-formed: refused and never logged.
    let refused: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{".to_vec(), 400, "MALFORMED"),
        (
            valid
                .replacen("\"invalid\":", "\"invalid\":\"x\",\"ignored\":", 1)
                .into_bytes(),
            400,
            "MALFORMED",
        ),
        (
            valid
                .replacen(
                    &format!("\"valid\":{}", forms[0].form.valid),
                    "\"valid\":\"many\"",
                    1,
                )
                .into_bytes(),
            400,
            "MALFORMED",
        ),
        (
            valid
                .replacen(
                    &format!("\"valid\":{}", forms[0].form.valid),
                    "\"valid\":1152921504606846976",
                    1,
                )
                .into_bytes(),
            400,
            "MALFORMED",
        ),
        (
            valid
                .replacen(
                    &format!("\"valid\":{}", forms[0].form.valid),
                    "\"valid\":1e30",
                    1,
                )
                .into_bytes(),
            400,
            "MALFORMED",
        ),
        (
            valid
                .replacen(
                    &format!("\"valid\":{}", forms[0].form.valid),
                    "\"valid\":99999999999999999999999999",
                    1,
                )
                .into_bytes(),
            400,
            "MALFORMED",
        ),
        (
            valid.replacen("\"contest\":\"ppwp\",", "", 1).into_bytes(),
            400,
            "MALFORMED",
        ),
        (
            valid
                .replacen(
                    "\"contest\":\"ppwp\"",
                    "\"contest\":\"ppwp\",\"extra\":1",
                    1,
                )
                .into_bytes(),
            400,
            "MALFORMED",
        ),
        (vec![0xff, 0xfe, b'{', b'}'], 400, "MALFORMED"),
        (
            valid
                .replacen("\"tps\":\"", "\"tps\":\"\u{0}", 1)
                .into_bytes(),
            400,
            "MALFORMED",
        ),
    ];
    for (body, status, code) in &refused {
        let (got, answer) = post(&server, body);
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let (got, _) = post(&server, &vec![b'x'; 100_000]);
    assert_eq!(got, 413, "oversized");
    let mut forged = forms[1].clone();
    forged.signature.0[0] ^= 1;
    assert_eq!(post(&server, &forged.encode()).0, 401, "forged");
    let mut wrong_tps = forms[2].form.clone();
    wrong_tps.signer = officer(forms[3].form.tps).public();
    assert_eq!(
        post(
            &server,
            &wrong_tps.sign(&officer(forms[3].form.tps)).encode()
        )
        .1["error"]["code"],
        "SIGNER_NOT_ENROLLED"
    );
    let mut unknown = forms[4].form.clone();
    unknown.tps = Code::parse("1101012001998").unwrap();
    assert_eq!(
        post(&server, &unknown.sign(&officer(forms[4].form.tps)).encode()).1["error"]["code"],
        "TPS_UNKNOWN"
    );
    assert_eq!(size(&server), before, "nothing refused was logged");

    // Authenticated but wrong: logged with the rule that broke. Replays: the original entry.
    let mut negative = forms[5].form.clone();
    negative.invalid = -1;
    let (status, body) = post(
        &server,
        &negative.clone().sign(&officer(negative.tps)).encode(),
    );
    assert_eq!(status, 201);
    assert!(
        body["rejected_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "COUNT_RANGE"),
        "{body}"
    );
    let (status, first) = post(&server, &forms[6].encode());
    assert_eq!(status, 201);
    let (status, replay) = post(&server, &forms[6].encode());
    assert_eq!(
        (status, replay["index"].clone()),
        (200, first["index"].clone()),
        "a replay returns the original"
    );
    let mut conflicting = forms[6].form.clone();
    conflicting.evidence.clear();
    let (status, body) = post(
        &server,
        &conflicting.clone().sign(&officer(conflicting.tps)).encode(),
    );
    assert_eq!(status, 201);
    assert!(
        body["rejected_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "TPS_ALREADY_REPORTED"),
        "{body}"
    );
    assert_eq!(size(&server), before + 3);

    // A body sent slowly: answered 408 once the request deadline passes, the connection released.
    let host = server.base.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&host).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        slow,
        "POST /api/v1/forms HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n{{\"fo"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // The server is alive and healthy after all of it.
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
    assert_eq!(
        get_json(&format!("{}/api/v1/regions", server.base))["tally"]["tps_reported"],
        1
    );
    drop(server);

    // A flood from one address meets the rate limit.
    server = Server::serve(&data, &["--rate-limit", "20", "--burst", "20"]);
    let statuses: Vec<u16> = (0..100)
        .map(|_| http("GET", &format!("{}/api/v1/log", server.base), b"").0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 200).count() >= 20,
        "{statuses:?}"
    );
    let (status, _, body) = http("GET", &format!("{}/api/v1/log", server.base), b"");
    if status == 429 {
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "RATE_LIMITED");
    }
}

#[test]
fn every_error_answer_has_the_documented_json_shape() {
    let dir = TempDir::new("error-shape");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "20", "--seed", "3", "--fault-rate", "0"],
    );
    let server = Server::start(&data);
    let too_large = vec![b'{'; 200_000];
    let form = std::fs::read_to_string(dir.0.join("election/forms.ndjson"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let recap = std::fs::read_to_string(dir.0.join("election/recap.ndjson"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    // A reason that displays reversed, and a recap with a member given twice (last-wins elsewhere).
    let spoofed = form
        .replacen(
            "{\"form\":{",
            "{\"form\":{\"correction\":{\"reason\":\"salah \u{202e}tulis\"},",
            1,
        )
        .into_bytes();
    let repeated = recap
        .replacen("{\"form\":{", "{\"form\":{\"contest\":\"dpr\",", 1)
        .into_bytes();
    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        ("POST", "/api/v1/forms".into(), too_large, 413, "TOO_LARGE"),
        (
            "DELETE",
            "/api/v1/regions".into(),
            Vec::new(),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "GET",
            "/api/v1/forms".into(),
            Vec::new(),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "GET",
            "/api/v1/receipts/notanumber".into(),
            Vec::new(),
            400,
            "MALFORMED",
        ),
        (
            "GET",
            "/api/v1/entries/99999999999999999999".into(),
            Vec::new(),
            400,
            "MALFORMED",
        ),
        ("GET", "/no/such/page".into(), Vec::new(), 404, "NOT_FOUND"),
        ("POST", "/api/v1/forms".into(), spoofed, 400, "MALFORMED"),
        ("POST", "/api/v1/recaps".into(), repeated, 400, "MALFORMED"),
    ];
    for (method, path, body, status, code) in cases {
        let (got, head, body) = http(method, &format!("{}{path}", server.base), &body);
        assert_eq!(
            got,
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{method} {path}: {head}"
        );
        let body: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e})"));
        assert_eq!(body["error"]["code"], code, "{method} {path}: {body}");
        assert!(body["error"]["message"].is_string() && body["error"]["message_id"].is_string());
        if path.ends_with("forms") && status == 400 {
            assert!(
                body["error"]["detail"].as_str().unwrap().contains("U+202E"),
                "{body}"
            );
        }
        if path.ends_with("recaps") {
            assert!(
                body["error"]["detail"].as_str().unwrap().contains("twice"),
                "{body}"
            );
        }
    }

    // The default limit is a public-service one: a flood from one address meets it quickly.
    drop(server);
    let server = Server::serve(&data, &[]);
    let limited = (0..300)
        .map(|_| http("GET", &format!("{}/api/v1/log", server.base), b"").0)
        .filter(|status| *status == 429)
        .count();
    assert!(
        limited > 0,
        "300 requests at once from one address were all served"
    );
}

/// `GET path` with an `X-Forwarded-For` header, on a fresh connection: the status.
fn get_forwarded_for(server: &Server, path: &str, forwarded: &str) -> u16 {
    let host = server.base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {forwarded}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_rate_limit_names_clients_by_trusted_proxies_only() {
    let dir = TempDir::new("forwarded");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "20", "--seed", "3", "--fault-rate", "0"],
    );
    let limited = |extra: &[&str]| {
        let mut flags = vec!["--rate-limit", "1", "--burst", "2"];
        flags.extend_from_slice(extra);
        Server::serve(&data, &flags)
    };
    // Behind a trusted proxy (here 127.0.0.1), each forwarded client has its own bucket...
    let server = limited(&["--trusted-proxy", "127.0.0.1"]);
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        for _ in 0..2 {
            assert_eq!(
                get_forwarded_for(&server, "/api/v1/log", client),
                200,
                "{client}"
            );
        }
    }
    // ...a client over its burst is limited, whatever it claims to the left of the proxy's entry...
    assert_eq!(
        get_forwarded_for(&server, "/api/v1/log", "203.0.113.1"),
        429
    );
    assert_eq!(
        get_forwarded_for(&server, "/api/v1/log", "198.51.100.9, 203.0.113.1"),
        429
    );
    drop(server);
    // ...and without a trusted proxy the header is ignored: every request is 127.0.0.1's.
    let server = limited(&[]);
    let statuses: Vec<u16> = (0..4)
        .map(|n| get_forwarded_for(&server, "/api/v1/log", &format!("203.0.113.{n}")))
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
}
