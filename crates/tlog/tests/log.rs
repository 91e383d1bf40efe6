//! The durable log under normal use and under injected faults. After every step, every invariant is
//! re-checked from storage alone:
//! - the published checkpoint verifies and the whole log audits clean (entries -> tiles -> root);
//! - every acknowledged entry is present, at the index it was given;
//! - no two checkpoints of one size ever carried different roots;
//! - inclusion proofs for sampled entries and consistency proofs between all known checkpoints verify.

use std::sync::Arc;

use saksi_tlog::audit::audit;
use saksi_tlog::checkpoint;
use saksi_tlog::invariants::Invariants;
use saksi_tlog::note::{Signer, TYPE_ED25519};
use saksi_tlog::Fault;
use saksi_tlog::{DirStorage, FaultyStorage, Log, LogError, Publishing, Storage};

fn signer() -> Signer {
    Signer::new("saksi.test/log", TYPE_ED25519, [42; 32]).unwrap()
}

fn entry(i: u64) -> Vec<u8> {
    // Entries of varied length, some empty, some large.
    let len = match i % 7 {
        0 => 0,
        1 => 600,
        2 => 3000,
        _ => (i % 97) as usize,
    };
    let mut bytes = format!("entry {i} ").into_bytes();
    bytes.resize(bytes.len() + len, (i % 251) as u8);
    bytes
}

/// Everything the harness knows must hold (`saksi_tlog::invariants`, shared with the PostgreSQL
/// store's tests), over the storage under test.
struct World {
    storage: Arc<FaultyStorage>,
    seen: Invariants,
}

impl World {
    fn new(storage: &Arc<FaultyStorage>) -> World {
        World {
            storage: storage.clone(),
            seen: Invariants::default(),
        }
    }

    fn check(&mut self) {
        self.seen.check(self.storage.clone(), &signer().verifier());
    }
}

/// A small deterministic generator, so a failing round can be replayed.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn append_checked(log: &mut Log, world: &mut World, entries: &[Vec<u8>]) -> Result<(), LogError> {
    let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let (first, published) = log.append(&refs)?;
    assert_eq!(first + entries.len() as u64, published.checkpoint.size);
    for (i, e) in entries.iter().enumerate() {
        world.seen.acknowledged.insert(first + i as u64, e.clone());
    }
    world
        .seen
        .roots
        .insert(published.checkpoint.size, published.checkpoint.root);
    Ok(())
}

#[test]
fn appends_and_reopens() {
    let storage = Arc::new(FaultyStorage::new(7));
    let mut world = World::new(&storage);
    let mut log = Log::open(storage.clone(), signer()).unwrap();
    world.check();
    let mut next = 0u64;
    for batch in [1usize, 255, 1, 256, 300, 64_000, 2, 1_721] {
        let entries: Vec<Vec<u8>> = (next..next + batch as u64).map(entry).collect();
        next += batch as u64;
        append_checked(&mut log, &mut world, &entries).unwrap();
        drop(log);
        log = Log::open(storage.clone(), signer()).unwrap();
        assert_eq!(log.size(), next);
    }
    world.check();
    // Reading entries back.
    let mut reader = log.reader();
    assert_eq!(reader.entry(0).unwrap(), entry(0));
    assert_eq!(reader.entry(next - 1).unwrap(), entry(next - 1));
}

#[test]
fn limits_are_enforced() {
    let storage = Arc::new(FaultyStorage::new(1));
    let mut log = Log::open(storage, signer()).unwrap();
    let big = vec![0u8; 65_536];
    assert!(matches!(
        log.append(&[b"ok", &big]),
        Err(LogError::EntryTooLarge {
            position: 1,
            bytes: 65_536
        })
    ));
    let many: Vec<&[u8]> = vec![b""; saksi_tlog::log::MAX_BATCH_ENTRIES + 1];
    assert!(matches!(
        log.append(&many),
        Err(LogError::BatchTooLarge { .. })
    ));
    assert_eq!(log.size(), 0, "a refused batch changes nothing");
    let max = vec![7u8; 65_535];
    log.append(&[&max]).unwrap();
    assert_eq!(log.reader().entry(0).unwrap(), max);
}

