//! Offline receipts (c2sp.org/tlog-proof) from a real log, with witness cosignatures (type 0x04).

use std::sync::Arc;

use saksi_tlog::hash::leaf_hash;
use saksi_tlog::merkle::inclusion_proof;
use saksi_tlog::note::{self, Signer, TYPE_COSIGNATURE_V1, TYPE_ED25519};
use saksi_tlog::tproof::{TlogProof, TlogProofError};
use saksi_tlog::{FaultyStorage, Log};

#[test]
fn receipts_verify_offline_and_resist_tampering() {
    let storage = Arc::new(FaultyStorage::new(1));
    let log_signer = Signer::new("saksi.test/log", TYPE_ED25519, [1; 32]).unwrap();
    let log_key = log_signer.verifier();
    let mut log = Log::open(storage, log_signer).unwrap();
    let entries: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| format!("form {i}").into_bytes())
        .collect();
    let (_, published) = log
        .append(&entries.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .unwrap();

    // Two witnesses cosign the checkpoint text; their lines are appended to the log's note.
    let witnesses: Vec<Signer> = (0..3u8)
        .map(|i| {
            Signer::new(
                &format!("witness{i}.test"),
                TYPE_COSIGNATURE_V1,
                [10 + i; 32],
            )
            .unwrap()
        })
        .collect();
    let text = published.checkpoint.text();
    let mut cosigned = published.note.clone();
    for w in &witnesses[..2] {
        cosigned.push_str(&w.sign_line(&text, 1_732_000_000));
    }
    let witness_keys: Vec<_> = witnesses.iter().map(Signer::verifier).collect();

    let index = 617u64;
    let proof = inclusion_proof(&mut log.reader(), index, 1000).unwrap();
    let receipt = TlogProof {
        extra: Some(b"tps 1101012001001".to_vec()),
        index,
        proof,
        checkpoint: cosigned.clone(),
    };
    let text_form = receipt.encode();
    assert!(text_form.starts_with("c2sp.org/tlog-proof@v1\nextra "));
    let parsed = TlogProof::parse(&text_form).unwrap();
    assert_eq!(parsed, receipt);
    let leaf = leaf_hash(&entries[index as usize]);
    parsed.verify(&leaf, &log_key, &witness_keys, 2).unwrap();
    assert!(matches!(
        parsed.verify(&leaf, &log_key, &witness_keys, 3),
        Err(TlogProofError::Witnesses {
            valid: 2,
            required: 3
        })
    ));
    // The wrong entry, a wrong index, a flipped proof hash, a forged cosignature: all fail.
    assert!(parsed
        .verify(&leaf_hash(b"form 616"), &log_key, &witness_keys, 2)
        .is_err());
    let mut wrong = parsed.clone();
    wrong.index = 616;
    assert!(wrong.verify(&leaf, &log_key, &witness_keys, 2).is_err());
    let mut flipped = parsed.clone();
    flipped.proof[3].0[0] ^= 1;
    assert!(flipped.verify(&leaf, &log_key, &witness_keys, 2).is_err());
    let forged_line = witnesses[2]
        .sign_line(&text, 1)
        .replace("witness2.test", "witness1.test");
    let forged = TlogProof {
        checkpoint: format!("{}{forged_line}", published.note),
        ..parsed.clone()
    };
    assert!(forged.verify(&leaf, &log_key, &witness_keys, 1).is_err());
    // Cosignature timestamps are readable after verification.
    let note = note::open(
        cosigned.as_bytes(),
        &[log_key.clone(), witness_keys[0].clone()],
    )
    .unwrap();
    assert_eq!(
        note.verified[1].cosignature_timestamp(),
        Some(1_732_000_000)
    );
    // Malformed receipts.
    for bad in [
        text_form.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
        text_form.replace(&format!("index {index}"), &format!("index 0{index}")),
        text_form.replacen("\n\n", "\n", 1),
    ] {
        assert!(
            TlogProof::parse(&bad).is_err()
                || TlogProof::parse(&bad)
                    .unwrap()
                    .verify(&leaf, &log_key, &witness_keys, 2)
                    .is_err()
        );
    }
}
