//! Where a log's files live. The log needs three things of storage: read a file, list a directory, and
//! write a set of files so that each is atomic and all are durable when the call returns.
//!
//! [`DirStorage`] does this on a real file system. For each batch of files:
//!   1. write each file's bytes to a fresh temporary file (in a sibling directory, never served);
//!   2. fsync every temporary file (so its data is on disk before its name is);
//!   3. rename each temporary file over its final path (atomic: readers see old or new, never a mix);
//!   4. fsync the directory that gained or changed the name, and the parents of directories just made;
//!      steps 3 and 4 go file by file, in the order given, so a later file is never visible before an
//!      earlier one is durable.
//!
//! Only then does the call return. If any step fails the call returns the error and any subset of the
//! files may have been replaced (each wholly; a prefix of them, in order); callers treat that as "not
//! written".
//!
//! Files at paths that nothing trusts yet (tiles beyond the last checkpoint) go through
//! [`Storage::write_new`] instead: written in place, then every file and directory fsynced together.
//! That is one round of fsyncs instead of two (data, then names), and it is safe
//! because a file torn by a crash there is one no checkpoint covers: the next batch rewrites it.
//! [`Storage::commit`] does both for one log commit, in three rounds of fsyncs instead of four: the new
//! files and the temporary files' data together, then each durable file's name in order.
//!
//! [`FaultyStorage`] keeps files in memory with the same contract and injects failures: an error, or a
//! crash that applies a random subset of the batch and then refuses everything until restarted.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Files fsynced concurrently in one batch, so a batch does not wait on one fsync after another. With
/// 1,100-byte entries, 32 per commit (`saksi bench log --entry-bytes 1100 --batch 32 --entries 30000`,
/// two runs each): 1 thread 3.0-3.4 ms per commit, 4 threads 2.0-2.4 ms, 8 threads 2.3-2.4 ms.
const FSYNC_THREADS: usize = 4;

pub trait Storage: Send + Sync {
    /// The file's bytes, or `None` if there is no such file.
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>>;
    /// Names of the files in a directory (not recursive); empty if it does not exist.
    fn list(&self, dir: &str) -> io::Result<Vec<String>>;
    /// Writes all files, each atomically, durable on return, in order: a file becomes visible only
    /// once every file before it in `files` is durable (see the module docs).
    fn write_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()>;
    /// Writes files at paths no published checkpoint covers, durable on return. If it fails or the
    /// process dies, any subset may exist and each may be torn (cut short), so callers must not trust
    /// these paths until a later durable write (a checkpoint) vouches for them.
    fn write_new(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.write_durable(files)
    }
    /// `write_new(new)` and then `write_durable(durable)`, with the same guarantees on return and
    /// after a crash: no file of `durable` is visible before every file of `new` is durable. Storage
    /// may do it in fewer rounds of fsyncs (DirStorage: the new files and the durable files' data in
    /// one round, then the durable files' names).
    fn commit(&self, new: &[(String, Vec<u8>)], durable: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.write_new(new)?;
        self.write_durable(durable)
    }
    /// Removes a directory and everything in it, if it exists. Best effort, not durable: used only to
    /// drop files no checkpoint needs any more.
    fn remove_dir(&self, dir: &str) -> io::Result<()>;
}

/// A log directory on disk, laid out exactly as it is served (tlog-tiles paths).
pub struct DirStorage {
    root: PathBuf,
    temp: PathBuf,
    counter: AtomicU64,
    /// Held for the life of the storage: one writer per log directory.
    _lock: File,
}

impl DirStorage {
    /// Opens (creating) `root`. Temporary files go to a hidden sibling directory, which is emptied here:
    /// anything in it is a write that never completed. Takes an exclusive lock so that two processes
    /// never write one log.
    pub fn open(root: &Path) -> io::Result<DirStorage> {
        fs::create_dir_all(root)?;
        let name = root.file_name().and_then(|n| n.to_str()).unwrap_or("log");
        let temp = root.with_file_name(format!(".{name}.tmp"));
        fs::create_dir_all(&temp)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(temp.join("lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another process", root.display()),
            )
        })?;
        for entry in fs::read_dir(&temp)? {
            let entry = entry?;
            if entry.file_name() != "lock" {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(DirStorage {
            root: root.to_path_buf(),
            temp,
            counter: AtomicU64::new(0),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes `target`'s missing parent directories. Returns the directories whose entries changed and
    /// must be fsynced for `target`'s name to be durable: its parent, and the parent of each one made.
    fn make_parent(&self, target: &Path) -> io::Result<Vec<PathBuf>> {
        let parent = target.parent().expect("a joined path has a parent");
        let mut dirs = Vec::new();
        if !parent.is_dir() {
            let mut missing = parent;
            while !missing.is_dir() {
                missing = missing.parent().expect("below root");
                dirs.push(missing.to_path_buf());
            }
            fs::create_dir_all(parent)?;
        }
        dirs.push(parent.to_path_buf());
        Ok(dirs)
    }

    fn full(&self, path: &str) -> io::Result<PathBuf> {
        // Paths come from this crate (tile paths, checkpoint names), but check anyway: no escaping root.
        if path.is_empty()
            || path.starts_with('/')
            || path
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad storage path {path:?}"),
            ));
        }
        Ok(self.root.join(path))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Fsyncs files or directories, up to FSYNC_THREADS at a time (one fsync need not wait for another;
/// measured at FSYNC_THREADS).
fn sync_all_paths(paths: &[PathBuf]) -> io::Result<()> {
    if paths.len() <= 1 {
        return paths.iter().try_for_each(|p| File::open(p)?.sync_all());
    }
    let chunk = paths.len().div_ceil(FSYNC_THREADS);
    std::thread::scope(|scope| -> io::Result<()> {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().try_for_each(|p| File::open(p)?.sync_all()))
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| io::Error::other("fsync thread panicked"))??;
        }
        Ok(())
    })
}

