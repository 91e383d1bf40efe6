//! The PostgreSQL store against a real server (a throwaway cluster, skipped with a message where no
//! server is installed): the Storage contract, the log's invariants after every step under injected
//! faults and a killed server, and two writers that both believe they write.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use saksi_pgstore::testing::TestCluster;
use saksi_pgstore::{PgStorage, CONFLICT};
use saksi_tlog::audit::audit;
use saksi_tlog::invariants::Invariants;
use saksi_tlog::note::{Signer, TYPE_ED25519};
use saksi_tlog::{Log, LogError, Publishing, Storage};

fn signer() -> Signer {
    Signer::new("saksi.test/pg", TYPE_ED25519, [7; 32]).unwrap()
}

fn entry(i: u64) -> Vec<u8> {
    let mut bytes = format!("entry {i} ").into_bytes();
    bytes.resize(bytes.len() + (i % 97) as usize * 13, (i % 251) as u8);
    bytes
}

fn connect(url: &str) -> Arc<PgStorage> {
    Arc::new(PgStorage::connect(url, 2).unwrap())
}

/// What must hold, re-checked from the database alone after every step: the tlog's own
/// invariants (`saksi_tlog::invariants`), the same the directory store is held to.
#[derive(Default)]
struct World {
    seen: Invariants,
}

impl World {
    fn check(&mut self, storage: &Arc<PgStorage>) {
        self.seen.check(storage.clone(), &signer().verifier());
    }

    fn append(&mut self, log: &mut Log, entries: &[Vec<u8>]) -> Result<(), LogError> {
        self.seen.append(log, entries).map(|_| ())
    }
}

#[test]
fn the_storage_contract_holds() {
    let Some(cluster) = TestCluster::start("contract") else {
        return;
    };
    let storage = connect(&cluster.new_database("contract"));
    assert_eq!(storage.read("checkpoint").unwrap(), None);
    assert!(storage.list("checkpoints").unwrap().is_empty());
    let file = |p: &str, b: &[u8]| (p.to_string(), b.to_vec());
    storage
        .commit(
            &[file("tile/0/000", b"tiles"), file("tile/0/000.p/3", b"p")],
            &[file("checkpoints/0", b"zero")],
            &[file("checkpoint", b"zero")],
        )
        .unwrap();
    assert_eq!(storage.read("tile/0/000").unwrap().unwrap(), b"tiles");
    assert_eq!(storage.list("checkpoints").unwrap(), vec!["0"]);
    assert_eq!(storage.list("tile/0").unwrap(), vec!["000", "000.p"]);
    // Create-once: the same bytes again are accepted, other bytes refused and nothing of that
    // call lands (one transaction).
    storage
        .create_durable(&[file("checkpoints/0", b"zero")])
        .unwrap();
    let refused = storage
        .commit(
            &[file("tile/0/001", b"never")],
            &[file("checkpoints/0", b"another zero")],
            &[],
        )
        .unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(storage.read("tile/0/001").unwrap(), None);
    assert_eq!(storage.read("checkpoints/0").unwrap().unwrap(), b"zero");
    // Tiles are created once too: every row is part of a committed tree, so other bytes under a
    // tile's path can only come from a fork.
    storage.write_new(&[file("tile/0/000", b"tiles")]).unwrap();
    let refused = storage
        .write_new(&[file("tile/0/000", b"forked")])
        .unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(storage.read("tile/0/000").unwrap().unwrap(), b"tiles");
    storage.remove_dir("tile/0/000.p").unwrap();
    assert_eq!(storage.list("tile/0").unwrap(), vec!["000"]);
    // A second storage on the same database reads what the first wrote.
    let other = connect(&cluster.new_database("contract_empty"));
    assert_eq!(other.read("checkpoint").unwrap(), None);
    assert!(PgStorage::connect("not a url", 1).is_err());
}

#[test]
fn appends_reopen_and_every_invariant_holds() {
    let Some(cluster) = TestCluster::start("appends") else {
        return;
    };
    let url = cluster.new_database("appends");
    let mut world = World::default();
    let mut next = 0u64;
    for round in 0..4 {
        let storage = connect(&url);
        let mut log = Log::open(storage.clone(), signer()).unwrap();
        for batch in 0..12u64 {
            // Batches of 1 to 300 entries: partial tiles grow, fill, and their partials are dropped.
            let len = 1 + (round * 12 + batch) * 37 % 300;
            let entries: Vec<Vec<u8>> = (next..next + len).map(entry).collect();
            next += len;
            world.append(&mut log, &entries).unwrap();
        }
        world.check(&storage);
    }
    assert!(next > 1000, "{next}");
}

