//! Where a log's files live. The log needs three things of storage: read a file, list a directory, and
//! write a set of files so that each is atomic and all are durable when the call returns.
//!
//! [`DirStorage`] does this on a real file system. For each batch of files:
//!   1. write each file's bytes to a fresh temporary file (in a sibling directory, never served);
//!   2. fsync every temporary file through the handle that wrote it (so its data is on disk before
//!      its name is, and a write-back error reaches us: reopening by path could miss it);
//!   3. open the directories that will gain the name, then move the temporary file to its path: a
//!      rename that replaces (atomic: readers see old or new, never a mix), or for a create-once
//!      file ([`Storage::create_durable`]) a hard link that refuses an existing name, after which
//!      the same bytes are accepted and other bytes are an error;
//!   4. fsync those directory handles (the parent, and the parents of directories just made);
//!      steps 3 and 4 go file by file, in the order given, so a later file is never visible before an
//!      earlier one is durable.
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
    /// Creates each file once, durable on return, in order like [`Storage::write_durable`]: a path
    /// that already holds the same bytes is left as it is (a retried write), one that holds other
    /// bytes fails the call with `AlreadyExists` and is never overwritten (what a published path
    /// needs: a log must not sign two checkpoints of one size, see Tessera's `createIdempotent`).
    fn create_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()>;
    /// `write_new(new)`, then `create_durable(created)`, then `write_durable(replaced)`, with the
    /// same guarantees on return and after a crash: no file of `created` or `replaced` is visible
    /// before every file of `new` is durable, and no file of `replaced` before every file of
    /// `created`. Storage may do it in fewer rounds of fsyncs (DirStorage: the new files and the
    /// others' data in one round, then the others' names in order).
    fn commit(
        &self,
        new: &[(String, Vec<u8>)],
        created: &[(String, Vec<u8>)],
        replaced: &[(String, Vec<u8>)],
    ) -> io::Result<()> {
        self.write_new(new)?;
        self.create_durable(created)?;
        self.write_durable(replaced)
    }
    /// Removes a directory and everything in it, if it exists. Best effort, not durable: used only to
    /// drop files no checkpoint needs any more.
    fn remove_dir(&self, dir: &str) -> io::Result<()>;
    /// [`Storage::commit`], then the removal of `pruned` directories (partial tiles the commit
    /// completed), best effort: a failed removal leaves files no checkpoint needs, never fails the
    /// commit. A store whose every call is a round trip (PostgreSQL, each transaction waiting for a
    /// synchronous standby) does both in one.
    fn commit_and_prune(
        &self,
        new: &[(String, Vec<u8>)],
        created: &[(String, Vec<u8>)],
        replaced: &[(String, Vec<u8>)],
        pruned: &[String],
    ) -> io::Result<()> {
        self.commit(new, created, replaced)?;
        for dir in pruned {
            let _ = self.remove_dir(dir);
        }
        Ok(())
    }
    /// Tries to make this process the store's one writer, or confirms that it still is; `false`:
    /// another process writes (this one may serve reads and try again). A store shared by several
    /// servers (PostgreSQL) takes a lock here and re-reads its view of the log before writing; a
    /// directory is locked for its writer when opened, so the default is `true`.
    fn try_become_writer(&self) -> io::Result<bool> {
        Ok(true)
    }
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

/// Fsyncs open files or directories, up to FSYNC_THREADS at a time (one fsync need not wait for
/// another; measured at FSYNC_THREADS). The handles are the ones that wrote: a write-back error is
/// reported to the descriptor it happened on, and a file reopened by path after it may not see it.
fn sync_all(files: &[File]) -> io::Result<()> {
    if files.len() <= 1 {
        return files.iter().try_for_each(File::sync_all);
    }
    let chunk = files.len().div_ceil(FSYNC_THREADS);
    std::thread::scope(|scope| -> io::Result<()> {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().try_for_each(File::sync_all)))
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| io::Error::other("fsync thread panicked"))??;
        }
        Ok(())
    })
}

/// A durable file written to a temporary file, waiting to be moved to its name.
struct Staged<'a> {
    temp: PathBuf,
    target: PathBuf,
    bytes: &'a [u8],
    /// The directories whose entries change when `target` appears (its parent, and the parents of
    /// directories just made), opened before the move so the handle fsynced is the one that saw it.
    dirs: Vec<PathBuf>,
    /// Create once (never overwrite other bytes) rather than replace.
    once: bool,
}

