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
//! Only then does the call return. If any step fails the call returns the error and any subset of the
//! files may have been replaced (each wholly; a prefix of them, in order); callers treat that as "not
//! written".
//!
//! Files at paths that nothing trusts yet (tiles beyond the last checkpoint) go through
//! [`Storage::write_new`] instead: written in place, then every file and directory fsynced together.
//! That is one journal commit of the file system instead of two (data, then names), and it is safe
//! because a file torn by a crash there is one no checkpoint covers: the next batch rewrites it.
//!
//! [`FaultyStorage`] keeps files in memory with the same contract and injects failures: an error, or a
//! crash that applies a random subset of the batch and then refuses everything until restarted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Files fsynced concurrently in one batch, so a batch does not wait on one fsync after another
/// (`saksi bench log` measures the whole; this setting alone has not been measured separately).
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
/// the file system can fold concurrent ones into one journal commit).
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
        // (temporary file, final path, directories to fsync once it is renamed)
        let mut staged: Vec<(PathBuf, PathBuf, Vec<PathBuf>)> = Vec::with_capacity(files.len());
        // Step 1: write temporary files (and make missing directories, remembering what to fsync).
        for (path, bytes) in files {
            let target = self.full(path)?;
            let parent = target
                .parent()
                .expect("a joined path has a parent")
                .to_path_buf();
            let mut dirs = Vec::new();
            if !parent.is_dir() {
                let mut missing = parent.clone();
                while !missing.is_dir() {
                    dirs.push(missing.parent().expect("below root").to_path_buf());
                    missing = missing.parent().expect("below root").to_path_buf();
                }
                fs::create_dir_all(&parent)?;
            }
            dirs.push(parent);
            let temp = self.temp.join(format!(
                "{}.tmp",
                self.counter.fetch_add(1, Ordering::Relaxed)
            ));
            let mut file = File::create(&temp)?;
            file.write_all(bytes)?;
            staged.push((temp, target, dirs));
        }
        // Step 2: fsync the data of every temporary file, several at a time.
        let temps: Vec<PathBuf> = staged.iter().map(|(temp, _, _)| temp.clone()).collect();
        sync_all_paths(&temps)?;
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

    fn write_new(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        let mut to_sync: Vec<PathBuf> = Vec::with_capacity(2 * files.len());
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        // Step 1: write each file where it belongs (making missing directories).
        for (path, bytes) in files {
            let target = self.full(path)?;
            let parent = target
                .parent()
                .expect("a joined path has a parent")
                .to_path_buf();
            if !parent.is_dir() {
                let mut missing = parent.clone();
                while !missing.is_dir() {
                    dirs.insert(missing.parent().expect("below root").to_path_buf());
                    missing = missing.parent().expect("below root").to_path_buf();
                }
                fs::create_dir_all(&parent)?;
            }
            dirs.insert(parent);
            File::create(&target)?.write_all(bytes)?;
            to_sync.push(target);
        }
        // Step 2: fsync the files and the directories that gained names, all at once.
        to_sync.extend(dirs);
        sync_all_paths(&to_sync)
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

/// What [`FaultyStorage`] does on its `at`-th write call (counting from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The call fails; a random subset of its files was written.
    Error {
        at: u64,
    },
    /// The process "dies" during the call: a random subset of its files was written, and every later
    /// call fails until [`FaultyStorage::restart`].
    Crash {
        at: u64,
    },
    /// The disk is full from the `at`-th call on: nothing more is written until cleared.
    Full {
        at: u64,
    },
}

struct FaultyState {
    files: BTreeMap<String, Vec<u8>>,
    fault: Fault,
    writes: u64,
    crashed: bool,
    rng: u64,
}

/// In-memory storage with the [`Storage`] contract and injected faults, for tests.
pub struct FaultyStorage {
    state: Mutex<FaultyState>,
}

impl FaultyStorage {
    pub fn new(seed: u64) -> FaultyStorage {
        FaultyStorage {
            state: Mutex::new(FaultyState {
                files: BTreeMap::new(),
                fault: Fault::None,
                writes: 0,
                crashed: false,
                rng: seed | 1,
            }),
        }
    }

    /// Arms a fault counted from the next write call.
    pub fn set_fault(&self, fault: Fault) {
        let mut state = self.state.lock().expect("not poisoned");
        let base = state.writes;
        state.fault = match fault {
            Fault::None => Fault::None,
            Fault::Error { at } => Fault::Error { at: base + at },
            Fault::Crash { at } => Fault::Crash { at: base + at },
            Fault::Full { at } => Fault::Full { at: base + at },
        };
    }

