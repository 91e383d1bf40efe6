//! A test double: in-memory storage with the [`Storage`] contract and injected faults (errors,
//! crashes mid-call, a full disk, torn files). Built only for tests (`cfg(test)` or the `testing`
//! feature), never into a production binary.

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;

use crate::storage::Storage;

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
    /// One write call: counted, and subject to the armed fault. `interrupted` leaves what a failed
    /// or crashed call may leave behind; a call that succeeds lands every file whole.
    fn write_with_faults(
        &self,
        files: &[(String, Vec<u8>)],
        interrupted: impl FnOnce(&mut FaultyState),
    ) -> io::Result<()> {
        let mut state = self.state.lock().expect("not poisoned");
        if state.crashed {
            return Err(io::Error::other("crashed"));
        }
        state.writes += 1;
        let n = state.writes;
        match state.fault {
            Fault::Error { at } if at == n => {
                interrupted(&mut state);
                Err(io::Error::other("injected write error"))
            }
            Fault::Crash { at } if at == n => {
                interrupted(&mut state);
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
        // Files land whole and in order: an interrupted call leaves a prefix of them.
        self.write_with_faults(files, |state| {
            let landed = (next_random(&mut state.rng) % (files.len() as u64 + 1)) as usize;
            for (path, bytes) in &files[..landed] {
                state.files.insert(path.clone(), bytes.clone());
            }
        })
    }

    fn create_durable(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        // Checked before anything is written, as a hard link refuses an existing name.
        {
            let state = self.state.lock().expect("not poisoned");
            for (path, bytes) in files {
                if state.files.get(path).is_some_and(|held| held != bytes) {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{path} exists with other bytes"),
                    ));
                }
            }
        }
        self.write_durable(files)
    }

    fn write_new(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        // An interrupted call may leave each file missing, whole or torn.
        self.write_with_faults(files, |state| {
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
        })
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