impl Staged<'_> {
    /// Moves the temporary file to its name: a rename that replaces, or for a create-once file a hard
    /// link that fails if the name exists (atomic even against another writer), then compares.
    fn place(&self) -> io::Result<()> {
        if !self.once {
            return fs::rename(&self.temp, &self.target);
        }
        match fs::hard_link(&self.temp, &self.target) {
            Ok(()) => fs::remove_file(&self.temp),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                fs::remove_file(&self.temp)?;
                if fs::read(&self.target)? == self.bytes {
                    Ok(())
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "{} exists with other bytes; a published file is never rewritten",
                            self.target.display()
                        ),
                    ))
                }
            }
            Err(e) => Err(e),
        }
    }
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
        self.commit(&[], &[], files)
    }

    fn create_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.commit(&[], files, &[])
    }

    fn write_new(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        self.commit(files, &[], &[])
    }

    /// One round of fsyncs for the new files and the others' data, then the others' names in order.
    /// A crash leaves what [`Storage::commit`]'s default would: no created or replaced file is moved
    /// to its name before every new file is durable.
    fn commit(
        &self,
        new: &[(String, Vec<u8>)],
        created: &[(String, Vec<u8>)],
        replaced: &[(String, Vec<u8>)],
    ) -> io::Result<()> {
        let durable = created.len() + replaced.len();
        let mut to_sync: Vec<File> = Vec::with_capacity(2 * new.len() + durable);
        let mut new_dirs: BTreeSet<PathBuf> = BTreeSet::new();
        // Step 1a: each new file where it belongs (making missing directories), its handle kept.
        for (path, bytes) in new {
            let target = self.full(path)?;
            new_dirs.extend(self.make_parent(&target)?);
            let mut file = File::create(&target)?;
            file.write_all(bytes)?;
            to_sync.push(file);
        }
        // Step 1b: each durable file's bytes to a fresh temporary file, its handle kept, remembering
        // the directories to fsync once it has its name.
        let mut staged: Vec<Staged> = Vec::with_capacity(durable);
        let flagged = created.iter().map(|f| (f, true));
        for ((path, bytes), once) in flagged.chain(replaced.iter().map(|f| (f, false))) {
            let target = self.full(path)?;
            let dirs = self.make_parent(&target)?;
            let temp = self.temp.join(format!(
                "{}.tmp",
                self.counter.fetch_add(1, Ordering::Relaxed)
            ));
            let mut file = File::create(&temp)?;
            file.write_all(bytes)?;
            to_sync.push(file);
            staged.push(Staged {
                temp,
                target,
                bytes,
                dirs,
                once,
            });
        }
        // Step 2: fsync the new files, the directories that gained their names, and the temporary
        // files' data, all in one round (FSYNC_THREADS at a time), each through the handle that
        // wrote it.
        for dir in new_dirs {
            to_sync.push(File::open(dir)?);
        }
        sync_all(&to_sync)?;
        // Steps 3 and 4, file by file in the given order: open its directories, move it to its name,
        // fsync them, before the next is moved; so a later file is never visible before an earlier
        // one is durable (the log relies on this: `checkpoints/<size>` before `checkpoint`).
        for file in &staged {
            let dirs: Vec<File> = file.dirs.iter().map(File::open).collect::<Result<_, _>>()?;
            file.place()?;
            dirs.iter().try_for_each(File::sync_all)?;
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

    fn create_durable(&self, _: &[(String, Vec<u8>)]) -> io::Result<()> {
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
    fn create_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        (**self).create_durable(files)
    }
    fn commit(
        &self,
        new: &[(String, Vec<u8>)],
        created: &[(String, Vec<u8>)],
        replaced: &[(String, Vec<u8>)],
    ) -> io::Result<()> {
        (**self).commit(new, created, replaced)
    }
    fn remove_dir(&self, dir: &str) -> io::Result<()> {
        (**self).remove_dir(dir)
    }
    fn commit_and_prune(
        &self,
        new: &[(String, Vec<u8>)],
        created: &[(String, Vec<u8>)],
        replaced: &[(String, Vec<u8>)],
        pruned: &[String],
    ) -> io::Result<()> {
        (**self).commit_and_prune(new, created, replaced, pruned)
    }
    // Every method forwards, defaults included: a default here would silently shadow the store's own.
    fn try_become_writer(&self) -> io::Result<bool> {
        (**self).try_become_writer()
    }
}
