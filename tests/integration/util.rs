//! Small helpers shared by the integration tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub fn saksi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saksi"))
        .args(args)
        .output()
        .expect("the saksi binary runs")
}

/// `saksi import --data DATA FILE`, which must exit `code` (0: all accepted; 1: something rejected
/// or refused, as injected faults are).
pub fn import(data: &str, file: &str, code: i32) {
    let out = saksi(&["import", "--data", data, file]);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
}

/// `saksi gen --out ELECTION GEN_ARGS...`, then `saksi init --data DATA --gen ELECTION`; both must
/// succeed.
pub fn gen_and_init(election: &str, data: &str, gen_args: &[&str]) {
    let mut args = vec!["gen", "--out", election];
    args.extend_from_slice(gen_args);
    let out = saksi(&args);
    assert!(out.status.success(), "{}", text(&out));
    let out = saksi(&["init", "--data", data, "--gen", election]);
    assert!(out.status.success(), "{}", text(&out));
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("saksi-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `../shared/data` beside the repository, or `None` (and a note on stderr) when it is absent.
pub fn shared_data() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if path.join("sirekap-2024").is_dir() {
        Some(path)
    } else {
        eprintln!("skipping: {} is absent", path.display());
        None
    }
}

pub fn count_in(report: &str, label: &str) -> usize {
    report
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix(label)
                .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {label:?} in:\n{report}"))
}

/// A `saksi serve` process on a free port, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// What the process printed before its address.
    pub preamble: Vec<String>,
}

impl Server {
    /// `saksi serve` without the per-address rate limit: every test client is 127.0.0.1, and these
    /// tests are about answers, not admission (`bad_input.rs` and `hostile.rs` test the limits).
    pub fn start(data: &str) -> Server {
        Server::serve(data, &["--rate-limit", "0"])
    }

    /// `saksi serve --data DATA` on a free port of 127.0.0.1, with these flags (the defaults else).
    pub fn serve(data: &str, flags: &[&str]) -> Server {
        Server::spawn_command(serve_command(data, flags), "serving on ")
    }

    /// Runs `saksi ARGS` and waits for the line starting with `prefix` that names its URL.
    pub fn spawn(args: &[&str], prefix: &str) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_saksi"));
        command.args(args);
        Server::spawn_command(command, prefix)
    }

    /// [`Server::spawn`] for a prepared command (limits set, environment changed).
    pub fn spawn_command(mut command: Command, prefix: &str) -> Server {
        // One log line per request from every server of every test would bury the failures:
        // warnings and alarms only, unless the test asks for more.
        if !command
            .get_envs()
            .any(|(name, _)| name == "SAKSI_LOG_LEVEL")
        {
            command.env("SAKSI_LOG_LEVEL", "warn");
        }
        let mut child = command
            .stdout(Stdio::piped())
            // stderr as the caller set it (inherited by default).
            .spawn()
            .expect("saksi starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut preamble = Vec::new();
        let base = loop {
            let line = lines
                .next()
                .expect("the process printed its address")
                .unwrap();
            preamble.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                let url = rest.split_whitespace().next().unwrap();
                let url = url.strip_suffix("/add-checkpoint").unwrap_or(url);
                break url.trim_end_matches('/').to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            base,
            preamble,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command of [`Server::serve`], to adjust (limits, environment) before spawning it.
pub fn serve_command(data: &str, flags: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_saksi"));
    command
        .args(["serve", "--data", data, "--addr", "127.0.0.1:0"])
        .args(flags);
    command
}

/// One HTTP/1.1 request on a fresh connection: (status, headers, body).
pub fn http(method: &str, url: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut payload = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut data = &payload[..];
        loop {
            let end = data.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16)
                .unwrap();
            data = &data[end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&data[..size]);
            data = &data[size + 2..];
        }
        payload = out;
    }
    (status, head, payload)
}

pub fn get_json(url: &str) -> serde_json::Value {
    let (status, _, body) = http("GET", url, b"");
    assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Verifies a log directory with Go's sumdb (`scripts/go-interop.sh`) where Go is installed; CI
/// must have it.
pub fn go_verify(log_dir: &Path, vkey: &str) {
    if !Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(std::env::var("CI").is_err(), "CI must have Go");
        eprintln!("skipping the Go check: Go is not installed");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/go-interop.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(log_dir)
        .arg(vkey)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// Polls `what` every 50 ms for up to 20 s; returns how long it took.
pub fn wait_until(what: &dyn Fn() -> bool) -> Duration {
    let started = std::time::Instant::now();
    while !what() {
        assert!(started.elapsed() < Duration::from_secs(20), "timed out");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// A form of `election` with one figure changed (so the rulebook rejects it, and the rejection is
/// logged: a new entry each time), written to `out` for `saksi submit --gen` to sign as the TPS's
/// officer.
pub fn changed_form(election: &str, line: usize, out: &str) {
    let forms = std::fs::read_to_string(format!("{election}/forms.ndjson")).unwrap();
    let envelope: serde_json::Value =
        serde_json::from_str(forms.lines().nth(line).unwrap()).unwrap();
    let mut form = envelope["form"].clone();
    form["invalid"] = (form["invalid"].as_i64().unwrap() + 1).into();
    std::fs::write(out, form.to_string()).unwrap();
}
