//! The log in PostgreSQL through the real binary (a throwaway cluster; skipped with a message where
//! no server is installed): init, import and serve with `--store`, verification over HTTP, and a
//! second server on the same store that loses the compare-and-swap and stops writing.

use saksi_pgstore::testing::TestCluster;

use crate::util::{changed_form, saksi, serve_command, text, wait_until, Server, TempDir};

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
    // The store's URL from the environment (SAKSI_STORE), as a systemd unit gives it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_saksi"))
        .args([
            "import",
            "--data",
            &data,
            &format!("{election}/forms.ndjson"),
        ])
        .env("SAKSI_STORE", &store)
        .output()
        .unwrap();
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
    let form = |n: usize| {
        let path = dir.path(&format!("form-{n}.json"));
        changed_form(&election, n, &path);
        path
    };
    let a = serve(&data);
    // Nobody holds the writer's lock: A takes it within a standby interval and writes.
    wait_until(&|| submit(&a.base, &form(1), &election).1.starts_with("201"));
    let b = serve(&copy);
    // A load balancer's view: A is ready for submissions, B (a standby) is not, both are alive.
    let ready = |base: &str| crate::util::http("GET", &format!("{base}/readyz"), b"").0;
    assert_eq!(ready(&a.base), 200);
    assert_eq!(ready(&b.base), 503);
    assert_eq!(
        crate::util::http("GET", &format!("{}/healthz", b.base), b"").0,
        200
    );
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let verify = |base: &str| {
        let out = saksi(&["verify", "--url", base, "--vkey", vkey.trim()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        text(&out)
    };
    verify(&a.base);

    // The standby refuses writes and says why; it follows the writer's published checkpoint.
    let (_, said) = submit(&b.base, &form(2), &election);
    assert!(
        said.starts_with("503") && said.contains("standby"),
        "{said}"
    );
    let size = |base: &str| {
        crate::util::get_json(&format!("{base}/api/v1/log"))["checkpoint"]["size"].as_u64()
    };
    wait_until(&|| size(&b.base) == size(&a.base));
    verify(&b.base);

    // The writer dies: the standby takes over (its lock is released with its connection), replays
    // to the committed checkpoint, and writes.
    // A photo uploaded to the writer is kept in the store, not in its data directory: the standby
    // serves it once it has taken over.
    let photo = crate::evidence::png(32, 24, 90);
    let hex = crate::evidence::digest_of(&photo);
    let (status, _, _) = crate::util::http("POST", &format!("{}/api/v1/evidence", a.base), &photo);
    assert_eq!(status, 201);
    assert!(!std::path::Path::new(&format!("{data}/evidence/sha256/{}/{hex}", &hex[..2])).exists());
    let killed = std::time::Instant::now();
    drop(a);
    wait_until(&|| submit(&b.base, &form(2), &election).1.starts_with("201"));
    // What an operator sees: from the writer's death to the first acknowledgement by the standby
    // (the lock freed with the connection, the standby's next try, reopening and catching up).
    println!(
        "takeover: the standby acknowledged {:?} after the writer was killed",
        killed.elapsed()
    );
    assert_eq!(ready(&b.base), 200);
    let (status, _, served) =
        crate::util::http("GET", &format!("{}/evidence/sha256/{hex}", b.base), b"");
    assert_eq!((status, served == photo), (200, true));
    let (_, said) = submit(&b.base, &form(3), &election);
    assert!(said.starts_with("201"), "{said}");
    verify(&b.base);
    // The old writer comes back as a standby.
    let a = serve(&data);
    let (_, said) = submit(&a.base, &form(4), &election);
    assert!(
        said.starts_with("503") && said.contains("standby"),
        "{said}"
    );
    wait_until(&|| size(&a.base) == size(&b.base));
    verify(&a.base);
}

/// What the load's clients saw: acknowledged forms by TPS (with their log index) and every
/// checkpoint an answer carried, by size.
#[derive(Default)]
struct Seen {
    acknowledged: std::collections::BTreeMap<String, u64>,
    roots: std::collections::BTreeMap<u64, String>,
    /// The base URL that acknowledged last: the writer, as far as the clients know.
    writer: String,
    errors: usize,
}

#[test]
fn under_load_the_writer_and_the_database_fail_over_and_no_acknowledged_form_is_lost() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, RwLock};
    use std::time::{Duration, Instant};

    let Some(primary) = TestCluster::start("load-primary") else {
        return;
    };
    primary.new_database("saksi");
    let standby = primary.start_standby("load-standby", true);
    let store = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/saksi?target_session_attrs=read-write&connect_timeout=5",
        primary.port, standby.port
    );
    let dir = TempDir::new("postgres-load");
    let (election, data) = (dir.path("election"), dir.path("data"));
    let out = saksi(&[
        "gen",
        "--out",
        &election,
        "--tps",
        "6000",
        "--fault-rate",
        "0",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = saksi(&[
        "init", "--data", &data, "--gen", &election, "--store", &store,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let copy = dir.path("data-b");
    assert!(std::process::Command::new("cp")
        .args(["-r", &data, &copy])
        .status()
        .unwrap()
        .success());
    let datas = [data.clone(), copy.clone()];
    let serve = |i: usize| {
        Server::spawn_command(
            serve_command(&datas[i], &["--rate-limit", "0", "--store", &store]),
            "serving on ",
        )
    };
    let servers: Vec<Mutex<Option<Server>>> = (0..2).map(|i| Mutex::new(Some(serve(i)))).collect();
    let bases = Arc::new(RwLock::new(
        servers
            .iter()
            .map(|s| s.lock().unwrap().as_ref().unwrap().base.clone())
            .collect::<Vec<_>>(),
    ));

    // Every signed form of the election, each a new TPS result: one log entry each.
    let forms: Vec<String> = std::fs::read_to_string(format!("{election}/forms.ndjson"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let queue = Arc::new(Mutex::new(forms.clone()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (queue, seen, bases, stop) =
                (queue.clone(), seen.clone(), bases.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut prefer = c;
                loop {
                    // Popped apart from the loop's condition, whose guard would live for the
                    // whole iteration (and hold every other client back).
                    let next = queue.lock().unwrap().pop();
                    let Some(form) = next else {
                        return;
                    };
                    let tps = serde_json::from_str::<serde_json::Value>(&form).unwrap()["form"]
                        ["tps"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    // Retried until acknowledged, on whichever server writes (a client's loop).
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        // The server that answered last, until it fails; then the other (a
                        // client sticks to the writer and moves when it stops being one).
                        let base = bases.read().unwrap()[prefer % 2].clone();
                        let answer = std::panic::catch_unwind(|| {
                            crate::util::http(
                                "POST",
                                &format!("{base}/api/v1/forms"),
                                form.as_bytes(),
                            )
                        });
                        let Ok((status, _, body)) = answer else {
                            prefer += 1;
                            seen.lock().unwrap().errors += 1;
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        };
                        if status == 200 || status == 201 {
                            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                            let mut seen = seen.lock().unwrap();
                            let index = body["index"].as_u64().unwrap();
                            if let Some(before) = seen.acknowledged.insert(tps.clone(), index) {
                                assert_eq!(before, index, "TPS {tps} acknowledged at two indexes");
                            }
                            let size = body["checkpoint"]["size"].as_u64().unwrap();
                            let root = body["checkpoint"]["root"].as_str().unwrap().to_string();
                            if let Some(other) = seen.roots.insert(size, root.clone()) {
                                assert_eq!(other, root, "two checkpoints of size {size}");
                            }
                            seen.writer = base;
                            break;
                        }
                        prefer += 1;
                        seen.lock().unwrap().errors += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();

    // 20 rounds: SIGKILL whichever server acknowledged last (the writer), restart it (it comes
    // back as a standby), and let the other take over; in round 10 the database fails over instead.
    let wait_for_progress = |from: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.lock().unwrap().acknowledged.len() < from + 100
            && !queue.lock().unwrap().is_empty()
        {
            assert!(Instant::now() < deadline, "no progress after a failover");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let started = Instant::now();
    for round in 0..20 {
        let acknowledged = seen.lock().unwrap().acknowledged.len();
        wait_for_progress(acknowledged);
        eprintln!(
            "round {round}: {acknowledged} acknowledged at {:.1}s",
            started.elapsed().as_secs_f64()
        );
        if round == 10 {
            // Halfway, the database: the primary dies, the synchronous standby is promoted, and
            // the writer finds it through the multi-host URL and goes on (or the other server
            // does, whichever takes the writer's lock on the new primary first).
            primary.kill();
            standby.promote();
            continue;
        }
        let writer = seen.lock().unwrap().writer.clone();
        let Some(i) = bases.read().unwrap().iter().position(|b| *b == writer) else {
            continue;
        };
        let mut slot = servers[i].lock().unwrap();
        drop(slot.take()); // SIGKILL, as Server's drop does
        let server = serve(i);
        bases.write().unwrap()[i] = server.base.clone();
        *slot = Some(server);
    }

    // Let the clients finish every form, then check.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !queue.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.acknowledged.len(),
        forms.len(),
        "{} errors",
        seen.errors
    );
    // Read back from either server (a standby serves reads too) once it has caught up.
    let writer = bases.read().unwrap()[0].clone();
    let last = seen.acknowledged.values().max().copied().unwrap_or(0);
    wait_until(&|| {
        crate::util::get_json(&format!("{writer}/api/v1/log"))["checkpoint"]["size"]
            .as_u64()
            .is_some_and(|size| size > last)
    });
    // Every acknowledged form is in the log, at the index it was given, once.
    let mut indexes = std::collections::BTreeSet::new();
    for (tps, &index) in &seen.acknowledged {
        assert!(indexes.insert(index), "index {index} acknowledged twice");
        let entry = crate::util::get_json(&format!("{writer}/api/v1/entries/{index}"));
        assert_eq!(
            entry["form"]["tps"].as_str(),
            Some(tps.as_str()),
            "entry {index}"
        );
    }
    // The log verifies (every signature, verdict and tally re-derived) and every checkpoint a client
    // was given is the store's checkpoint of that size, in one tree.
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let out = saksi(&["verify", "--url", &writer, "--vkey", vkey.trim()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{} forms re-verified", forms.len())),
        "{}",
        text(&out)
    );
    // And with Go's sumdb, on a mirror fetched over HTTP (where Go is installed).
    let mirror_dir = dir.path("mirror");
    let out = saksi(&[
        "mirror",
        "--url",
        &writer,
        "--dir",
        &mirror_dir,
        "--vkey",
        vkey.trim(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    crate::util::go_verify(std::path::Path::new(&mirror_dir), vkey.trim());
    let storage = saksi_pgstore::PgStorage::connect(&store, 1).unwrap();
    for (size, root) in &seen.roots {
        use saksi_tlog::Storage;
        let note = storage
            .read(&format!("checkpoints/{size}"))
            .unwrap()
            .unwrap_or_else(|| panic!("no checkpoint of size {size} in the store"));
        assert!(
            String::from_utf8(note).unwrap().contains(root.as_str()),
            "size {size}"
        );
    }
    eprintln!(
        "{} forms acknowledged through 19 writer failovers and one database failover ({} refused or failed attempts retried)",
        seen.acknowledged.len(),
        seen.errors
    );
}

#[test]
fn a_log_copy_with_its_photos_is_restored_into_an_empty_store_and_written_on() {
    let Some(cluster) = TestCluster::start("restore") else {
        return;
    };
    let store = cluster.new_database("saksi");
    let dir = TempDir::new("postgres-restore");
    let (election, data) = (dir.path("election"), dir.path("data"));
    crate::util::gen_and_init(&election, &data, &["--tps", "1000", "--fault-rate", "0"]);
    crate::util::import(&data, &format!("{election}/forms.ndjson"), 0);
    let photo = crate::evidence::png(20, 10, 3);
    let hex = crate::evidence::digest_of(&photo);
    let before = {
        let server = Server::start(&data);
        let (status, _, _) =
            crate::util::http("POST", &format!("{}/api/v1/evidence", server.base), &photo);
        assert_eq!(status, 201);
        crate::util::get_json(&format!("{}/api/v1/log", server.base))["checkpoint"].clone()
    };
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let restore = |from: &str| {
        saksi(&[
            "restore",
            "--from",
            from,
            "--vkey",
            vkey.trim(),
            "--store",
            &store,
            "--evidence",
            &format!("{data}/evidence"),
        ])
    };
    // A copy that does not verify is refused before anything is written.
    let broken = dir.path("broken");
    assert!(std::process::Command::new("cp")
        .args(["-r", &format!("{data}/log"), &broken])
        .status()
        .unwrap()
        .success());
    let tile = format!("{broken}/tile/entries/000");
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&tile, bytes).unwrap();
    let out = restore(&broken);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not verify"), "{}", text(&out));

    let out = restore(&format!("{data}/log"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("1 evidence files loaded"),
        "{}",
        text(&out)
    );
    // Once is enough: a store that holds a log is never overwritten.
    let out = restore(&format!("{data}/log"));
    assert!(!out.status.success());
    assert!(text(&out).contains("already holds a log"), "{}", text(&out));

    // The restored store serves the same checkpoint and photo, verifies, and takes new entries.
    let server = Server::spawn_command(
        serve_command(&data, &["--rate-limit", "0", "--store", &store]),
        "serving on ",
    );
    wait_until(&|| crate::util::http("GET", &format!("{}/readyz", server.base), b"").0 == 200);
    let now = crate::util::get_json(&format!("{}/api/v1/log", server.base))["checkpoint"].clone();
    assert_eq!(now["root"], before["root"]);
    let (status, _, served) = crate::util::http(
        "GET",
        &format!("{}/evidence/sha256/{hex}", server.base),
        b"",
    );
    assert_eq!((status, served == photo), (200, true));
    let form = dir.path("form.json");
    changed_form(&election, 5, &form);
    let (_, said) = submit(&server.base, &form, &election);
    assert!(said.starts_with("201"), "{said}");
    let out = saksi(&["verify", "--url", &server.base, "--vkey", vkey.trim()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
