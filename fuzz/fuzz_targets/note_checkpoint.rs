//! Any bytes as a signed note, a checkpoint, a tlog-proof and a witness request: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use saksi_tlog::note::{Signer, Verifier, TYPE_ED25519};

fuzz_target!(|data: &[u8]| {
    let key: Verifier = Signer::new("fuzz.example/log", TYPE_ED25519, [1; 32])
        .unwrap()
        .verifier();
    let _ = saksi_tlog::note::open(data, &[key.clone()]);
    let _ = saksi_tlog::checkpoint::open(data, &key, &[]);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = saksi_tlog::checkpoint::Checkpoint::parse_text(text);
        let _ = saksi_tlog::tproof::TlogProof::parse(text);
        let _ = Verifier::parse(text);
        let _ = Signer::parse(text);
    }
});
