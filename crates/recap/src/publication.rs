//! Publication: when a committed checkpoint becomes the published one, in memory (what the API,
//! receipts and `/log/checkpoint` serve) and in the log's `checkpoint` file. One policy, one type,
//! one [`Publication::tick`]; the engine ticks it after every commit, the writer when idle, and
//! [`Publication::settle`] before the process exits.
//!
//! The policy:
//! - **Without a witness policy** a committed checkpoint is published in memory at once (before its
//!   entries are acknowledged). The `checkpoint` file may lag: it is written when the writer is
//!   idle, on open and on close, and under load by the first commit PUBLISH_INTERVAL after the last
//!   write. That saves two of a batch's eight fsyncs, and nothing acknowledged depends on the file:
//!   the commit point is `checkpoints/<size>`, and a lagging file is brought up to date on open.
//! - **With a witness policy** (from the checkpoint that logs the policy on) a checkpoint is
//!   published, in memory and file together, only once `quorum` witnesses cosigned it. Witnesses
//!   are asked on a thread of their own ([`crate::cosign`]): the writer never waits for them. One
//!   round per committed size; a round that fails is retried by the next commit (or restart), not in
//!   a loop against witnesses that are down; its entries stay committed.
//!
//! Invariants: the published checkpoint never goes back (in memory or file); it is always one that
//! was committed (`Log::publish` checks it against `checkpoints/<size>`).

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use saksi_tlog::note::Verifier;
use saksi_tlog::{Log, LogError, Published};

use crate::cosign::{gather_cosignatures, witness_client, WitnessRequest};
use crate::entry::WitnessPolicy;
use crate::shared::Shared;

/// How far behind the log's `checkpoint` file may fall while batches keep committing: every commit
/// that finds the file this old brings it up to date, whoever the writer is (server, import).
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(500);

/// How long a writer waits for more work before it calls itself idle and brings the `checkpoint`
/// file up to date. Writing it with every batch cost two of the eight fsyncs a batch needs: 8,320
/// submissions/s at 64 clients with it, 9,320/s without (six runs each, `saksi bench submit`).
pub const IDLE_BEFORE_PUBLISHING: Duration = Duration::from_millis(20);

/// While a witness round runs, how often an idle writer looks for its result: receipts waiting for
/// the round's checkpoint go out within this of the quorum.
pub const ROUND_POLL: Duration = Duration::from_millis(1);

/// Why the publication is being ticked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// A batch was just committed: publish in memory; write the file only if it is PUBLISH_INTERVAL
    /// old.
    Committed,
    /// The writer has nothing to do (or the log was just opened, or is being closed): bring the file
    /// up to date.
    Idle,
}

/// The publication state machine (see the module docs).
pub struct Publication {
    /// The size the `checkpoint` file holds, and when it was last written.
    file_size: u64,
    file_written_at: Instant,
    /// The witness round in progress, on its own thread.
    round: Option<Receiver<RoundResult>>,
    /// The committed size the latest round asked witnesses to cosign.
    asked_up_to: u64,
    /// The tree size each witness (by key id) last cosigned, as far as we know.
    witness_sizes: HashMap<u32, u64>,
    /// Made on first use (only logs with a witness policy need it).
    client: Option<saksi_client::Client>,
    /// Why the latest committed checkpoint is not published, if it is not.
    problem: Option<String>,
}

/// A finished witness round.
struct RoundResult {
    committed: Arc<Published>,
    /// Valid cosignature lines, in the order they arrived.
    lines: Vec<String>,
    /// Key ids of the witnesses that cosigned (they have now seen this size).
    cosigned: Vec<u32>,
    quorum: u32,
    started: Instant,
}

impl Publication {
    /// `file_size`: the size of the checkpoint the `checkpoint` file holds now.
    pub(crate) fn new(file_size: u64) -> Publication {
        Publication {
            file_size,
            file_written_at: Instant::now(),
            round: None,
            asked_up_to: 0,
            witness_sizes: HashMap::new(),
            client: None,
            problem: None,
        }
    }

    /// Why the latest committed checkpoint is not published, if it is not.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Whether a witness round is running.
    pub fn round_running(&self) -> bool {
        self.round.is_some()
    }

    /// How long an idle writer may wait before it must tick again (with [`Moment::Idle`]), or `None`
    /// if nothing is pending and it may wait for work as long as there is none.
    pub(crate) fn next_tick(&self, log: &Log, policy: Option<&WitnessPolicy>) -> Option<Duration> {
        if self.round.is_some() {
            Some(ROUND_POLL)
        } else if policy.is_none() && self.file_size < log.committed().checkpoint.size {
            Some(IDLE_BEFORE_PUBLISHING)
        } else {
            None
        }
    }

