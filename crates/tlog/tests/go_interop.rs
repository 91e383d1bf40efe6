//! A saksi-written log, verified by Go's reference code (golang.org/x/mod/sumdb/note and sumdb/tlog)
//! through `scripts/go-interop.sh`. Skips with a message where Go is not installed, except under CI,
//! whose `.ci/run` installs it, so that the check can never silently stop running there.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use saksi_tlog::note::{Signer, TYPE_ED25519};
use saksi_tlog::{DirStorage, Log, Storage};

#[test]
fn go_sumdb_verifies_a_saksi_log() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/go-interop.sh");
    let have_go = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
        && Path::new("/usr/share/gocode/src/golang.org/x/mod/sumdb").is_dir();
    if !have_go {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have Go installed (see .ci/run)"
        );
        eprintln!("skipping: Go or golang.org/x/mod is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("saksi-go-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let signer = Signer::new("saksi.test/go-interop", TYPE_ED25519, [5; 32]).unwrap();
    let vkey = signer.verifier().encode();
    {
        let storage: Arc<dyn Storage> = Arc::new(DirStorage::open(&dir.join("log")).unwrap());
        let mut log = Log::open(storage, signer).unwrap();
        // Several batches, crossing into the second level of tiles (65,536 entries) and ending partial.
        let mut next = 0u32;
        for batch in [1u32, 300, 65_000, 600, 37] {
            let entries: Vec<Vec<u8>> = (next..next + batch)
                .map(|i| format!("entry {i} {}", "x".repeat((i % 600) as usize)).into_bytes())
                .collect();
            log.append(&entries.iter().map(Vec::as_slice).collect::<Vec<_>>())
                .unwrap();
            next += batch;
        }
    }
    let run = || {
        let output = Command::new("bash")
            .arg(&script)
            .arg(dir.join("log"))
            .arg(&vkey)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let (ok, text) = run();
    assert!(ok, "{text}");
    assert!(
        text.contains("go-interop: OK") && text.contains("size 65938"),
        "{text}"
    );
    eprintln!("{text}");
    // And Go notices a flipped byte in a hash tile.
    let tile = dir.join("log/tile/0/100");
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[7] ^= 1;
    std::fs::write(&tile, bytes).unwrap();
    let (ok, text) = run();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !ok && text.contains("FAIL"),
        "a tampered tile passed Go's check: {text}"
    );
}