/// Faults at each of the two writes of the commit protocol (tiles in place, where a fault may tear
/// files; then checkpoint and publication, in that order), of each kind, at several tree shapes.
#[test]
fn recovers_from_every_fault_at_every_step() {
    let mut seed = 1u64;
    for fault_kind in ["error", "crash", "full"] {
        for step in 1..=2u64 {
            for before in [0u64, 1, 255, 256, 1000] {
                seed += 1;
                let storage = Arc::new(FaultyStorage::new(seed));
                let mut world = World::new(&storage);
                let mut log = Log::open(storage.clone(), signer()).unwrap();
                if before > 0 {
                    append_checked(
                        &mut log,
                        &mut world,
                        &(0..before).map(entry).collect::<Vec<_>>(),
                    )
                    .unwrap();
                }
                world.check();
                storage.set_fault(match fault_kind {
                    "error" => Fault::Error { at: step },
                    "crash" => Fault::Crash { at: step },
                    _ => Fault::Full { at: step },
                });
                let batch: Vec<Vec<u8>> = (before..before + 300).map(entry).collect();
                let result = append_checked(&mut log, &mut world, &batch);
                assert!(
                    result.is_err(),
                    "{fault_kind} at step {step} must fail the append"
                );
                // No acknowledgement without durability: and the log refuses to go on.
                assert!(
                    log.append(&[b"after the fault"]).is_err(),
                    "{fault_kind} at step {step}: log accepted a write after a failure"
                );
                drop(log);
                storage.restart();
                let mut log = Log::open(storage.clone(), signer())
                    .unwrap_or_else(|e| panic!("{fault_kind}/{step}/{before}: reopen: {e}"));
                // The batch is either wholly in (the crash came after the commit point) or wholly out.
                assert!(
                    log.size() == before || log.size() == before + 300,
                    "size {} after {fault_kind} at {step}",
                    log.size()
                );
                if log.size() == before + 300 {
                    // Committed but never acknowledged: keep track so later checks see it.
                    for (i, e) in batch.iter().enumerate() {
                        world.seen.acknowledged.insert(before + i as u64, e.clone());
                    }
                }
                world.check();
                // And it goes on working.
                let after: Vec<Vec<u8>> = (log.size()..log.size() + 50).map(entry).collect();
                append_checked(&mut log, &mut world, &after).unwrap();
                world.check();
            }
        }
    }
}

#[test]
fn random_crashes_never_break_an_invariant() {
    let storage = Arc::new(FaultyStorage::new(99));
    let mut world = World::new(&storage);
    let mut log = Log::open(storage.clone(), signer()).unwrap();
    let mut rng = 12345u64;
    let mut next = |bound: u64| xorshift(&mut rng) % bound;
    for round in 0..120 {
        if next(3) == 0 {
            storage.set_fault(Fault::Crash { at: 1 + next(3) });
        }
        let size = log.size();
        let batch: Vec<Vec<u8>> = (size..size + 1 + next(600)).map(entry).collect();
        if append_checked(&mut log, &mut world, &batch).is_err() {
            storage.restart();
            log = Log::open(storage.clone(), signer())
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            if log.size() > size {
                for (i, e) in batch.iter().enumerate() {
                    world.seen.acknowledged.insert(size + i as u64, e.clone());
                }
            }
        }
        if round % 10 == 0 {
            world.check();
        }
    }
    world.check();
}

/// Publishing by the caller (as the engine does, with a lag): `checkpoint` is written only by
/// `publish`, so crashes can leave it behind `checkpoints/`; nothing acknowledged may be lost,
/// `checkpoint` never goes back, and the caller's publish after open brings it up to date.
#[test]
fn publication_lag_loses_nothing_under_random_crashes() {
    let storage = Arc::new(FaultyStorage::new(5));
    let mut world = World::new(&storage);
    let open = |storage: &Arc<FaultyStorage>| {
        let mut log = Log::open_with(storage.clone(), signer(), Publishing::ByCaller).unwrap();
        log.publish(&log.committed().note).unwrap();
        log
    };
    let published_size = |storage: &FaultyStorage| {
        let note = storage.read("checkpoint").unwrap().unwrap();
        checkpoint::open(&note, &signer().verifier(), &[])
            .unwrap()
            .checkpoint
            .size
    };
    let mut log = open(&storage);
    let mut rng = 777u64;
    let mut next = |bound: u64| xorshift(&mut rng) % bound;
    let mut last_published = 0;
    for round in 0..150 {
        if next(3) == 0 {
            storage.set_fault(Fault::Crash { at: 1 + next(3) });
        }
        let size = log.size();
        let batch: Vec<Vec<u8>> = (size..size + 1 + next(400)).map(entry).collect();
        let mut result = append_checked(&mut log, &mut world, &batch);
        if result.is_ok() {
            // Not written by the append: still the checkpoint published before it.
            assert!(published_size(&storage) <= size, "round {round}");
            if next(2) == 0 {
                result = log.publish(&log.committed().note);
                if result.is_ok() {
                    assert_eq!(published_size(&storage), log.size(), "round {round}");
                }
            }
        }
        if result.is_err() {
            storage.restart();
            log = open(&storage);
            if log.size() > size {
                for (i, e) in batch.iter().enumerate() {
                    world.seen.acknowledged.insert(size + i as u64, e.clone());
                }
            }
            // Reopening republished the newest checkpoint.
            assert_eq!(published_size(&storage), log.size(), "round {round}");
        }
        let now = published_size(&storage);
        assert!(now >= last_published, "round {round}: checkpoint went back");
        last_published = now;
        if round % 10 == 0 {
            storage.set_fault(Fault::None);
            log.publish(&log.committed().note).unwrap();
            last_published = log.size();
            world.check();
        }
    }
    storage.set_fault(Fault::None);
    log.publish(&log.committed().note).unwrap();
    world.check();
}

