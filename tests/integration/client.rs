//! The tools that audit a server must survive a hostile one, and speak HTTPS: `saksi verify` and
//! `saksi mirror` against `saksi serve --tls-cert` with a private CA (trusted through SSL_CERT_FILE,
//! as curl does), and against a fake server that lies in the ways a hostile one would.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::{gen_and_init, text, Server, TempDir};

/// A CA, and a certificate it signed for localhost and 127.0.0.1: (ca.pem, cert.pem, key.pem).
fn private_ca(dir: &TempDir) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "saksi test commission CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let (ca_path, cert_path, key_path) = (
        dir.path("ca.pem"),
        dir.path("cert.pem"),
        dir.path("key.pem"),
    );
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    std::fs::write(&cert_path, leaf_cert.pem()).unwrap();
    std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();
    (ca_path, cert_path, key_path)
}

fn saksi_with_ca(args: &[&str], ca: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_saksi"));
    command.args(args).env_remove("SSL_CERT_FILE");
    if let Some(ca) = ca {
        command.env("SSL_CERT_FILE", ca);
    }
    command.output().unwrap()
}

#[test]
fn verify_and_mirror_speak_https_with_a_private_ca() {
    let dir = TempDir::new("https");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "40", "--seed", "12", "--fault-rate", "0"],
    );
    let out = saksi_with_ca(
        &[
            "import",
            "--data",
            &data,
            &format!("{election}/forms.ndjson"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let vkey = std::fs::read_to_string(dir.0.join("data/log.vkey")).unwrap();
    let (ca, cert, key) = private_ca(&dir);
    let server = Server::serve(
        &data,
        &["--rate-limit", "0", "--tls-cert", &cert, "--tls-key", &key],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let url = server.base.replace("127.0.0.1", "localhost");

    let out = saksi_with_ca(&["verify", "--url", &url, "--vkey", vkey.trim()], Some(&ca));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mirror = dir.path("mirror");
    let out = saksi_with_ca(
        &[
            "mirror",
            "--url",
            &server.base,
            "--dir",
            &mirror,
            "--vkey",
            vkey.trim(),
        ],
        Some(&ca),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Without the CA the server is not trusted: could not check (2), never a pass.
    let out = saksi_with_ca(&["verify", "--url", &url, "--vkey", vkey.trim()], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).to_lowercase().contains("certificate") || text(&out).contains("issuer"),
        "{}",
        text(&out)
    );
}

/// A server that answers every request with `respond(path)`; runs until the test ends.
fn fake_server(respond: impl Fn(&str, &mut std::net::TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => request.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&request).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            respond(&path, &mut stream);
        }
    });
    base
}

fn verify_against(base: &str, vkey: &str) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = saksi_with_ca(&["verify", "--url", base, "--vkey", vkey], None);
    (out.status.code(), text(&out), started.elapsed())
}

#[test]
fn a_hostile_server_cannot_crash_or_exhaust_the_verifier() {
    let signer =
        saksi_tlog::note::Signer::generate("hostile.example/log", saksi_tlog::note::TYPE_ED25519)
            .unwrap();
    let vkey = signer.verifier().encode();

    // A chunk length no body can have: an error (exit 2), not a panic (exit 101).
    let base = fake_server(|_, stream| {
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\nabc\r\n",
        );
    });
    let (code, out, _) = verify_against(&base, &vkey);
    assert_eq!(code, Some(2), "{out}");

    // An endless body: read up to the limit, then refused.
    let base = fake_server(|_, stream| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n");
        let zeros = vec![b'0'; 1 << 16];
        while stream.write_all(&zeros).is_ok() {}
    });
    let (code, out, took) = verify_against(&base, &vkey);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("larger than"), "{out}");
    assert!(took < Duration::from_secs(30), "{took:?}");

    // A redirect is reported, not followed.
    let base = fake_server(|_, stream| {
        let _ = stream.write_all(
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:9/\r\nContent-Length: 0\r\n\r\n",
        );
    });
    let (code, out, _) = verify_against(&base, &vkey);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("301"), "{out}");

    // A correctly signed checkpoint of size 2^62: the mirror asks for its first tile and stops,
    // without allocating for the size it claims.
    let checkpoint = saksi_tlog::checkpoint::Checkpoint {
        origin: "hostile.example/log".into(),
        size: 1 << 62,
        root: saksi_tlog::hash::Hash([7; 32]),
        extensions: Vec::new(),
    };
    let note = saksi_tlog::note::sign(&checkpoint.text(), &[&signer], 0).unwrap();
    let base = fake_server(move |path, stream| {
        if path == "/log/checkpoint" {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{note}",
                note.len()
            );
        } else {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let dir = TempDir::new("hostile-mirror");
    let started = Instant::now();
    let out = saksi_with_ca(
        &[
            "mirror",
            "--url",
            &base,
            "--dir",
            &dir.path("m"),
            "--vkey",
            &vkey,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("missing on the server"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
