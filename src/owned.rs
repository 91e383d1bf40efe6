//! Directories a command makes and may later replace. A command may delete or overwrite only what it
//! can prove it made: a directory it claimed, proved by the marker file it wrote there, and only its
//! own subdirectories inside it. A non-empty directory without our marker is someone else's: the
//! command refuses it (exit 2) and changes nothing.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The marker's name; its first line names the command that made the directory.
pub const MARKER: &str = ".saksi-owner";

/// Makes `dir` ours for `kind` (e.g. "demo", "gen"): creates it if missing, writes the marker into it
/// if it is empty, accepts it if it already holds our marker for the same kind, refuses anything else.
pub fn claim(dir: &Path, kind: &str) -> Result<()> {
    let first_line = format!("saksi {kind}");
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("cannot read {}: {e}", dir.display()),
        Ok(mut entries) => {
            if entries.next().is_some() {
                let marker = std::fs::read_to_string(dir.join(MARKER)).unwrap_or_default();
                let owner = marker.lines().next().unwrap_or_default();
                if owner == first_line {
                    return Ok(());
                }
                let whose = if owner.starts_with("saksi ") {
                    format!("it was made by `{owner}`")
                } else {
                    format!(
                        "it holds no {MARKER} mark (not made by saksi, or by a saksi older than \
                         the mark: empty it yourself if it is yours to lose)"
                    )
                };
                bail!(
                    "{} is not empty and {whose}; give a new or empty directory for `saksi {kind}` \
                     (nothing was changed)",
                    dir.display()
                );
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(MARKER);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(
        file,
        "{first_line}\nThis directory was made by `{first_line}`; saksi replaces only what it made here."
    )?;
    file.sync_all()?;
    Ok(())
}

/// Removes `dir/sub`, a subdirectory a claimed `dir` holds, after taking the locks of the logs in
/// `logs` (paths relative to `dir`) that exist: a log some process is writing is never pulled from
/// under it.
pub fn remove_own(dir: &Path, sub: &str, logs: &[&str]) -> Result<()> {
    let target = dir.join(sub);
    if !target.exists() {
        return Ok(());
    }
    let mut locks = Vec::new();
    for log in logs {
        let log = dir.join(log);
        if log.is_dir() {
            // Opening the storage takes its exclusive lock (or fails: another process holds it).
            let storage = saksi_tlog::DirStorage::open(&log).with_context(|| {
                format!(
                    "{} is in use (a saksi process holds its log); stop it first (nothing was changed)",
                    target.display()
                )
            })?;
            locks.push(storage);
        }
    }
    std::fs::remove_dir_all(&target).with_context(|| format!("removing {}", target.display()))?;
    drop(locks);
    Ok(())
}
