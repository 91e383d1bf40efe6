//! The tlog-witness `add-checkpoint` rules, status by status, against a real log.

use std::sync::Arc;

use saksi_tlog::merkle::consistency_proof;
use saksi_tlog::note::{self, Signer, TYPE_COSIGNATURE_V1, TYPE_ED25519};
use saksi_tlog::witness::Witness;
use saksi_tlog::{FaultyStorage, Log};

fn request(old: u64, proof: &[saksi_tlog::Hash], note: &str) -> Vec<u8> {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&hash.to_base64());
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body.into_bytes()
}

#[test]
fn add_checkpoint_follows_the_spec() {
    let log_signer = Signer::new("saksi.test/log", TYPE_ED25519, [1; 32]).unwrap();
    let log_key = log_signer.verifier();
    let storage = Arc::new(FaultyStorage::new(1));
    let mut log = Log::open(storage, log_signer).unwrap();
    let witness_signer = Signer::new("witness.test", TYPE_COSIGNATURE_V1, [2; 32]).unwrap();
    let witness_key = witness_signer.verifier();
    let witness = Witness::new(
        witness_signer,
        vec![log_key.clone()],
        Box::new(FaultyStorage::new(2)),
    )
    .unwrap();

    let (_, first) = log.append(&[b"a", b"b", b"c"]).unwrap();
    let lines = witness
        .add_checkpoint(&request(0, &[], &first.note))
        .unwrap();
    // The cosignature verifies on the checkpoint.
    let cosigned = format!("{}{}", first.note, lines);
    let opened = note::open(cosigned.as_bytes(), &[log_key.clone(), witness_key.clone()]).unwrap();
    assert_eq!(opened.verified.len(), 2);
    // Replaying from size 0 now conflicts, and says the latest size.
    let conflict = witness
        .add_checkpoint(&request(0, &[], &first.note))
        .unwrap_err();
    assert_eq!((conflict.status, conflict.latest_size), (409, Some(3)));
    // A consistent step forward.
    let (_, second) = log.append(&[b"d", b"e"]).unwrap();
    let proof = consistency_proof(&mut log.reader(), 3, 5).unwrap();
    witness
        .add_checkpoint(&request(3, &proof, &second.note))
        .unwrap();
    assert_eq!(witness.latest(&log_key).unwrap().unwrap().size, 5);
    // A bad proof: 422. The same size with another root (a fork): 422.
    let (_, third) = log.append(&[b"f"]).unwrap();
    let mut bad = consistency_proof(&mut log.reader(), 5, 6).unwrap();
    bad[0].0[0] ^= 1;
    assert_eq!(
        witness
            .add_checkpoint(&request(5, &bad, &third.note))
            .unwrap_err()
            .status,
        422
    );
    let other_signer = Signer::new("saksi.test/log", TYPE_ED25519, [1; 32]).unwrap();
    let forked_text = format!(
        "saksi.test/log\n5\n{}\n",
        saksi_tlog::leaf_hash(b"fork").to_base64()
    );
    let forked = note::sign(&forked_text, &[&other_signer], 0).unwrap();
    assert_eq!(
        witness
            .add_checkpoint(&request(5, &[], &forked))
            .unwrap_err()
            .status,
        422
    );
    // Unknown log: 404. A known log's name with a bad signature: 403. Old beyond new: 400.
    let stranger = Signer::new("other.test/log", TYPE_ED25519, [3; 32]).unwrap();
    let strange = note::sign(
        "other.test/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        &[&stranger],
        0,
    )
    .unwrap();
    assert_eq!(
        witness
            .add_checkpoint(&request(0, &[], &strange))
            .unwrap_err()
            .status,
        404
    );
    let impostor = Signer::new("saksi.test/log", TYPE_ED25519, [4; 32]).unwrap();
    let forged = note::sign(&third.checkpoint.text(), &[&impostor], 0).unwrap();
    assert_eq!(
        witness
            .add_checkpoint(&request(5, &[], &forged))
            .unwrap_err()
            .status,
        403
    );
    assert_eq!(
        witness
            .add_checkpoint(&request(9, &[], &third.note))
            .unwrap_err()
            .status,
        400
    );
    // Nothing above moved the witness.
    assert_eq!(witness.latest(&log_key).unwrap().unwrap().size, 5);
}
