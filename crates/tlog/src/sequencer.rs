//! Group commit: many concurrent writers, one [`Log`]. Each `submit` queues an entry and waits; one
//! thread takes what is queued, up to a batch bound or until a short delay has passed since the first,
//! appends it as one batch (one round of fsyncs for all), and answers every waiter with its index and
//! the checkpoint that covers it.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::log::{Log, LogError, Published, TileReader};
use crate::storage::Storage;

#[derive(Clone, Copy, Debug)]
pub struct SequencerConfig {
    /// Most entries committed together.
    pub max_batch_entries: usize,
    /// Most entry bytes committed together.
    pub max_batch_bytes: usize,
    /// How long the first entry of a batch may wait for company.
    pub max_delay: Duration,
    /// Entries waiting beyond this make `submit` block: back-pressure instead of unbounded memory.
    pub queue_capacity: usize,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        SequencerConfig {
            max_batch_entries: 4096,
            max_batch_bytes: 16 << 20,
            max_delay: Duration::from_millis(5),
            queue_capacity: 65_536,
        }
    }
}

/// What a writer gets back: its entry's index and a checkpoint that includes it.
#[derive(Clone, Debug)]
pub struct Sequenced {
    pub index: u64,
    pub checkpoint: Arc<Published>,
}

struct Request {
    entry: Vec<u8>,
    reply: SyncSender<Result<Sequenced, String>>,
}

/// The latest published state, shared with readers.
pub struct Shared {
    storage: Arc<dyn Storage>,
    published: RwLock<Arc<Published>>,
}

impl Shared {
    pub fn published(&self) -> Arc<Published> {
        self.published.read().expect("not poisoned").clone()
    }

    /// A tile reader at the latest published size.
    pub fn reader(&self) -> TileReader {
        TileReader::new(self.storage.clone(), self.published().checkpoint.size)
    }
}

pub struct Sequencer {
    sender: Option<SyncSender<Request>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Sequencer {
    pub fn start(log: Log, config: SequencerConfig) -> Sequencer {
        let shared = Arc::new(Shared {
            storage: log.storage(),
            published: RwLock::new(log.published()),
        });
        let (sender, receiver) = mpsc::sync_channel(config.queue_capacity);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tlog-sequencer".into())
            .spawn(move || run(log, receiver, config, thread_shared))
            .expect("spawning the sequencer thread");
        Sequencer {
            sender: Some(sender),
            thread: Some(thread),
            shared,
        }
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Appends one entry and waits until it is durable and published.
    pub fn submit(&self, entry: Vec<u8>) -> Result<Sequenced, LogError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.sender
            .as_ref()
            .ok_or(LogError::Closed)?
            .send(Request { entry, reply })
            .map_err(|_| LogError::Closed)?;
        answer
            .recv()
            .map_err(|_| LogError::Closed)?
            .map_err(LogError::Poisoned)
    }

    /// A handle for other threads to submit through.
    pub fn handle(&self) -> Option<SequencerHandle> {
        self.sender.clone().map(|sender| SequencerHandle { sender })
    }
}

/// A cloneable way to submit entries.
#[derive(Clone)]
pub struct SequencerHandle {
    sender: SyncSender<Request>,
}

impl SequencerHandle {
    pub fn submit(&self, entry: Vec<u8>) -> Result<Sequenced, LogError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.sender
            .send(Request { entry, reply })
            .map_err(|_| LogError::Closed)?;
        answer
            .recv()
            .map_err(|_| LogError::Closed)?
            .map_err(LogError::Poisoned)
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut log: Log, receiver: Receiver<Request>, config: SequencerConfig, shared: Arc<Shared>) {
    while let Ok(first) = receiver.recv() {
        let deadline = Instant::now() + config.max_delay;
        let mut bytes = first.entry.len();
        let mut batch = vec![first];
        while batch.len() < config.max_batch_entries && bytes < config.max_batch_bytes {
            let wait = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(wait) {
                Ok(request) => {
                    bytes += request.entry.len();
                    batch.push(request);
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let entries: Vec<&[u8]> = batch.iter().map(|r| r.entry.as_slice()).collect();
        match log.append(&entries) {
            Ok((first_index, checkpoint)) => {
                *shared.published.write().expect("not poisoned") = checkpoint.clone();
                for (i, request) in batch.into_iter().enumerate() {
                    let _ = request.reply.send(Ok(Sequenced {
                        index: first_index + i as u64,
                        checkpoint: checkpoint.clone(),
                    }));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for request in batch {
                    let _ = request.reply.send(Err(message.clone()));
                }
            }
        }
    }
}