impl Storage for DirStorage {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match File::open(self.full(path)?) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)?;
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let path = self.full(dir)?;
        let entries = match fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn write_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.commit(&[], files)
    }

    fn write_new(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.commit(files, &[])
    }

    /// One round of fsyncs for the new files and the durable files' data, then the durable files'
    /// names in order. A crash leaves what [`Storage::commit`]'s default would: no durable file is
    /// renamed before every new file is durable.
    fn commit(&self, new: &[(String, Vec<u8>)], durable: &[(String, Vec<u8>)]) -> io::Result<()> {
        let mut to_sync: Vec<PathBuf> = Vec::with_capacity(2 * new.len() + durable.len());
        let mut new_dirs: BTreeSet<PathBuf> = BTreeSet::new();
        // Step 1a: each new file where it belongs (making missing directories).
        for (path, bytes) in new {
            let target = self.full(path)?;
            let made = self.make_parent(&target)?;
            new_dirs.extend(made);
            File::create(&target)?.write_all(bytes)?;
            to_sync.push(target);
        }
        // Step 1b: each durable file's bytes to a fresh temporary file, remembering the directories
        // to fsync once it is renamed (its own, and the parents of any just made).
        let mut staged: Vec<(PathBuf, PathBuf, Vec<PathBuf>)> = Vec::with_capacity(durable.len());
        for (path, bytes) in durable {
            let target = self.full(path)?;
            let dirs = self.make_parent(&target)?;
            let temp = self.temp.join(format!(
                "{}.tmp",
                self.counter.fetch_add(1, Ordering::Relaxed)
            ));
            File::create(&temp)?.write_all(bytes)?;
            to_sync.push(temp.clone());
            staged.push((temp, target, dirs));
        }
        // Step 2: fsync the new files, the directories that gained their names, and the temporary
        // files' data, all in one round (FSYNC_THREADS at a time).
        to_sync.extend(new_dirs);
        sync_all_paths(&to_sync)?;
        // Steps 3 and 4, file by file in the given order: move it into place and make its name
        // durable before the next is moved, so a later file is never visible before an earlier one
        // is durable (the log relies on this: `checkpoints/<size>` before `checkpoint`).
        for (temp, target, dirs) in &staged {
            fs::rename(temp, target)?;
            for dir in dirs {
                sync_dir(dir)?;
            }
        }
        Ok(())
    }

    fn remove_dir(&self, dir: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.full(dir)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A log directory opened only to read it (a mirror, or another party's copy): no lock, no writes.
pub struct ReadOnlyDir {
    root: PathBuf,
}

impl ReadOnlyDir {
    pub fn new(root: &Path) -> ReadOnlyDir {
        ReadOnlyDir {
            root: root.to_path_buf(),
        }
    }
}

impl Storage for ReadOnlyDir {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        if path.split('/').any(|p| p.is_empty() || p == "..") {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad path"));
        }
        match fs::read(self.root.join(path)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        match fs::read_dir(self.root.join(dir)) {
            Ok(entries) => Ok(entries
                .filter_map(|e| e.ok()?.file_name().to_str().map(String::from))
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn write_durable(&self, _: &[(String, Vec<u8>)]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "read-only log directory",
        ))
    }

    fn remove_dir(&self, _: &str) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "read-only log directory",
        ))
    }
}

impl<T: Storage + ?Sized> Storage for std::sync::Arc<T> {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        (**self).read(path)
    }
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        (**self).list(dir)
    }
    fn write_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        (**self).write_durable(files)
    }
    fn write_new(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        (**self).write_new(files)
    }
    fn commit(&self, new: &[(String, Vec<u8>)], durable: &[(String, Vec<u8>)]) -> io::Result<()> {
        (**self).commit(new, durable)
    }
    fn remove_dir(&self, dir: &str) -> io::Result<()> {
        (**self).remove_dir(dir)
    }
}
