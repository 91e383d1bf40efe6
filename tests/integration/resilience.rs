//! Resilience: the server is killed with SIGKILL at random moments while clients submit; after every
//! restart, every acknowledged submission is in the log exactly once, the log verifies, and the
//! published totals equal a recomputation. CI runs a few rounds on a small election; set
//! SAKSI_CRASH_ROUNDS and SAKSI_CRASH_TPS for the full suite (e.g. 50 rounds at 823,220 TPS).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use saksi_election::SignedForm;
use serde_json::Value;

use crate::util::{gen_and_init, saksi, text, Server, TempDir};

/// One request; `None` when the server is down (connection refused or cut).
fn try_post(base: &str, body: &[u8]) -> Option<(u16, Value)> {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "POST /api/v1/forms HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status: u16 = String::from_utf8_lossy(&response[..split])
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((
        status,
        serde_json::from_slice(&response[split + 4..]).unwrap_or(Value::Null),
    ))
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_submission() {
    let rounds: usize = std::env::var("SAKSI_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let tps: usize = std::env::var("SAKSI_CRASH_TPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let dir = TempDir::new("crash");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &[
            "--tps",
            &tps.to_string(),
            "--seed",
            "31",
            "--fault-rate",
            "0",
        ],
    );
    let forms: Vec<Vec<u8>> = std::fs::read_to_string(dir.0.join("election/forms.ndjson"))
        .unwrap()
        .lines()
        .map(|l| l.as_bytes().to_vec())
        .collect();
    let forms = Arc::new(forms);

    let mut server = Server::start(&data);
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let base = server.base.clone();
    let acknowledged: Arc<Mutex<HashMap<usize, u64>>> = Arc::new(Mutex::new(HashMap::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (forms, acknowledged, next, done, base) = (
                forms.clone(),
                acknowledged.clone(),
                next.clone(),
                done.clone(),
                base.clone(),
            );
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= forms.len() {
                        return;
                    }
                    // Retry until answered: a crash between commit and answer must give the original
                    // entry back (200), never a second one.
                    let deadline = Instant::now() + Duration::from_secs(120);
                    loop {
                        match try_post(&base, &forms[n]) {
                            Some((200 | 201, body)) => {
                                acknowledged
                                    .lock()
                                    .unwrap()
                                    .insert(n, body["index"].as_u64().unwrap());
                                break;
                            }
                            Some((status, body)) if status != 503 => {
                                panic!("form {n}: {status} {body}")
                            }
                            _ => {
                                assert!(
                                    Instant::now() < deadline,
                                    "form {n}: the server never came back"
                                );
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let mut seed = 0x5eedu64;
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(100 + seed % 400));
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        let before = acknowledged.lock().unwrap().len();
        server = Server::spawn(
            &[
                "serve",
                "--data",
                &data,
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--rate-limit",
                "0",
            ],
            "serving on ",
        );
        eprintln!("crash round {round}: {before} acknowledged before the kill");
    }
    // Stop after the last round: each client finishes (and gets an answer for) the form it holds.
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    drop(server);

    // Every form a client started was acknowledged, and is in the log at its index exactly once.
    let acknowledged = acknowledged.lock().unwrap().clone();
    let started = next.load(Ordering::Relaxed).min(forms.len());
    assert_eq!(
        acknowledged.len(),
        started,
        "every submitted form was eventually acknowledged"
    );
    let server = Server::start(&data);
    let vkey = std::fs::read_to_string(dir.0.join("data/log.vkey")).unwrap();
    let key = saksi_tlog::note::Verifier::parse(vkey.trim()).unwrap();
    // Read the log's own files, as an auditor with a copy would.
    let storage = saksi_tlog::ReadOnlyDir::new(&dir.0.join("data/log"));
    let mut tps_at: HashMap<u64, String> = HashMap::new();
    let mut seen_tps: HashMap<String, usize> = HashMap::new();
    saksi_tlog::audit::audit(&storage, &key, |index, bytes| {
        let entry: Value = serde_json::from_slice(bytes).unwrap();
        if entry["type"] == "form" {
            let tps = entry["form"]["tps"].as_str().unwrap().to_string();
            *seen_tps.entry(tps.clone()).or_default() += 1;
            tps_at.insert(index, tps);
        }
    })
    .unwrap();
    for (n, index) in &acknowledged {
        let form = SignedForm::decode(&forms[*n]).unwrap();
        assert_eq!(
            tps_at.get(index).map(String::as_str),
            Some(form.form.tps.as_str()),
            "form {n} at index {index}"
        );
        assert_eq!(
            seen_tps.get(form.form.tps.as_str()),
            Some(&1),
            "TPS {} logged exactly once",
            form.form.tps
        );
    }
    eprintln!(
        "{} acknowledged submissions checked over {rounds} crashes",
        acknowledged.len()
    );
    // The log verifies and the published totals equal the recomputation from the log.
    let out = saksi(&["verify", "--url", &server.base, "--vkey", vkey.trim()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A small file system, mounted for one test and unmounted after it.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(path: &std::path::Path, megabytes: u32) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| SmallDisk(path.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_refuses_writes_cleanly_and_recovers() {
    let dir = TempDir::new("disk-full");
    let election = dir.path("election");
    assert!(saksi(&[
        "gen",
        "--out",
        &election,
        "--tps",
        "3000",
        "--seed",
        "51",
        "--fault-rate",
        "0"
    ])
    .status
    .success());
    let Some(_disk) = SmallDisk::mount(&dir.0.join("disk"), 48) else {
        eprintln!("skipping: cannot mount a small tmpfs here (needs root)");
        return;
    };
    let data = dir.path("disk/data");
    let init = saksi(&["init", "--data", &data, "--gen", &election]);
    assert!(init.status.success(), "{}", text(&init));
    // Leave room for a few commits: the partial entry bundle at the edge holds large registry entries,
    // and each commit writes a new version of it.
    let free = {
        let out = std::process::Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(dir.0.join("disk"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let filler = dir.0.join("disk/filler");
    std::fs::write(&filler, vec![0u8; (free - 24 * 1024 * 1024) as usize]).unwrap();

    let server = Server::start(&data);
    let forms: Vec<Vec<u8>> = std::fs::read_to_string(dir.0.join("election/forms.ndjson"))
        .unwrap()
        .lines()
        .map(|l| l.as_bytes().to_vec())
        .collect();
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for form in &forms {
        match try_post(&server.base, form) {
            Some((201, body)) => acknowledged.push(body["index"].as_u64().unwrap()),
            Some((503, body)) => {
                assert_eq!(body["error"]["code"], "UNAVAILABLE", "{body}");
                refused += 1;
                if refused >= 20 {
                    break;
                }
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(
        refused >= 20,
        "the disk never filled ({} acknowledged)",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty());
    // Still serving reads while refusing writes.
    assert_eq!(
        crate::util::http("GET", &format!("{}/api/v1/regions", server.base), b"").0,
        200
    );
    drop(server);

    // Space comes back; after a restart every acknowledged entry is there and writes work again.
    std::fs::remove_file(&filler).unwrap();
    let server = Server::start(&data);
    let size = crate::util::get_json(&format!("{}/api/v1/log", server.base))["checkpoint"]["size"]
        .as_u64()
        .unwrap();
    assert!(
        acknowledged.iter().all(|i| *i < size),
        "an acknowledged entry is missing after the fault"
    );
    let next = &forms[acknowledged.len() + refused];
    assert!(
        matches!(try_post(&server.base, next), Some((200 | 201, _))),
        "writes work again"
    );
    let vkey = std::fs::read_to_string(dir.0.join("disk/data/log.vkey")).unwrap();
    let out = saksi(&["verify", "--url", &server.base, "--vkey", vkey.trim()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
