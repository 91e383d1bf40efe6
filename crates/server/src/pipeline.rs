//! The threads a submission crosses, and their protocol. A TPS form goes handler -> signature pool
//! (verified in batches with other requests) -> the engine's single writer (enrolment, rulebook,
//! history, group commit) -> the receipt thread (a c2sp.org/tlog-proof per entry, once its
//! checkpoint is published) -> handler: four crossings, three of them in batches, none through the
//! HTTP runtime in between. Recap forms and authority statements go straight to the writer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use saksi_election::form::EncodedForm;
use saksi_election::rules;
use saksi_recap::engine::{Engine, IngestOutcome, Moment, Shared};

use crate::metrics::Metrics;

/// The senders into the pipeline, shared by every handler.
#[derive(Clone)]
pub(crate) struct Pipeline {
    pub(crate) signatures: SyncSender<SignatureJob>,
    pub(crate) ingest: SyncSender<IngestJob>,
    /// Forms accepted by a handler whose signature check has not finished: the writer waits for them
    /// (up to INGEST_LINGER) so that they join the commit it is about to make instead of the next.
    pub(crate) verifying: Arc<AtomicUsize>,
}

/// Starts the signature pool, the writer (which owns `engine`) and the receipt thread.
pub(crate) fn start(engine: Engine, metrics: Arc<Metrics>) -> Pipeline {
    let shared = engine.shared();
    let verifying = Arc::new(AtomicUsize::new(0));
    let (ingest, ingest_jobs) = mpsc::sync_channel::<IngestJob>(QUEUE_CAPACITY);
    let (signatures, signature_jobs) = mpsc::sync_channel::<SignatureJob>(QUEUE_CAPACITY);
    let signature_jobs = Arc::new(std::sync::Mutex::new(signature_jobs));
    for i in 0..signature_workers() {
        let (jobs, ingest, verifying) = (signature_jobs.clone(), ingest.clone(), verifying.clone());
        std::thread::Builder::new()
            .name(format!("saksi-verify-{i}"))
            .spawn({
                let shared = shared.clone();
                move || verify_signatures(jobs, ingest, verifying, &shared)
            })
            .expect("spawning a verifier thread");
    }
    let writer_verifying = verifying.clone();
    let (receipts, committed) = mpsc::sync_channel::<Committed>(RECEIPT_QUEUE_BATCHES);
    std::thread::Builder::new()
        .name("saksi-receipts".into())
        .spawn(move || build_receipts(&shared, committed))
        .expect("spawning the receipt thread");
    std::thread::Builder::new()
        .name("saksi-writer".into())
        .spawn(move || write_forms(engine, ingest_jobs, writer_verifying, receipts, &metrics))
        .expect("spawning the writer");
    Pipeline {
        signatures,
        ingest,
        verifying,
    }
}

/// How often a read replica reads its copy's checkpoint: with `saksi mirror --follow`'s own
/// interval, a replica of a mirror serves a new checkpoint within about half a second.
pub(crate) const REPLICA_INTERVAL: Duration = Duration::from_millis(250);

/// Why a read replica refuses writes.
pub(crate) const READ_ONLY: &str = "this server is a read replica: it serves the log, the figures and the site, and takes no submissions (send them to the writer)";

