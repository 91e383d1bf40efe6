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

    // Two servers with the same keys on the same store: both believe they are the writer.
    let copy = dir.path("data-b");
    let status = std::process::Command::new("cp")
        .args(["-r", &data, &copy])
        .status()
        .unwrap();
    assert!(status.success());
    let a = Server::spawn_command(
        serve_command(&data, &["--rate-limit", "0", "--store", &store]),
        "serving on ",
    );
    let b = Server::spawn_command(
        serve_command(&copy, &["--rate-limit", "0", "--store", &store]),
        "serving on ",
    );
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let verify = |base: &str| {
        let out = saksi(&["verify", "--url", base, "--vkey", vkey.trim()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    };
    verify(&a.base);

    let (one, two, three) = (
        dir.path("one.json"),
        dir.path("two.json"),
        dir.path("three.json"),
    );
    changed_form(&election, 1, &one);
    changed_form(&election, 2, &two);
    changed_form(&election, 3, &three);
    let (code, said) = submit(&a.base, &one, &election);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.starts_with("201"), "{said}");
    // B opened at the old size: its commit loses the swap, nothing of it lands, and it says why.
    let (_, said) = submit(&b.base, &two, &election);
    assert!(said.starts_with("503"), "{said}");
    assert!(said.contains(saksi_pgstore::CONFLICT), "{said}");
    // It stays stopped rather than retrying into a fork; A goes on.
    let (_, said) = submit(&b.base, &three, &election);
    assert!(said.starts_with("503"), "{said}");
    let (_, said) = submit(&a.base, &three, &election);
    assert!(said.starts_with("201"), "{said}");
    verify(&a.base);
    drop((a, b));

    // The server restarts on the store and finds everything: the state replays from PostgreSQL.
    let a = Server::spawn_command(
        serve_command(&data, &["--rate-limit", "0", "--store", &store]),
        "serving on ",
    );
    verify(&a.base);
    let (_, said) = submit(&a.base, &two, &election);
    assert!(said.starts_with("201"), "{said}");
}