    /// The process came back: durable files remain, the crash flag and any armed fault are cleared.
    pub fn restart(&self) {
        let mut state = self.state.lock().expect("not poisoned");
        state.crashed = false;
        state.fault = Fault::None;
    }

    /// Direct access for tests that corrupt files behind the log's back.
    pub fn tamper(&self, path: &str, change: impl FnOnce(&mut Vec<u8>)) {
        let mut state = self.state.lock().expect("not poisoned");
        if let Some(bytes) = state.files.get_mut(path) {
            change(bytes);
        }
    }

    pub fn remove(&self, path: &str) {
        self.state.lock().expect("not poisoned").files.remove(path);
    }

    pub fn paths(&self) -> Vec<String> {
        self.state
            .lock()
            .expect("not poisoned")
            .files
            .keys()
            .cloned()
            .collect()
    }
}

fn next_random(state: &mut u64) -> u64 {
    // xorshift64*: enough to pick subsets.
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

impl Storage for FaultyStorage {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        let state = self.state.lock().expect("not poisoned");
        if state.crashed {
            return Err(io::Error::other("crashed"));
        }
        Ok(state.files.get(path).cloned())
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let state = self.state.lock().expect("not poisoned");
        if state.crashed {
            return Err(io::Error::other("crashed"));
        }
        let prefix = format!("{dir}/");
        Ok(state
            .files
            .keys()
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect())
    }

    fn write_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        let mut state = self.state.lock().expect("not poisoned");
        if state.crashed {
            return Err(io::Error::other("crashed"));
        }
        state.writes += 1;
        let n = state.writes;
        // Files land whole and in order: an interrupted call leaves a prefix of them.
        let partial = |state: &mut FaultyState| {
            let landed = (next_random(&mut state.rng) % (files.len() as u64 + 1)) as usize;
            for (path, bytes) in &files[..landed] {
                state.files.insert(path.clone(), bytes.clone());
            }
        };
        match state.fault {
            Fault::Error { at } if at == n => {
                partial(&mut state);
                Err(io::Error::other("injected write error"))
            }
            Fault::Crash { at } if at == n => {
                partial(&mut state);
                state.crashed = true;
                Err(io::Error::other("injected crash"))
            }
            Fault::Full { at } if n >= at => Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected: no space left on device",
            )),
            _ => {
                for (path, bytes) in files {
                    state.files.insert(path.clone(), bytes.clone());
                }
                Ok(())
            }
        }
    }

    fn write_new(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        // As write_durable, except that an interrupted call may leave each file torn.
        let mut state = self.state.lock().expect("not poisoned");
        if state.crashed {
            return Err(io::Error::other("crashed"));
        }
        state.writes += 1;
        let n = state.writes;
        let torn = |state: &mut FaultyState| {
            for (path, bytes) in files {
                match next_random(&mut state.rng) % 3 {
                    0 => {}
                    1 => {
                        state.files.insert(path.clone(), bytes.clone());
                    }
                    _ => {
                        let cut = (next_random(&mut state.rng) % (bytes.len() as u64 + 1)) as usize;
                        state.files.insert(path.clone(), bytes[..cut].to_vec());
                    }
                }
            }
        };
        match state.fault {
            Fault::Error { at } if at == n => {
                torn(&mut state);
                Err(io::Error::other("injected write error"))
            }
            Fault::Crash { at } if at == n => {
                torn(&mut state);
                state.crashed = true;
                Err(io::Error::other("injected crash"))
            }
            Fault::Full { at } if n >= at => Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected: no space left on device",
            )),
            _ => {
                for (path, bytes) in files {
                    state.files.insert(path.clone(), bytes.clone());
                }
                Ok(())
            }
        }
    }

    fn remove_dir(&self, dir: &str) -> io::Result<()> {
        let mut state = self.state.lock().expect("not poisoned");
        if state.crashed {
            return Err(io::Error::other("crashed"));
        }
        let prefix = format!("{dir}/");
        state.files.retain(|path, _| !path.starts_with(&prefix));
        Ok(())
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
    fn remove_dir(&self, dir: &str) -> io::Result<()> {
        (**self).remove_dir(dir)
    }
}