/// A storage whose armed call fails: before reaching the database (nothing written) or after it
/// (written, but the acknowledgement lost, as when the connection drops during COMMIT).
struct Flaky {
    inner: Arc<PgStorage>,
    calls: AtomicU64,
    fail_at: u64,
    after: bool,
    failed: Mutex<bool>,
}

impl Flaky {
    fn call<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n != self.fail_at {
            return f();
        }
        *self.failed.lock().unwrap() = true;
        if self.after {
            f()?;
        }
        Err(io::Error::other("injected: the connection dropped"))
    }
}

impl Storage for Flaky {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.inner.read(path)
    }
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn write_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.call(|| self.inner.write_durable(files))
    }
    fn write_new(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.call(|| self.inner.write_new(files))
    }
    fn create_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.call(|| self.inner.create_durable(files))
    }
    fn commit(
        &self,
        new: &[(String, Vec<u8>)],
        created: &[(String, Vec<u8>)],
        replaced: &[(String, Vec<u8>)],
    ) -> io::Result<()> {
        self.call(|| self.inner.commit(new, created, replaced))
    }
    fn remove_dir(&self, dir: &str) -> io::Result<()> {
        self.call(|| self.inner.remove_dir(dir))
    }
}

#[test]
fn recovers_from_a_failure_at_every_write_before_or_after_the_database() {
    let Some(cluster) = TestCluster::start("faults") else {
        return;
    };
    for after in [false, true] {
        for fail_at in 1..=12u64 {
            let url = cluster.new_database(&format!("faults_{after}_{fail_at}"));
            let mut world = World::default();
            let mut next = 0u64;
            // Each publishing mode has its own write pattern (ByCaller: `checkpoint` apart).
            let publishing = if fail_at % 2 == 0 {
                Publishing::WithEachCommit
            } else {
                Publishing::ByCaller
            };
            let flaky = Arc::new(Flaky {
                inner: connect(&url),
                calls: AtomicU64::new(0),
                fail_at,
                after,
                failed: Mutex::new(false),
            });
            // The first write (the empty tree's checkpoint) may be the one that fails.
            let Ok(mut log) = Log::open_with(flaky.clone(), signer(), publishing) else {
                assert_eq!(fail_at, 1);
                let storage = connect(&url);
                let _reopened = Log::open(storage.clone(), signer()).unwrap();
                world.check(&storage);
                continue;
            };
            for batch in 0..12u64 {
                let entries: Vec<Vec<u8>> = (next..next + 1 + batch * 50).map(entry).collect();
                next += entries.len() as u64;
                match world.append(&mut log, &entries) {
                    Ok(()) => {
                        if publishing == Publishing::ByCaller {
                            let note = log.committed().note.clone();
                            let _ = log.publish(&note);
                        }
                    }
                    Err(_) => break, // poisoned: reopen below, as the engine does
                }
            }
            assert!(
                *flaky.failed.lock().unwrap(),
                "the fault at write {fail_at} never fired"
            );
            drop(log);
            // Reopen on a fresh connection: recovery, then every invariant, then the log goes on.
            let storage = connect(&url);
            let mut log = Log::open(storage.clone(), signer()).unwrap();
            world.check(&storage);
            let entries: Vec<Vec<u8>> = (next..next + 10).map(entry).collect();
            world.append(&mut log, &entries).unwrap();
            world.check(&storage);
        }
    }
}

#[test]
fn a_killed_server_loses_no_acknowledged_entry() {
    let Some(cluster) = TestCluster::start("kill") else {
        return;
    };
    let url = cluster.new_database("kill");
    let storage = connect(&url);
    let mut log = Log::open(storage.clone(), signer()).unwrap();
    let mut world = World::default();
    let mut next = 0u64;
    for _ in 0..5 {
        let entries: Vec<Vec<u8>> = (next..next + 40).map(entry).collect();
        next += 40;
        world.append(&mut log, &entries).unwrap();
    }
    // The server dies between acknowledgements (no shutdown checkpoint): the next commit fails and
    // poisons the log; after a restart a new open recovers everything acknowledged.
    cluster.kill();
    let entries: Vec<Vec<u8>> = (next..next + 40).map(entry).collect();
    assert!(world.append(&mut log, &entries).is_err());
    drop(log);
    cluster.restart();
    // The old storage's connections reconnect by themselves.
    world.check(&storage);
    let mut log = Log::open(connect(&url), signer()).unwrap();
    world.append(&mut log, &entries).unwrap();
    world.check(&storage);
}

