//! No command deletes or overwrites what it did not make: a directory that is not empty and holds no
//! saksi marker is refused (exit 2, nothing changed), a re-run replaces only its own subdirectories,
//! and never a log that a running process holds.

use std::path::Path;

use crate::util::{get_json, saksi, text, Server, TempDir};

const THESIS: &[u8] = b"four years of work\n";

fn plant(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("thesis.txt");
    std::fs::write(&path, THESIS).unwrap();
    path
}

fn assert_refused(args: &[&str], thesis: &Path) {
    let out = saksi(args);
    let said = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} must be refused:\n{said}"
    );
    assert!(said.contains("not empty"), "{args:?} says why:\n{said}");
    assert_eq!(
        std::fs::read(thesis).unwrap(),
        THESIS,
        "{args:?} touched an unrelated file"
    );
}

#[test]
fn an_unrelated_file_survives_every_command() {
    let dir = TempDir::new("safety-every");
    let theirs = dir.0.join("theirs");
    let thesis = plant(&theirs);
    let target = theirs.display().to_string();
    let gen = dir.path("election");
    let out = saksi(&["gen", "--out", &gen, "--tps", "40"]);
    assert!(out.status.success(), "{}", text(&out));

    assert_refused(
        &["demo", "--data", &target, "--tps", "40", "--no-serve"],
        &thesis,
    );
    assert_refused(&["gen", "--out", &target, "--tps", "40"], &thesis);
    assert_refused(&["init", "--data", &target, "--gen", &gen], &thesis);
    assert_refused(
        &["bench", "log", "--dir", &target, "--entries", "10"],
        &thesis,
    );
    // A mirror is refused only once the served checkpoint verifies: serve a real log first.
    let data = dir.path("data");
    let out = saksi(&["init", "--data", &data, "--gen", &gen]);
    assert!(out.status.success(), "{}", text(&out));
    let vkey = std::fs::read_to_string(dir.0.join("data/log.vkey")).unwrap();
    assert_refused(
        &[
            "witness",
            "--data",
            &target,
            "--name",
            "w",
            "--log-vkey",
            vkey.trim(),
            "--addr",
            "127.0.0.1:0",
        ],
        &thesis,
    );
    let server = Server::start(&data);
    assert_refused(
        &[
            "mirror",
            "--url",
            &server.base,
            "--dir",
            &target,
            "--vkey",
            vkey.trim(),
        ],
        &thesis,
    );
    // A saksi directory of another kind is not taken over either.
    let out = saksi(&["gen", "--out", &data, "--tps", "40"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("saksi data"), "{}", text(&out));
}

#[test]
fn demo_and_bench_rerun_replace_only_their_own() {
    let dir = TempDir::new("safety-rerun");
    let demo = dir.path("demo");
    let out = saksi(&["demo", "--data", &demo, "--tps", "40", "--no-serve"]);
    assert!(out.status.success(), "{}", text(&out));
    let thesis = plant(&dir.0.join("demo"));
    // Another size: the demo rebuilds its election and log, and leaves the rest.
    let out = saksi(&["demo", "--data", &demo, "--tps", "45", "--no-serve"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&thesis).unwrap(), THESIS);

    let bench = dir.path("bench");
    let bench_log = || {
        let out = saksi(&[
            "bench",
            "log",
            "--dir",
            &bench,
            "--entries",
            "300",
            "--batch",
            "100",
        ]);
        assert!(out.status.success(), "{}", text(&out));
    };
    bench_log();
    let thesis = plant(&dir.0.join("bench"));
    bench_log();
    assert_eq!(std::fs::read(&thesis).unwrap(), THESIS);
}

#[test]
fn demo_leaves_a_running_servers_log_alone() {
    let dir = TempDir::new("safety-lock");
    let demo = dir.path("demo");
    let out = saksi(&["demo", "--data", &demo, "--tps", "40", "--no-serve"]);
    assert!(out.status.success(), "{}", text(&out));
    let server = Server::start(&dir.path("demo/server"));
    let before = get_json(&format!("{}/api/v1/log", server.base));
    let out = saksi(&["demo", "--data", &demo, "--tps", "45", "--no-serve"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("in use"), "{}", text(&out));
    assert!(dir.0.join("demo/server/keys/log.key").exists());
    assert!(dir.0.join("demo/election/forms.ndjson").exists());
    let after = get_json(&format!("{}/api/v1/log", server.base));
    assert_eq!(before["checkpoint"], after["checkpoint"]);
    // The server's log is whole: it verifies from its URL.
    let vkey = std::fs::read_to_string(dir.0.join("demo/server/log.vkey")).unwrap();
    let out = saksi(&["verify", "--url", &server.base, "--vkey", vkey.trim()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_authority_key_never_needs_to_reach_the_server() {
    let dir = TempDir::new("offline-genesis");
    let election = dir.path("election");
    let out = saksi(&[
        "gen",
        "--out",
        &election,
        "--tps",
        "40",
        "--seed",
        "5",
        "--fault-rate",
        "0",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // 1. On the server: its own keys only, and the request for a genesis.
    let data = dir.path("data");
    let out = saksi(&["init", "--data", &data, "--keys-only"]);
    assert!(out.status.success(), "{}", text(&out));
    let request = format!("{data}/genesis-request.json");
    assert!(std::path::Path::new(&request).exists());
    // 2. Where the authority's key is kept: sign the genesis and registry for those keys.
    let authority = dir.path("authority.key");
    assert!(saksi(&["keygen", "--out", &authority]).status.success());
    let genesis = dir.path("genesis.ndjson");
    let out = saksi(&[
        "genesis",
        "--authority-key",
        &authority,
        "--request",
        &request,
        "--gen",
        &election,
        "--out",
        &genesis,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // Statements made for another server's keys, or altered on the way, are refused unlogged.
    let other = dir.path("other");
    assert!(saksi(&["init", "--data", &other, "--keys-only"])
        .status
        .success());
    let out = saksi(&["init", "--data", &other, "--genesis", &genesis]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("this directory's are"),
        "{}",
        text(&out)
    );
    assert!(!dir.0.join("other/log/checkpoint").exists());
    let statements = std::fs::read_to_string(&genesis).unwrap();
    let altered = dir.path("altered.ndjson");
    let mut lines: Vec<String> = statements.lines().map(String::from).collect();
    // A province renamed in the registry part the authority signed.
    lines[1] = lines[1].replacen("\"Aceh\"", "\"Atjeh\"", 1);
    assert!(
        lines[1] != statements.lines().nth(1).unwrap(),
        "the line was altered"
    );
    std::fs::write(&altered, lines.join("\n")).unwrap();
    let out = saksi(&["init", "--data", &data, "--genesis", &altered]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not signed by the authority"),
        "{}",
        text(&out)
    );
    // 3. On the server: the log from the signed statements.
    let out = saksi(&["init", "--data", &data, "--genesis", &genesis]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!dir.0.join("data-authority").exists());
    let out = saksi(&[
        "import",
        "--data",
        &data,
        &format!("{election}/forms.ndjson"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Later registry changes the same way: signed where the key is, logged here.
    let officer = dir.path("officer.key");
    let officer_public = String::from_utf8(saksi(&["keygen", "--out", &officer]).stdout).unwrap();
    let tps_csv = std::fs::read_to_string(dir.0.join("election/registry/tps.csv")).unwrap();
    let tps = tps_csv.lines().nth(1).unwrap().split(',').next().unwrap();
    let statement = dir.path("enrol.statement");
    let out = saksi(&[
        "enroll",
        "--authority-key",
        &authority,
        "--code",
        tps,
        "--key",
        officer_public.trim(),
        "--out",
        &statement,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = saksi(&["log-statement", "--data", &data, &statement]);
    assert!(out.status.success(), "{}", text(&out));
    let vkey = std::fs::read_to_string(dir.0.join("data/log.vkey")).unwrap();
    let out = saksi(&[
        "verify",
        "--dir",
        &format!("{data}/log"),
        "--vkey",
        vkey.trim(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
