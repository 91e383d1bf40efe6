//! The log in PostgreSQL through the real binary (a throwaway cluster; skipped with a message where
//! no server is installed): init, import and serve with `--store`, verification over HTTP, and a
//! second server on the same store that loses the compare-and-swap and stops writing.

use saksi_pgstore::testing::TestCluster;

use crate::util::{saksi, serve_command, text, Server, TempDir};

/// A form of `election` with one figure changed (so the rulebook rejects it, and the rejection is
/// logged), written to `out` for `saksi submit --gen` to sign as the TPS's officer.
fn changed_form(election: &str, line: usize, out: &str) {
    let forms = std::fs::read_to_string(format!("{election}/forms.ndjson")).unwrap();
    let envelope: serde_json::Value =
        serde_json::from_str(forms.lines().nth(line).unwrap()).unwrap();
    let mut form = envelope["form"].clone();
    form["invalid"] = (form["invalid"].as_i64().unwrap() + 1).into();
    std::fs::write(out, form.to_string()).unwrap();
}

fn submit(base: &str, form: &str, election: &str) -> (Option<i32>, String) {
    let out = saksi(&["submit", "--url", base, "--form", form, "--gen", election]);
    (out.status.code(), text(&out))
}

#[test]
fn a_log_in_postgres_is_served_verified_and_never_forked_by_a_second_writer() {
    let Some(cluster) = TestCluster::start("binary") else {
        return;
    };
    let store = cluster.new_database("saksi");
    let dir = TempDir::new("postgres");
    let (election, data) = (dir.path("election"), dir.path("data"));
    let out = saksi(&["gen", "--out", &election, "--tps", "2000"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = saksi(&[
        "init", "--data", &data, "--gen", &election, "--store", &store,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!std::path::Path::new(&format!("{data}/log")).exists());
    // A second init on the same store is refused: the store already holds a log.
    let again = saksi(&[
        "init",
        "--data",
        &dir.path("data-again"),
        "--gen",
        &election,
        "--store",
        &store,
    ]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already holds a log"),
        "{}",
        text(&again)
    );
    let out = saksi(&[
        "import",
        "--data",
        &data,
        "--store",
        &store,
        &format!("{election}/forms.ndjson"),
    ]);
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{}",
        text(&out)
    );

    // Two servers with the same keys on the same store: the first takes the writer's lock, the
    // second serves reads as a standby.
    let copy = dir.path("data-b");
    let status = std::process::Command::new("cp")
        .args(["-r", &data, &copy])
        .status()
        .unwrap();
    assert!(status.success());
    let serve = |data: &str| {
        Server::spawn_command(
            serve_command(data, &["--rate-limit", "0", "--store", &store]),
            "serving on ",
        )
    };
    let a = serve(&data);
    let b = serve(&copy);
    assert!(
        b.preamble.iter().any(|l| l.contains("standby")),
        "{:?}",
        b.preamble
    );
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let verify = |base: &str| {
        let out = saksi(&["verify", "--url", base, "--vkey", vkey.trim()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        text(&out)
    };
    verify(&a.base);

    let form = |n: usize| {
        let path = dir.path(&format!("form-{n}.json"));
        changed_form(&election, n, &path);
        path
    };
    let (code, said) = submit(&a.base, &form(1), &election);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.starts_with("201"), "{said}");
    // The standby refuses writes and says why; it follows the writer's published checkpoint.
    let (_, said) = submit(&b.base, &form(2), &election);
    assert!(
        said.starts_with("503") && said.contains("standby"),
        "{said}"
    );
    let size = |base: &str| {
        crate::util::get_json(&format!("{base}/api/v1/log"))["checkpoint"]["size"].as_u64()
    };
    let wait_for = |what: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !what() {
            assert!(std::time::Instant::now() < deadline, "timed out");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait_for(&|| size(&b.base) == size(&a.base));
    verify(&b.base);

    // The writer dies: the standby takes over (its lock is released with its connection), replays
    // to the committed checkpoint, and writes.
    drop(a);
    wait_for(&|| submit(&b.base, &form(2), &election).1.starts_with("201"));
    let (_, said) = submit(&b.base, &form(3), &election);
    assert!(said.starts_with("201"), "{said}");
    verify(&b.base);
    // The old writer comes back as a standby.
    let a = serve(&data);
    assert!(
        a.preamble.iter().any(|l| l.contains("standby")),
        "{:?}",
        a.preamble
    );
    wait_for(&|| size(&a.base) == size(&b.base));
    verify(&a.base);
}
