//! What an operator sees of a running server: settings from a configuration file (below the
//! environment and the command line), one structured log line per request, and Prometheus metrics
//! that count what happened.

use std::process::{Command, Stdio};

use crate::util::{http, saksi, text, Server, TempDir};

/// The value of the series `name` (labels included, exactly as exposed), if present.
fn series(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_configured_server_logs_each_request_and_counts_submissions_by_outcome_and_rule() {
    let dir = TempDir::new("operations");
    let (election, data) = (dir.path("election"), dir.path("data"));
    crate::util::gen_and_init(&election, &data, &["--tps", "300"]);
    let config = dir.path("saksi.toml");
    // The file sets the rate limit to 1/s; the environment overrides it (no limit), and the
    // command line overrides the file's address.
    std::fs::write(
        &config,
        format!(
            "data = \"{data}\"\naddr = \"127.0.0.1:1\"\nrate-limit = 1\nburst = 1\nlog-format = \"json\"\n"
        ),
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.path("stderr.txt")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_saksi"));
    command
        .args(["serve", "--config", &config, "--addr", "127.0.0.1:0"])
        .env("SAKSI_RATE_LIMIT", "0")
        .env("SAKSI_LOG_LEVEL", "info")
        .stderr(Stdio::from(stderr));
    let server = Server::spawn_command(command, "serving on ");

    // Three forms: one accepted, one with a figure changed (rejected by a rule), one twice.
    let forms = std::fs::read_to_string(format!("{election}/forms.ndjson")).unwrap();
    let lines: Vec<&str> = forms.lines().collect();
    let post = |body: &str| {
        http(
            "POST",
            &format!("{}/api/v1/forms", server.base),
            body.as_bytes(),
        )
        .0
    };
    assert_eq!(post(lines[0]), 201);
    assert_eq!(post(lines[0]), 200);
    let mut form: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    form["form"]["invalid"] = (form["form"]["invalid"].as_i64().unwrap() + 1).into();
    let changed = dir.path("changed.json");
    std::fs::write(&changed, form["form"].to_string()).unwrap();
    let out = saksi(&[
        "submit",
        "--url",
        &server.base,
        "--form",
        &changed,
        "--gen",
        &election,
    ]);
    assert!(text(&out).starts_with("201"), "{}", text(&out));
    // Many requests in a row: the environment's "no limit" won over the file's 1/s.
    for _ in 0..5 {
        assert_eq!(
            http("GET", &format!("{}/api/v1/log", server.base), b"").0,
            200
        );
    }
    // The rule that rejected it, as the submitter was told.
    let said = text(&out);
    let rule = said
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|word| saksi_election::rules::RULES.iter().any(|r| r.code == *word))
        .unwrap_or_else(|| panic!("no rule code in {said}"))
        .to_string();

    let (status, headers, body) = http("GET", &format!("{}/metrics", server.base), b"");
    assert_eq!(status, 200);
    assert!(
        headers.to_lowercase().contains("openmetrics-text"),
        "{headers}"
    );
    let metrics = String::from_utf8(body).unwrap();
    assert_eq!(
        series(&metrics, "saksi_submissions_total{outcome=\"accepted\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        series(&metrics, "saksi_submissions_total{outcome=\"rejected\"}"),
        Some(1.0)
    );
    assert_eq!(
        series(&metrics, "saksi_submissions_total{outcome=\"duplicate\"}"),
        Some(1.0)
    );
    assert_eq!(
        series(
            &metrics,
            &format!("saksi_rejections_total{{rule=\"{rule}\"}}")
        ),
        Some(1.0),
        "{metrics}"
    );
    // Two entries were committed (the duplicate was found, not written), in one or two batches.
    let commits = series(&metrics, "saksi_commit_duration_seconds_count").unwrap();
    assert!((1.0..=2.0).contains(&commits), "{commits}");
    assert_eq!(
        series(
            &metrics,
            "saksi_http_requests_total{method=\"POST\",route=\"/api/v1/forms\",status=\"201\"}"
        ),
        Some(2.0)
    );
    assert_eq!(series(&metrics, "saksi_role{role=\"writer\"}"), Some(1.0));
    assert!(series(&metrics, "saksi_log_published_size").unwrap() >= 2.0);
    assert!(series(&metrics, "saksi_http_connections").unwrap() >= 1.0);

    // One JSON line per request, with its status and latency; the rejection is logged with its rule.
    drop(server);
    let log = std::fs::read_to_string(dir.path("stderr.txt")).unwrap();
    let requests: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["target"] == "saksi::http")
        .collect();
    assert!(requests.len() >= 9, "{} lines: {log}", requests.len());
    let first = &requests[0]["fields"];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/api/v1/forms");
    assert_eq!(first["status"], 201);
    assert!(first["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(
        log.lines()
            .any(|l| l.contains("\"rejected\"") && l.contains("saksi::submissions")),
        "{log}"
    );
}

#[test]
fn a_configuration_file_with_an_unknown_setting_is_refused_before_anything_starts() {
    let dir = TempDir::new("operations-config");
    let config = dir.path("saksi.toml");
    std::fs::write(&config, "data = \"/nonexistent\"\nrate_limit = 5\n").unwrap();
    let out = saksi(&["serve", "--config", &config]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("unknown setting \"rate_limit\""),
        "{}",
        text(&out)
    );
}

/// One POST on a fresh connection: `Ok(Some((status, body)))` for a whole response, `Ok(None)` when
/// the server closed without answering, `Err` for a response cut short or a refused connection.
fn post(host: &str, path: &str, body: &[u8]) -> std::io::Result<Option<(u16, String)>> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    if response.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("a response cut short in its head"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .ok_or_else(|| std::io::Error::other("no content-length"))?;
    if rest.len() != length {
        return Err(std::io::Error::other(format!(
            "a body of {} bytes of {length}",
            rest.len()
        )));
    }
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Ok(Some((status, rest.to_string())))
}

#[test]
fn sigterm_drains_requests_in_flight_and_every_acknowledged_form_is_kept() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = TempDir::new("operations-drain");
    let (election, data) = (dir.path("election"), dir.path("data"));
    crate::util::gen_and_init(&election, &data, &["--tps", "3000", "--fault-rate", "0"]);
    let mut server = Server::start(&data);
    let host = server.base.strip_prefix("http://").unwrap().to_string();
    let size = |base: &str| {
        crate::util::get_json(&format!("{base}/api/v1/log"))["checkpoint"]["size"]
            .as_u64()
            .unwrap()
    };
    let initial = size(&server.base);
    let forms: Vec<String> = std::fs::read_to_string(format!("{election}/forms.ndjson"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let acknowledged = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    let cut_short = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = forms
        .chunks(forms.len() / 8)
        .map(|part| {
            let (part, host) = (part.to_vec(), host.clone());
            let (acknowledged, cut_short, stop) =
                (acknowledged.clone(), cut_short.clone(), stop.clone());
            std::thread::spawn(move || {
                for form in part {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match post(&host, "/api/v1/forms", form.as_bytes()) {
                        Ok(Some((201, body))) => {
                            let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
                            let tps: serde_json::Value = serde_json::from_str(&form).unwrap();
                            acknowledged.lock().unwrap().push((
                                answer["index"].as_u64().unwrap(),
                                tps["form"]["tps"].as_str().unwrap().to_string(),
                            ));
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
                        // Connections the kernel queued but the server never took: reset when
                        // the listener closes, their requests never read (checked below: nothing
                        // unacknowledged is in the log).
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                        Err(e) => cut_short.lock().unwrap().push(e.to_string()),
                    }
                }
            })
        })
        .collect();
    // Some forms in, then SIGTERM while the clients keep sending.
    while acknowledged.lock().unwrap().len() < 200 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the server did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    assert!(exit.success(), "{exit:?}");
    println!(
        "SIGTERM: stopped in {:?}, {} forms acknowledged",
        started.elapsed(),
        acknowledged.lock().unwrap().len()
    );
    // No answer was cut short.
    assert_eq!(*cut_short.lock().unwrap(), Vec::<String>::new());
    // Every acknowledged form is in the log at its index, after a restart; and nothing else: a
    // form the server took in and logged was answered before it stopped.
    let server = Server::start(&data);
    let acknowledged_count = acknowledged.lock().unwrap().len() as u64;
    assert_eq!(size(&server.base), initial + acknowledged_count);
    for (index, tps) in acknowledged.lock().unwrap().iter() {
        let entry = crate::util::get_json(&format!("{}/api/v1/entries/{index}", server.base));
        assert!(
            entry.to_string().contains(tps.as_str()),
            "entry {index}: {entry}"
        );
    }
}