/// A read replica's pipeline: one thread follows the log copy every REPLICA_INTERVAL. The router
/// refuses every POST before it gets here; whatever reaches the queues anyway is refused too.
pub(crate) fn start_replica(
    replica: saksi_recap::replica::Replica,
    metrics: Arc<Metrics>,
) -> Pipeline {
    let (ingest, ingest_jobs) = mpsc::sync_channel::<IngestJob>(1);
    let (signatures, signature_jobs) = mpsc::sync_channel::<SignatureJob>(1);
    std::thread::Builder::new()
        .name("saksi-replica".into())
        .spawn(move || {
            let mut last_problem = String::new();
            loop {
                match replica.follow() {
                    Ok(_) => last_problem.clear(),
                    Err(e) => {
                        metrics.store_error();
                        let problem = with_causes(&e);
                        if problem != last_problem {
                            tracing::warn!("cannot follow the log copy: {problem}");
                            last_problem = problem;
                        }
                    }
                }
                while let Ok(job) = signature_jobs.try_recv() {
                    let _ = job.reply.send(Answer::Unavailable(READ_ONLY.into()));
                }
                match ingest_jobs.recv_timeout(REPLICA_INTERVAL) {
                    Ok(job) => {
                        let _ = job.reply.send(Answer::Unavailable(READ_ONLY.into()));
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .expect("spawning the replica thread");
    Pipeline {
        signatures,
        ingest,
        verifying: Arc::new(AtomicUsize::new(0)),
    }
}

/// Submissions waiting for signature checks or for the writer, beyond which the server answers 503
/// (back-pressure rather than unbounded queues).
const QUEUE_CAPACITY: usize = 16_384;

/// Signatures verified together.
const SIGNATURE_BATCH: usize = 64;

/// Forms committed together, and the longest the first may wait for forms still in signature checks:
/// about half a commit's fsync rounds (~1.8 ms here), so waiting never costs more than it saves.
/// (0.5 to 2 ms measured alike within this machine's run-to-run noise; 4 ms was worse.)
const INGEST_BATCH: usize = 4096;

const INGEST_LINGER: Duration = Duration::from_millis(1);

/// Committed batches waiting for their receipts; past this the writer waits (back-pressure).
const RECEIPT_QUEUE_BATCHES: usize = 64;

/// How often a lingering writer looks again for forms that finished their signature check.
const INGEST_POLL: Duration = Duration::from_micros(100);

/// How long a submission's receipt waits for its checkpoint to be cosigned: the witnesses' own
/// deadline and a little more, within the request deadline.
const RECEIPT_WAIT: Duration = Duration::from_secs(5);

/// A TPS form on its way to the writer. The verifier forwards it there itself and the receipt thread
/// answers, so a submission crosses threads four times (handler -> verifier -> writer -> receipts ->
/// handler), three of them in batches, and never goes back through the HTTP runtime in between.
pub(crate) struct SignatureJob {
    pub(crate) form: EncodedForm,
    pub(crate) reply: oneshot::Sender<Answer>,
}

pub(crate) struct IngestJob {
    pub(crate) form: Submission,
    pub(crate) reply: oneshot::Sender<Answer>,
}

/// What a submission's handler hears back.
pub(crate) enum Answer {
    /// With the receipt when the entry is in the published checkpoint.
    Ingested(IngestOutcome, Option<String>),
    SignatureInvalid,
    /// A queue was full.
    Busy,
    /// The log refused to write (poisoned or out of space): nothing was acknowledged.
    Unavailable(String),
}

/// What the writer takes: a TPS form or a recapitulation form.
// Nearly every submission is a TPS form, the large variant: boxing would cost each one an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Submission {
    Tps(EncodedForm),
    Recap(saksi_election::recap::SignedRecap),
    /// A poll witness's copy, its signature checked by the handler.
    Copy(saksi_election::copy::SignedCopy),
    /// A citizen's report, its signature checked and its text stored by the handler.
    Report(saksi_election::report::SignedReport),
    /// A statement the authority (or a participant) signed offline (registry change, witness policy), as sent.
    Statement(Vec<u8>),
}

/// Signature-checking threads: one core fewer than the machine has (at least one), leaving a core to
/// the HTTP runtime and the writer. On 2 cores, one verifier gave 9,300 submissions/s at 64 clients
/// (mean of eight runs, 8,590 to 9,760) against 8,870/s with two (four runs, 8,500 to 9,230) in
/// `saksi bench submit`: a second verifier competes with the HTTP runtime and the writer for the
/// same two cores, while signatures are only ~15% of the server's CPU.
fn signature_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// Takes up to SIGNATURE_BATCH waiting jobs, verifies them as one batch, and hands the good ones to
/// the writer.
fn verify_signatures(
    jobs: Arc<std::sync::Mutex<Receiver<SignatureJob>>>,
    ingest: SyncSender<IngestJob>,
    verifying: Arc<AtomicUsize>,
    shared: &Shared,
) {
    loop {
        let mut batch = Vec::with_capacity(SIGNATURE_BATCH);
        {
            let receiver = jobs.lock().expect("not poisoned");
            match receiver.recv() {
                Ok(job) => batch.push(job),
                Err(_) => return,
            }
            while batch.len() < SIGNATURE_BATCH {
                match receiver.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let forms: Vec<Option<&EncodedForm>> = batch.iter().map(|j| Some(&j.form)).collect();
        // Read-locked for one batch: only a registry change takes the write lock.
        let verdicts = EncodedForm::verify_signatures(
            &forms,
            &shared.key_points.read().expect("not poisoned"),
        );
        for (job, ok) in batch.into_iter().zip(verdicts) {
            if !ok {
                let _ = job.reply.send(Answer::SignatureInvalid);
            } else if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) = ingest
                .try_send(IngestJob {
                    form: Submission::Tps(job.form),
                    reply: job.reply,
                })
            {
                let _ = job.reply.send(Answer::Busy);
            }
            // After the hand-off, so the writer never sees zero while a checked form is on its way.
            verifying.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The single writer: group-commits whatever is waiting, and between batches ticks the engine's
/// publication when it asks to be (see saksi_recap::publication).
fn write_forms(
    mut engine: Engine,
    jobs: Receiver<IngestJob>,
    verifying: Arc<AtomicUsize>,
    receipts: SyncSender<Committed>,
    metrics: &Metrics,
) {
    // The operator's alarm, once per refusal (a full disk, a failed fsync, another writer on the
    // same store); submitters are told on every answer.
    let mut alarmed = false;
    loop {
        match engine.poisoned() {
            Some(why) if !alarmed => {
                tracing::error!("ALARM: the log stopped accepting writes: {why}");
                metrics.store_error();
                alarmed = true;
            }
            Some(_) => {}
            None => alarmed = false,
        }
        let refused = engine.poisoned().is_some() && engine.can_take_over();
        if (engine.is_standby() || refused) && stand_by(&mut engine, &jobs, metrics).is_none() {
            return;
        }
        let Some(first) = wait_for_work(&mut engine, &jobs) else {
            return;
        };
        let batch = gather_batch(first, &jobs, &verifying);
        commit_batch(&mut engine, batch, &receipts);
    }
}

/// An error and every cause under it, for the operator's log line.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text = format!("{text}: {e}");
        cause = e.source();
    }
    text
}

/// How often a standby reads the store's checkpoint and tries to become the writer.
const STANDBY_INTERVAL: Duration = Duration::from_millis(500);

/// On a store shared by several servers: follows the log and answers submissions with 503 until this
/// server becomes the writer (the writer stopped, or the database failed over and the lock is free
/// again). `None` once the server stops.
fn stand_by(engine: &mut Engine, jobs: &Receiver<IngestJob>, metrics: &Metrics) -> Option<()> {
    match engine.poisoned() {
        Some(why) => tracing::warn!("the log refused a write ({why}); taking over again when the store lets this server write"),
        None => tracing::info!("standby: following the log; writing once this server holds the store's writer lock"),
    }
    // Each distinct failure is counted every time, and said once, not every interval.
    let mut last_problem = String::new();
    let mut say = |problem: String| {
        metrics.store_error();
        if problem != last_problem {
            tracing::warn!("{problem}");
            last_problem = problem;
        }
    };
    loop {
        match engine.try_take_over() {
            Ok(true) => {
                tracing::info!(
                    "writing the log from size {} (state replayed to the committed checkpoint)",
                    engine.shared().state.read().expect("not poisoned").size
                );
                return Some(());
            }
            Ok(false) => {}
            Err(e) => say(format!("cannot write yet: {}", with_causes(&e))),
        }
        if let Err(e) = engine.follow() {
            say(format!("cannot follow the log yet: {}", with_causes(&e)));
        }
        let deadline = Instant::now() + STANDBY_INTERVAL;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match jobs.recv_timeout(left) {
                Ok(job) => {
                    let _ = job
                        .reply
                        .send(Answer::Unavailable(saksi_recap::engine::STANDBY.into()));
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

/// Waits for the next job, ticking the engine's publication whenever it asks (a witness round to
/// take up, the `checkpoint` file to bring up to date once idle). `None` once the server stops.
fn wait_for_work(engine: &mut Engine, jobs: &Receiver<IngestJob>) -> Option<IngestJob> {
    loop {
        let Some(wait) = engine.next_publication_tick() else {
            return jobs.recv().ok();
        };
        match jobs.recv_timeout(wait) {
            Ok(job) => return Some(job),
            // A failure poisons the engine, and the next submission is told.
            Err(RecvTimeoutError::Timeout) => {
                let _ = engine.tick_publication(Moment::Idle);
            }
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// `first` and whatever else is waiting, up to INGEST_BATCH, lingering (at most INGEST_LINGER) only
/// while more forms are still in their signature check: when none are, waiting would only add
/// latency.
fn gather_batch(
    first: IngestJob,
    jobs: &Receiver<IngestJob>,
    verifying: &AtomicUsize,
) -> Vec<IngestJob> {
    let deadline = Instant::now() + INGEST_LINGER;
    let mut batch = vec![first];
    while batch.len() < INGEST_BATCH {
        match jobs.try_recv() {
            Ok(job) => {
                batch.push(job);
                continue;
            }
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        if verifying.load(Ordering::Acquire) == 0 || now >= deadline {
            break;
        }
        match jobs.recv_timeout(INGEST_POLL.min(deadline - now)) {
            Ok(job) => batch.push(job),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    batch
}

/// Commits one batch (TPS forms, then recaps, then copies, then each statement) and hands the outcomes to the
/// receipt thread, or answers the handlers at once when nothing was committed.
fn commit_batch(engine: &mut Engine, batch: Vec<IngestJob>, receipts: &SyncSender<Committed>) {
    let (mut forms, mut form_replies, mut recaps, mut recap_replies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut copies, mut copy_replies) = (Vec::new(), Vec::new());
    let (mut reports, mut report_replies) = (Vec::new(), Vec::new());
    let mut statements = Vec::new();
    for job in batch {
        match job.form {
            Submission::Tps(form) => {
                forms.push(form);
                form_replies.push(job.reply);
            }
            Submission::Recap(form) => {
                recaps.push(form);
                recap_replies.push(job.reply);
            }
            Submission::Copy(copy) => {
                copies.push(copy);
                copy_replies.push(job.reply);
            }
            Submission::Report(report) => {
                reports.push(report);
                report_replies.push(job.reply);
            }
            Submission::Statement(bytes) => statements.push((bytes, job.reply)),
        }
    }
    let answer = |result: Result<Vec<IngestOutcome>, saksi_recap::EngineError>,
                  replies: Vec<oneshot::Sender<Answer>>| match result {
        Ok(outcomes) => {
            // Receipts are built off the writer's path, which moves on to the next batch.
            if let Err(mpsc::SendError(batch)) = receipts.send(Committed { outcomes, replies }) {
                for reply in batch.replies {
                    let _ = reply.send(Answer::Busy);
                }
            }
        }
        Err(e) => {
            let message = e.to_string();
            for reply in replies {
                let _ = reply.send(Answer::Unavailable(message.clone()));
            }
        }
    };
    if !forms.is_empty() {
        answer(engine.ingest(forms), form_replies);
    }
    if !recaps.is_empty() {
        answer(engine.ingest_recaps(recaps), recap_replies);
    }
    // After the forms of the same batch: a copy is compared with whatever official result is there.
    if !copies.is_empty() {
        answer(engine.ingest_copies(copies), copy_replies);
    }
    if !reports.is_empty() {
        answer(engine.ingest_reports(reports), report_replies);
    }
    // Statements are rare (registry changes, witness policies): one commit each, after the forms
    // of the same batch.
    for (bytes, reply) in statements {
        match engine.submit_statement(&bytes) {
            Ok(index) => {
                let rulebook = engine
                    .shared()
                    .state
                    .read()
                    .expect("not poisoned")
                    .rulebook()
                    .unwrap_or(rules::Rulebook::CURRENT);
                let verdict = saksi_recap::entry::RecordedVerdict::from_verdict(
                    &rules::Verdict::default(),
                    rulebook,
                );
                let outcome = IngestOutcome::Logged {
                    index,
                    verdict,
                    duplicate: false,
                };
                answer(Ok(vec![outcome]), vec![reply]);
            }
            Err(saksi_recap::EngineError::Statement(detail)) => {
                let refused = IngestOutcome::Refused {
                    code: "STATEMENT_REFUSED",
                    detail,
                };
                let _ = reply.send(Answer::Ingested(refused, None));
            }
            Err(e) => answer(Err(e), vec![reply]),
        }
    }
}

/// A committed batch's outcomes, on their way to the receipt thread.
struct Committed {
    outcomes: Vec<IngestOutcome>,
    replies: Vec<oneshot::Sender<Answer>>,
}

/// Builds the receipts of each committed batch in one pass over the tiles and answers its handlers.
/// Under a witness policy it first waits (at most RECEIPT_WAIT) for the batch's checkpoint to be
/// cosigned and published; entries still unpublished then are answered WITNESS_PENDING.
fn build_receipts(shared: &Shared, committed: Receiver<Committed>) {
    while let Ok(Committed { outcomes, replies }) = committed.recv() {
        let needed = outcomes
            .iter()
            .filter_map(|o| match o {
                IngestOutcome::Logged { index, .. } => Some(index + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let published = shared.wait_published(needed, RECEIPT_WAIT).checkpoint.size;
        let wanted: Vec<u64> = outcomes
            .iter()
            .filter_map(|o| match o {
                IngestOutcome::Logged { index, .. } if *index < published => Some(*index),
                _ => None,
            })
            .collect();
        let mut built = shared.receipts(&wanted).into_iter();
        for (outcome, reply) in outcomes.into_iter().zip(replies) {
            let receipt = match &outcome {
                IngestOutcome::Logged { index, .. } if *index < published => {
                    built.next().and_then(|r| r.ok()).map(|r| r.encode())
                }
                _ => None,
            };
            let _ = reply.send(Answer::Ingested(outcome, receipt));
        }
    }
}