#[test]
fn tampering_is_detected_on_open_or_audit() {
    let storage = Arc::new(FaultyStorage::new(3));
    let mut log = Log::open(storage.clone(), signer()).unwrap();
    log.append(
        &(0..700)
            .map(entry)
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    drop(log);
    let verifier = signer().verifier();
    // A flipped byte in a full bundle: open still works (the edge is intact), the audit catches it.
    storage.tamper("tile/entries/000", |b| b[5] ^= 1);
    let error = audit(storage.as_ref(), &verifier, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(error.contains("tile/0/000 does not match"), "{error}");
    storage.tamper("tile/entries/000", |b| b[5] ^= 1);
    // A flipped byte in a full hash tile.
    storage.tamper("tile/0/001", |b| b[100] ^= 1);
    let error = audit(storage.as_ref(), &verifier, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(error.contains("tile/0/001 does not match"), "{error}");
    storage.tamper("tile/0/001", |b| b[100] ^= 1);
    audit(storage.as_ref(), &verifier, |_, _| {}).unwrap();
    // A flipped byte in the edge's partial tile: the log refuses to open.
    storage.tamper("tile/0/002.p/188", |b| b[0] ^= 1);
    let error = Log::open(storage.clone(), signer())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("root"), "{error}");
    storage.tamper("tile/0/002.p/188", |b| b[0] ^= 1);
    // A checkpoint signed by someone else.
    let other = Signer::new("saksi.test/log", TYPE_ED25519, [1; 32]).unwrap();
    let note = String::from_utf8(storage.read("checkpoints/700").unwrap().unwrap()).unwrap();
    let text = &note[..note.find("\n\n").unwrap() + 1];
    let forged = saksi_tlog::note::sign(text, &[&other], 0).unwrap();
    storage.tamper("checkpoints/700", |b| *b = forged.clone().into_bytes());
    assert!(Log::open(storage.clone(), signer()).is_err());
}

#[test]
fn on_disk_with_a_lock() {
    let dir = std::env::temp_dir().join(format!("saksi-tlog-disk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let storage: Arc<dyn Storage> = Arc::new(DirStorage::open(&dir.join("log")).unwrap());
        assert!(
            DirStorage::open(&dir.join("log")).is_err(),
            "a second writer must be refused"
        );
        let mut log = Log::open(storage.clone(), signer()).unwrap();
        let entries: Vec<Vec<u8>> = (0..1000).map(entry).collect();
        log.append(&entries.iter().map(Vec::as_slice).collect::<Vec<_>>())
            .unwrap();
    }
    let storage: Arc<dyn Storage> = Arc::new(DirStorage::open(&dir.join("log")).unwrap());
    let log = Log::open(storage.clone(), signer()).unwrap();
    assert_eq!(log.size(), 1000);
    assert!(dir.join("log/checkpoint").is_file());
    assert!(dir.join("log/checkpoints/1000").is_file());
    assert!(dir.join("log/tile/entries/003.p/232").is_file());
    assert!(dir.join("log/tile/1/000.p/3").is_file());
    audit(storage.as_ref(), &signer().verifier(), |_, _| {}).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dir_storage_commit_writes_new_files_in_place_and_durable_ones_by_rename() {
    let dir = std::env::temp_dir().join(format!("saksi-tlog-commit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let storage = DirStorage::open(&dir.join("log")).unwrap();
    storage
        .write_durable(&[("checkpoint".into(), b"old".to_vec())])
        .unwrap();
    let new = vec![
        ("tile/0/000.p/5".to_string(), vec![1u8; 160]),
        ("tile/entries/000.p/5".to_string(), vec![2u8; 4000]),
    ];
    let durable = vec![
        ("checkpoints/5".to_string(), b"five".to_vec()),
        ("checkpoint".to_string(), b"five".to_vec()),
    ];
    storage.commit(&new, &durable[..1], &durable[1..]).unwrap();
    for (path, bytes) in new.iter().chain(&durable) {
        assert_eq!(storage.read(path).unwrap().as_ref(), Some(bytes), "{path}");
    }
    // Every temporary file was renamed into place: only the lock is left beside the log.
    let temps: Vec<_> = std::fs::read_dir(dir.join(".log.tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "lock")
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    // A path outside the log is refused before anything is written.
    assert!(storage
        .commit(
            &[("../escape".into(), vec![0])],
            &[],
            &[("checkpoint".into(), b"x".to_vec())]
        )
        .is_err());
    assert_eq!(storage.read("checkpoint").unwrap().unwrap(), b"five");
    // A create-once path accepts the same bytes again (a retried write) and refuses other bytes,
    // leaving the file as it was and nothing after it written.
    storage
        .create_durable(&[("checkpoints/5".into(), b"five".to_vec())])
        .unwrap();
    let refused = storage
        .commit(
            &[],
            &[("checkpoints/5".into(), b"FIVE".to_vec())],
            &[("checkpoint".into(), b"FIVE".to_vec())],
        )
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::AlreadyExists,
        "{refused}"
    );
    assert_eq!(storage.read("checkpoints/5").unwrap().unwrap(), b"five");
    assert_eq!(storage.read("checkpoint").unwrap().unwrap(), b"five");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A log whose `checkpoint` is ahead of `checkpoints/` (the commit protocol never leaves this, a copy
/// made file by file can): recovery completes the commit from it when the tiles give its root, and
/// refuses when they do not.
#[test]
fn a_published_checkpoint_ahead_of_checkpoints_is_completed_or_refused() {
    let storage = Arc::new(FaultyStorage::new(7));
    let mut log = Log::open(storage.clone(), signer()).unwrap();
    let first: Vec<Vec<u8>> = (0..300).map(entry).collect();
    let refs: Vec<&[u8]> = first.iter().map(Vec::as_slice).collect();
    log.append(&refs).unwrap();
    let second: Vec<Vec<u8>> = (300..700).map(entry).collect();
    let refs: Vec<&[u8]> = second.iter().map(Vec::as_slice).collect();
    let (_, published) = log.append(&refs).unwrap();
    drop(log);
    let note = storage.read("checkpoints/700").unwrap().unwrap();
    storage.remove("checkpoints/700");
    let log = Log::open(storage.clone(), signer()).unwrap();
    assert_eq!(log.size(), 700);
    assert_eq!(log.committed().checkpoint, published.checkpoint);
    assert_eq!(storage.read("checkpoints/700").unwrap().unwrap(), note);
    drop(log);
    // The same, but a tile the checkpoint needs is wrong: the log will not open.
    storage.remove("checkpoints/700");
    storage.tamper("tile/0/002.p/188", |b| b[0] ^= 1);
    let error = Log::open(storage.clone(), signer())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("beyond every checkpoint"), "{error}");
}

/// `audit_from` visits exactly the entries appended since the range it starts from, ends with the
/// frontier a whole audit gives, and refuses a log that rewrote what was audited (a fork) or
/// shrank (a rollback).
#[test]
fn audit_from_checks_only_what_was_appended() {
    use saksi_tlog::audit::audit_from;
    use saksi_tlog::merkle::CompactRange;
    let storage = Arc::new(FaultyStorage::new(11));
    let mut log = Log::open(storage.clone(), signer()).unwrap();
    let mut range = CompactRange::new();
    let mut next = 0u64;
    for batch in [1u64, 255, 1, 256, 300, 2, 1_000, 3] {
        let entries: Vec<Vec<u8>> = (next..next + batch).map(entry).collect();
        log.append(&entries.iter().map(Vec::as_slice).collect::<Vec<_>>())
            .unwrap();
        let mut visited = Vec::new();
        let audited = audit_from(storage.as_ref(), &signer().verifier(), range, |i, bytes| {
            assert_eq!(bytes, entry(i));
            visited.push(i);
        })
        .unwrap();
        assert_eq!(visited, (next..next + batch).collect::<Vec<_>>());
        next += batch;
        let whole = audit(storage.as_ref(), &signer().verifier(), |_, _| {}).unwrap();
        assert_eq!(audited.range, whole.range);
        assert_eq!(audited.range.root(), audited.checkpoint.root);
        range = audited.range;
    }

    // Another log with the same key: the first 300 entries alike, then different ones.
    let forked = Arc::new(FaultyStorage::new(12));
    let mut other = Log::open(forked.clone(), signer()).unwrap();
    let mut entries: Vec<Vec<u8>> = (0..300).map(entry).collect();
    entries.extend((300..next + 10).map(|i| [entry(i), b"!".to_vec()].concat()));
    other
        .append(&entries.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .unwrap();
    let err = audit_from(
        forked.as_ref(),
        &signer().verifier(),
        range.clone(),
        |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("entries give root"), "{err}");

    // A log shorter than what was audited.
    let short = Arc::new(FaultyStorage::new(13));
    let mut shorter = Log::open(short.clone(), signer()).unwrap();
    let entries: Vec<Vec<u8>> = (0..next - 1).map(entry).collect();
    shorter
        .append(&entries.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .unwrap();
    let err = audit_from(short.as_ref(), &signer().verifier(), range, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("rollback"), "{err}");
}