#[test]
fn of_two_writers_one_commit_wins_and_the_other_stops() {
    let Some(cluster) = TestCluster::start("two-writers") else {
        return;
    };
    let url = cluster.new_database("two_writers");
    let mut world = World::default();
    let first = connect(&url);
    let mut log = Log::open(first.clone(), signer()).unwrap();
    world
        .append(&mut log, &(0..5).map(entry).collect::<Vec<_>>())
        .unwrap();
    // One writer's lock at a time: the first takes it, the second is refused while it lives.
    assert!(first.try_become_writer().unwrap());
    let second = connect(&url);
    assert!(!second.try_become_writer().unwrap());
    assert!(!second.try_become_writer().unwrap());
    // Both open at size 5 and both believe they are the writer (the lock is not the only guard).
    let mut other = Log::open(second.clone(), signer()).unwrap();
    world
        .append(&mut log, &(5..9).map(entry).collect::<Vec<_>>())
        .unwrap();
    let lost = other
        .append(&[b"a fork at size 5".as_slice()])
        .unwrap_err()
        .to_string();
    assert!(lost.contains(CONFLICT), "{lost}");
    // Poisoned: it refuses every later append rather than retrying into a fork.
    assert!(other.append(&[b"again".as_slice()]).is_err());
    world.check(&first);
    // And the winner goes on; the loser's tiles never landed.
    world
        .append(&mut log, &(9..300).map(entry).collect::<Vec<_>>())
        .unwrap();
    world.check(&first);
    // Racing for real: two threads, each with its own writer, append until one loses.
    let url2 = cluster.new_database("two_writers_race");
    let a = Log::open(connect(&url2), signer()).unwrap();
    let b = Log::open(connect(&url2), signer()).unwrap();
    let outcomes: Vec<(usize, String)> = [a, b]
        .into_iter()
        .enumerate()
        .map(|(who, mut log)| {
            std::thread::spawn(move || {
                let mut done = 0;
                for i in 0..200u64 {
                    let e = entry(who as u64 * 1000 + i);
                    match log.append(&[e.as_slice()]) {
                        Ok(_) => done += 1,
                        Err(e) => return (done, e.to_string()),
                    }
                }
                (done, String::new())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let losers = outcomes
        .iter()
        .filter(|(_, e)| e.contains(CONFLICT))
        .count();
    assert!(losers >= 1, "{outcomes:?}");
    let storage = connect(&url2);
    let audited = audit(storage.as_ref(), &signer().verifier(), |_, _| {}).unwrap();
    // Every checkpoint of the race is in one tree: each extends the one before it.
    let mut world = World::default();
    world.check(&storage);
    assert!(audited.checkpoint.size >= 1);
}

#[test]
fn a_synchronous_standby_keeps_every_acknowledged_entry_when_the_primary_is_lost() {
    let Some(primary) = TestCluster::start("failover-primary") else {
        return;
    };
    primary.new_database("failover");
    let standby = primary.start_standby("failover-standby", true);
    // Both hosts in one URL: whichever accepts writes is used, before and after the failover.
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/failover?target_session_attrs=read-write&connect_timeout=5",
        primary.port, standby.port
    );
    let storage = connect(&url);
    assert!(storage.try_become_writer().unwrap());
    let mut log = Log::open(storage.clone(), signer()).unwrap();
    let mut world = World::default();
    let mut next = 0u64;
    for _ in 0..20 {
        let entries: Vec<Vec<u8>> = (next..next + 25).map(entry).collect();
        next += 25;
        world.append(&mut log, &entries).unwrap();
    }
    // The primary is lost with everything it acknowledged; the standby is promoted.
    primary.kill();
    let entries: Vec<Vec<u8>> = (next..next + 25).map(entry).collect();
    assert!(world.append(&mut log, &entries).is_err());
    drop(log);
    standby.promote();
    // The same storage finds the new primary, takes the writer's lock there, and the log goes on.
    assert!(storage.try_become_writer().unwrap());
    world.check(&storage);
    let mut log = Log::open(storage.clone(), signer()).unwrap();
    world.append(&mut log, &entries).unwrap();
    world.check(&storage);
    assert_eq!(
        log.committed().checkpoint.size,
        world.seen.acknowledged.len() as u64
    );
}

#[test]
fn over_tls_the_server_is_verified_and_plain_connections_are_never_made() {
    let Some(cluster) = TestCluster::start("tls") else {
        return;
    };
    let url = cluster.new_database("tls");
    let Some(ca) = cluster.require_tls() else {
        return;
    };
    let with_ca = |ca: &std::path::Path| format!("{url}&sslrootcert={}", ca.display());

    // With the CA: every connection is TLS (the server now rejects plain ones), and the log works.
    let storage = connect(&with_ca(&ca));
    let mut log = Log::open(storage.clone(), signer()).unwrap();
    let mut world = World::default();
    let entries: Vec<Vec<u8>> = (0..300).map(entry).collect();
    world.append(&mut log, &entries).unwrap();
    world.check(&storage);
    drop(log);
    // A reader over TLS too.
    let reader = PgStorage::connect_read_only(&with_ca(&ca), 1).unwrap();
    assert!(reader.read("checkpoint").unwrap().is_some());
    assert!(reader.target().ends_with("(TLS)"), "{}", reader.target());

    // Without it, the plain connection is refused by the server.
    assert!(PgStorage::connect(&url, 1).is_err());
    // A certificate from another CA is refused by saksi, before anything is sent.
    let other = saksi_pgstore::testing::make_ca(ca.parent().unwrap(), "other");
    let error = PgStorage::connect(&with_ca(&other), 1)
        .unwrap_err()
        .to_string();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    // Asking for encryption without saying whom to trust is refused, not half-done.
    let error = PgStorage::connect(&format!("{url}&sslmode=require"), 1)
        .unwrap_err()
        .to_string();
    assert!(error.contains("sslrootcert"), "{error}");
    let error = PgStorage::connect(&format!("{url}&sslrootcert=/nonexistent"), 1)
        .unwrap_err()
        .to_string();
    assert!(error.contains("/nonexistent"), "{error}");
}

#[test]
fn photos_and_texts_beside_the_log_are_created_once_and_shared_by_every_server() {
    let Some(cluster) = TestCluster::start("files") else {
        return;
    };
    let url = cluster.new_database("files");
    let a = PgStorage::connect(&url, 2).unwrap();
    let b = PgStorage::connect(&url, 2).unwrap();
    let photos = a.files("evidence");
    let name = "sha256/ab/abcd".to_string();
    photos
        .create_durable(&[(name.clone(), b"photo".to_vec())])
        .unwrap();
    // The same bytes again: accepted (a retried upload); other bytes under the name: refused.
    photos
        .create_durable(&[(name.clone(), b"photo".to_vec())])
        .unwrap();
    let refused = photos
        .create_durable(&[(name.clone(), b"other".to_vec())])
        .unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
    // Another server of the store sees it; another kind of file does not.
    assert_eq!(
        b.files("evidence").read(&name).unwrap().as_deref(),
        Some(&b"photo"[..])
    );
    assert_eq!(b.files("report-texts").read(&name).unwrap(), None);
    assert_eq!(b.files("evidence").list("sha256").unwrap(), ["ab"]);
    assert_eq!(b.files("evidence").usage().unwrap(), (1, 5));
    // Nothing of it is in the log's files.
    assert_eq!(a.read(&format!("evidence/{name}")).unwrap(), None);
    // A read-only connection reads them and writes none.
    let reader = PgStorage::connect_read_only(&url, 1).unwrap();
    assert!(reader.files("evidence").read(&name).unwrap().is_some());
    let refused = reader
        .files("evidence")
        .create_durable(&[("sha256/cd/cdef".into(), b"x".to_vec())])
        .unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
}

#[test]
fn the_partial_tiles_a_commit_completes_are_removed_with_it() {
    let Some(cluster) = TestCluster::start("prune") else {
        return;
    };
    let storage = connect(&cluster.new_database("prune"));
    let mut log = Log::open(storage.clone(), signer()).unwrap();
    let mut world = World::default();
    // Batches of 10 cross the first full tile (256) with 25 partial versions behind it.
    for batch in 0..30u64 {
        let entries: Vec<Vec<u8>> = (batch * 10..batch * 10 + 10).map(entry).collect();
        world.append(&mut log, &entries).unwrap();
    }
    world.check(&storage);
    assert!(storage.read("tile/entries/000").unwrap().is_some());
    assert_eq!(
        storage.list("tile/entries/000.p").unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(storage.list("tile/0/000.p").unwrap(), Vec::<String>::new());
    // The tile still growing keeps its partial versions until it is full.
    assert!(storage
        .list("tile/entries/001.p")
        .unwrap()
        .contains(&"44".to_string()));
}
