//! Read replicas through the real binary: `saksi serve --read-only` from a directory that `saksi
//! mirror --follow` keeps current, and from a PostgreSQL hot standby of the shared store. Each
//! serves what the writer published (figures, log files, proofs), follows new checkpoints, and
//! refuses every submission.

use saksi_pgstore::testing::TestCluster;

use crate::util::{
    changed_form, get_json, http, saksi, serve_command, text, wait_until, Server, TempDir,
};

fn size(base: &str) -> u64 {
    get_json(&format!("{base}/api/v1/log"))["checkpoint"]["size"]
        .as_u64()
        .unwrap()
}

fn submit(base: &str, form: &str, election: &str) -> String {
    text(&saksi(&[
        "submit", "--url", base, "--form", form, "--gen", election,
    ]))
}

/// `saksi serve --read-only` from `source` (`--log DIR` or `--store URL`), checked with `vkey`.
fn spawn_replica(source: &[&str], vkey: &str) -> Server {
    let mut args = vec!["serve", "--read-only"];
    args.extend_from_slice(source);
    args.extend_from_slice(&["--vkey", vkey, "--rate-limit", "0", "--addr", "127.0.0.1:0"]);
    Server::spawn(&args, "serving on ")
}

/// What a replica must serve exactly as the writer does, once it has followed it.
fn assert_serves_as_the_writer(replica: &str, writer: &str, vkey: &str) {
    for path in [
        "/log/checkpoint",
        "/api/v1/regions",
        "/api/v1/receipts/3",
        "/api/v1/entries/5",
        "/log/tile/0/000",
    ] {
        let (a, _, from_writer) = http("GET", &format!("{writer}{path}"), b"");
        let (b, _, from_replica) = http("GET", &format!("{replica}{path}"), b"");
        assert_eq!((a, b), (200, 200), "{path}");
        assert!(from_writer == from_replica, "{path} differs");
    }
    let out = saksi(&["verify", "--url", replica, "--vkey", vkey]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// The replica answers every write with 503 and says it is a read replica; it is ready for
/// reads, with role "replica".
fn assert_refuses_writes(replica: &str, election: &str, form: &str) {
    let said = submit(replica, form, election);
    assert!(
        said.starts_with("503") && said.contains("read replica"),
        "{said}"
    );
    let (status, _, body) = http("POST", &format!("{replica}/api/v1/statements"), b"{}");
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = http("GET", &format!("{replica}/readyz"), b"");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, body["role"].as_str()), (200, Some("replica")));
}

#[test]
fn a_replica_of_a_followed_mirror_serves_what_the_writer_published_and_takes_no_writes() {
    let dir = TempDir::new("replica-mirror");
    let (election, data) = (dir.path("election"), dir.path("data"));
    crate::util::gen_and_init(&election, &data, &["--tps", "1500"]);
    crate::util::import(&data, &format!("{election}/forms.ndjson"), 1);
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let vkey = vkey.trim();
    let writer = Server::start(&data);

    // No copy yet: the replica says how to make one.
    let mirror_dir = dir.path("mirror");
    let out = saksi(&["serve", "--read-only", "--log", &mirror_dir, "--vkey", vkey]);
    assert!(!out.status.success());
    assert!(text(&out).contains("saksi mirror"), "{}", text(&out));

    let _mirror = Server::spawn(
        &[
            "mirror",
            "--follow",
            "--url",
            &writer.base,
            "--dir",
            &mirror_dir,
            "--vkey",
            vkey,
        ],
        "saksi mirror: following ",
    );
    wait_until(&|| std::path::Path::new(&format!("{mirror_dir}/checkpoint")).is_file());
    let replica = spawn_replica(&["--log", &mirror_dir], vkey);
    wait_until(&|| size(&replica.base) == size(&writer.base));
    assert_serves_as_the_writer(&replica.base, &writer.base, vkey);
    let form = dir.path("form.json");
    changed_form(&election, 7, &form);
    assert_refuses_writes(&replica.base, &election, &form);

    // A new entry at the writer reaches the replica through the mirror.
    let before = size(&writer.base);
    let said = submit(&writer.base, &form, &election);
    assert!(said.starts_with("201"), "{said}");
    let took = wait_until(&|| size(&replica.base) > before);
    println!("the replica served the new checkpoint {took:?} after the writer's receipt");
    assert_eq!(size(&replica.base), size(&writer.base));
    assert_serves_as_the_writer(&replica.base, &writer.base, vkey);
}

#[test]
fn a_replica_of_a_postgres_hot_standby_follows_the_writer_and_takes_no_writes() {
    let Some(primary) = TestCluster::start("replica-primary") else {
        return;
    };
    let store = primary.new_database("saksi");
    let standby = primary.start_standby("replica-standby", false);
    let standby_url = format!(
        "postgres://postgres@127.0.0.1:{}/saksi?connect_timeout=10",
        standby.port
    );
    let dir = TempDir::new("replica-postgres");
    let (election, data) = (dir.path("election"), dir.path("data"));
    let out = saksi(&["gen", "--out", &election, "--tps", "1500"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = saksi(&[
        "init", "--data", &data, "--gen", &election, "--store", &store,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = saksi(&[
        "import",
        "--data",
        &data,
        "--store",
        &store,
        &format!("{election}/forms.ndjson"),
    ]);
    assert!(out.status.code() == Some(1), "{}", text(&out));
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let vkey = vkey.trim();
    let writer = Server::spawn_command(
        serve_command(&data, &["--rate-limit", "0", "--store", &store]),
        "serving on ",
    );
    wait_until(&|| http("GET", &format!("{}/readyz", writer.base), b"").0 == 200);
    let replica = spawn_replica(&["--store", &standby_url], vkey);
    wait_until(&|| size(&replica.base) == size(&writer.base));
    assert_serves_as_the_writer(&replica.base, &writer.base, vkey);
    let form = dir.path("form.json");
    changed_form(&election, 3, &form);
    assert_refuses_writes(&replica.base, &election, &form);

    let before = size(&writer.base);
    let said = submit(&writer.base, &form, &election);
    assert!(said.starts_with("201"), "{said}");
    let took = wait_until(&|| size(&replica.base) > before);
    println!("the replica served the new checkpoint {took:?} after the writer's receipt");
    assert_serves_as_the_writer(&replica.base, &writer.base, vkey);

    // Photos live in the store beside the log: the replica serves what the writer took.
    let photo = crate::evidence::png(16, 16, 7);
    let hex = crate::evidence::digest_of(&photo);
    let (status, _, _) = http("POST", &format!("{}/api/v1/evidence", writer.base), &photo);
    assert_eq!(status, 201);
    wait_until(&|| {
        let (status, _, served) = http(
            "GET",
            &format!("{}/evidence/sha256/{hex}", replica.base),
            b"",
        );
        status == 200 && served == photo
    });
}