    /// One step of the policy: takes up a finished witness round, publishes what may be published,
    /// starts a round for what needs witnesses. Never waits. An error is the log's (writing
    /// `checkpoint` failed) and poisons it.
    pub(crate) fn tick(
        &mut self,
        log: &mut Log,
        shared: &Shared,
        policy: Option<&WitnessPolicy>,
        moment: Moment,
    ) -> Result<(), LogError> {
        if let Some(round) = &self.round {
            match round.try_recv() {
                Ok(result) => {
                    self.round = None;
                    self.finish_round(log, shared, result)?;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.round = None,
            }
        }
        let committed = log.committed();
        let size = committed.checkpoint.size;
        match policy {
            None => {
                self.problem = None;
                shared.set_published(committed.clone());
                let due = match moment {
                    Moment::Committed => self.file_written_at.elapsed() >= PUBLISH_INTERVAL,
                    Moment::Idle => true,
                };
                if self.file_size < size && due {
                    self.write_file(log, &committed.note, size)?;
                }
            }
            Some(policy) => {
                let published = shared.published().checkpoint.size;
                if self.round.is_none() && size > self.asked_up_to && size > published {
                    self.asked_up_to = size;
                    self.start_round(log, shared, committed, policy);
                }
            }
        }
        Ok(())
    }

    /// Waits (at most `timeout`) for running witness rounds and publishes what they bring, then
    /// brings the file up to date: for commands that exit after their writes (enrolment, a policy
    /// change, an import), and on close.
    pub(crate) fn settle(
        &mut self,
        log: &mut Log,
        shared: &Shared,
        policy: Option<&WitnessPolicy>,
        timeout: Duration,
    ) -> Result<(), LogError> {
        let deadline = Instant::now() + timeout;
        while let Some(round) = &self.round {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(result) = round.recv_timeout(left) else {
                break;
            };
            self.round = None;
            self.finish_round(log, shared, result)?;
            // Anything committed since is asked for now, and waited for in this loop.
            self.tick(log, shared, policy, Moment::Idle)?;
        }
        self.tick(log, shared, policy, Moment::Idle)
    }

    fn write_file(&mut self, log: &mut Log, note: &str, size: u64) -> Result<(), LogError> {
        log.publish(note)?;
        self.file_size = size;
        self.file_written_at = Instant::now();
        Ok(())
    }

    fn start_round(
        &mut self,
        log: &Log,
        shared: &Shared,
        committed: Arc<Published>,
        policy: &WitnessPolicy,
    ) {
        let client = match &self.client {
            Some(client) => client.clone(),
            None => match witness_client() {
                Ok(client) => self.client.insert(client).clone(),
                Err(e) => {
                    self.problem = Some(e);
                    shared.set_round_failed(committed.checkpoint.size);
                    return;
                }
            },
        };
        let requests: Vec<WitnessRequest> = policy
            .witnesses
            .iter()
            .filter_map(|(vkey, url)| {
                let witness = Verifier::parse(vkey).ok()?;
                Some(WitnessRequest {
                    client: client.clone(),
                    storage: shared.storage.clone(),
                    note: committed.note.clone(),
                    size: committed.checkpoint.size,
                    old: self.witness_sizes.get(&witness.id).copied().unwrap_or(0),
                    url: format!("{}/add-checkpoint", url.trim_end_matches('/')),
                    log: log.verifier().clone(),
                    witness,
                })
            })
            .collect();
        let (sender, result) = mpsc::sync_channel(1);
        let quorum = policy.quorum;
        let started = Instant::now();
        let spawned = std::thread::Builder::new()
            .name("saksi-witnesses".into())
            .spawn(move || {
                let (lines, cosigned) = gather_cosignatures(requests, quorum);
                let _ = sender.send(RoundResult {
                    committed,
                    lines,
                    cosigned,
                    quorum,
                    started,
                });
            });
        match spawned {
            Ok(_) => self.round = Some(result),
            Err(e) => self.problem = Some(format!("cannot start a witness round: {e}")),
        }
    }

    fn finish_round(
        &mut self,
        log: &mut Log,
        shared: &Shared,
        result: RoundResult,
    ) -> Result<(), LogError> {
        let size = result.committed.checkpoint.size;
        shared.observe(crate::shared::Event::WitnessRound {
            seconds: result.started.elapsed().as_secs_f64(),
            quorum_met: result.lines.len() >= result.quorum as usize,
        });
        for id in result.cosigned {
            self.witness_sizes.insert(id, size);
        }
        if result.lines.len() < result.quorum as usize {
            self.problem = Some(format!(
                "checkpoint {size} has {} of the {} witness cosignatures the policy requires",
                result.lines.len(),
                result.quorum
            ));
            shared.set_round_failed(size);
            return Ok(());
        }
        if shared.published().checkpoint.size >= size {
            return Ok(());
        }
        let note = format!("{}{}", result.committed.note, result.lines.concat());
        self.write_file(log, &note, size)?;
        self.problem = None;
        shared.set_published(Arc::new(Published {
            checkpoint: result.committed.checkpoint.clone(),
            note,
        }));
        Ok(())
    }
}
