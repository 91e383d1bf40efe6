//! The HTTP face of saksi: a versioned JSON API (described by `openapi.json`) and the log itself,
//! served read-only in the C2SP tlog-tiles layout under `/log/`. This module is the only place that
//! knows the API's JSON shapes and status codes.
//!
//! A submission goes: decode (400) -> signature, verified in batches with other requests on a pool of
//! threads (401), which hands good forms straight on to -> the engine's single writer: enrolment (403), rulebook, history, group commit to the
//! log -> a receipt (c2sp.org/tlog-proof) proving the entry is in the published checkpoint (201; 200
//! for an identical resubmission, which returns the original entry).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use saksi_election::code::{Code, Level};
use saksi_election::form::{SignedForm, MAX_FORM_BYTES};
use saksi_election::rules;
use saksi_election::sign::{self, BatchItem};
use saksi_recap::engine::{Engine, IngestOutcome, Shared};
use saksi_recap::state::Tally;
use saksi_tlog::tile::Tile;

mod conn;
mod ratelimit;
mod views;

use views::{DerivedView, PageCache};

pub use conn::{load_tls, ConnectionLimits};
pub use ratelimit::RateLimiter;

pub const OPENAPI: &str = include_str!("openapi.json");

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
/// How long the writer waits for more forms before it brings the log's `checkpoint` file up to date
/// (under load the engine does it every `PUBLISH_INTERVAL`). Writing it with every batch cost two of
/// the eight fsyncs a batch needs: 8,320 submissions/s at 64 clients with it, 9,320/s without (six
/// runs each, `saksi bench submit`). The API and `/log/checkpoint` are never late.
const IDLE_BEFORE_PUBLISHING: Duration = Duration::from_millis(20);
/// How often a lingering writer looks again for forms that finished their signature check.
const INGEST_POLL: Duration = Duration::from_micros(100);
/// How often an idle writer looks whether a running witness round finished.
const PUBLICATION_POLL: Duration = Duration::from_millis(1);
/// How long a submission's receipt waits for its checkpoint to be cosigned: the witnesses' own
/// deadline and a little more, within the request deadline.
const RECEIPT_WAIT: Duration = Duration::from_secs(5);

/// A TPS form on its way to the writer. The verifier forwards it there itself and the receipt thread
/// answers, so a submission crosses threads four times (handler -> verifier -> writer -> receipts ->
/// handler), three of them in batches, and never goes back through the HTTP runtime in between.
struct SignatureJob {
    form: SignedForm,
    reply: oneshot::Sender<Answer>,
}

struct IngestJob {
    form: Submission,
    reply: oneshot::Sender<Answer>,
}

/// What a submission's handler hears back.
enum Answer {
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
enum Submission {
    Tps(SignedForm),
    Recap(saksi_election::recap::SignedRecap),
    /// A statement the authority signed offline (registry change, witness policy), as sent.
    Statement(Vec<u8>),
}

#[derive(Clone)]
pub struct App {
    shared: Arc<Shared>,
    signatures: SyncSender<SignatureJob>,
    ingest: SyncSender<IngestJob>,
    /// Forms accepted by a handler whose signature check has not finished: the writer waits for them
    /// (up to INGEST_LINGER) so that they join the commit it is about to make instead of the next.
    verifying: Arc<AtomicUsize>,
    limits: Arc<Limits>,
    limiter: Arc<RateLimiter>,
    pages: Arc<PageCache>,
    discrepancies: Arc<DerivedView>,
}

/// Bounds on what one client can ask of the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Requests per second per client address, sustained (a token bucket); 0 for none. 50/s is far
    /// more than a person or a polling witness needs, and keeps one address from taking a large
    /// share of a server that answers ~10,000 submissions/s.
    pub requests_per_second: u32,
    /// Requests one address may make at once before the rate applies (a page and its assets).
    pub burst: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see `ratelimit::client_address`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A request (reading its body included) that takes longer is answered 408: a client that sends
    /// slowly cannot hold a connection and its memory indefinitely.
    pub request_timeout: Duration,
    pub connections: ConnectionLimits,
    /// Serve HTTPS with this configuration (see `conn::load_tls`) instead of plain HTTP.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_second: 50,
            burst: 100,
            trusted_proxies: Vec::new(),
            request_timeout: Duration::from_secs(10),
            connections: ConnectionLimits::default(),
            tls: None,
        }
    }
}

/// Starts the signature pool and the writer thread around `engine`.
pub fn app(engine: Engine) -> App {
    app_with_limits(engine, Limits::default())
}

pub fn app_with_limits(engine: Engine, limits: Limits) -> App {
    let shared = engine.shared();
    let verifying = Arc::new(AtomicUsize::new(0));
    let (ingest, ingest_jobs) = mpsc::sync_channel::<IngestJob>(QUEUE_CAPACITY);
    let (signatures, signature_jobs) = mpsc::sync_channel::<SignatureJob>(QUEUE_CAPACITY);
    let signature_jobs = Arc::new(std::sync::Mutex::new(signature_jobs));
    for i in 0..signature_workers() {
        let (jobs, ingest, verifying) = (signature_jobs.clone(), ingest.clone(), verifying.clone());
        std::thread::Builder::new()
            .name(format!("saksi-verify-{i}"))
            .spawn(move || verify_signatures(jobs, ingest, verifying))
            .expect("spawning a verifier thread");
    }
    let writer_verifying = verifying.clone();
    let (receipts, committed) = mpsc::sync_channel::<Committed>(RECEIPT_QUEUE_BATCHES);
    let receipt_shared = shared.clone();
    std::thread::Builder::new()
        .name("saksi-receipts".into())
        .spawn(move || build_receipts(&receipt_shared, committed))
        .expect("spawning the receipt thread");
    std::thread::Builder::new()
        .name("saksi-writer".into())
        .spawn(move || write_forms(engine, ingest_jobs, writer_verifying, receipts))
        .expect("spawning the writer");
    App {
        shared,
        signatures,
        ingest,
        verifying,
        limiter: Arc::new(RateLimiter::new(limits.requests_per_second, limits.burst)),
        limits: Arc::new(limits),
        pages: Arc::new(PageCache::default()),
        discrepancies: Arc::new(DerivedView::default()),
    }
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
        let messages: Vec<Vec<u8>> = batch.iter().map(|j| j.form.form.signed_message()).collect();
        let items: Vec<BatchItem> = batch
            .iter()
            .zip(&messages)
            .map(|(j, m)| j.form.batch_item(m))
            .collect();
        let verdicts = sign::verify_batch(&items);
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

/// The single writer: group-commits whatever is waiting, lingering briefly only while more forms
/// are still in their signature check (when none are, waiting would only add latency).
fn write_forms(
    mut engine: Engine,
    jobs: Receiver<IngestJob>,
    verifying: Arc<AtomicUsize>,
    receipts: SyncSender<Committed>,
) {
    // An engine that has just ingested (the demo's, after its import) may hold the file back.
    let _ = engine.publish_lagging();
    // A job taken while looking whether the writer is idle; it starts the next batch.
    let mut carried: Option<IngestJob> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
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
        let (mut forms, mut form_replies, mut recaps, mut recap_replies) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
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
                Submission::Statement(bytes) => statements.push((bytes, job.reply)),
            }
        }
        let answer = |result: Result<Vec<IngestOutcome>, saksi_recap::EngineError>,
                      replies: Vec<oneshot::Sender<Answer>>| match result {
            Ok(outcomes) => {
                // Receipts are built off the writer's path, which moves on to the next batch.
                if let Err(mpsc::SendError(batch)) = receipts.send(Committed { outcomes, replies })
                {
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
        // Take up a witness round that finished (never waits for one): receipts waiting for its
        // checkpoint go out. While a round runs, look again every PUBLICATION_POLL when idle.
        let mut round_running = engine.poll_publication();
        loop {
            let wait = if round_running {
                PUBLICATION_POLL
            } else {
                IDLE_BEFORE_PUBLISHING
            };
            match jobs.recv_timeout(wait) {
                Ok(job) => {
                    carried = Some(job);
                    break;
                }
                Err(RecvTimeoutError::Timeout) if round_running => {
                    round_running = engine.poll_publication();
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Idle: bring the log's `checkpoint` file up to date (the engine does it every
                    // PUBLISH_INTERVAL under load). A failure poisons the engine, and the next
                    // submission is told.
                    let _ = engine.publish_lagging();
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = engine.publish_lagging();
                    return;
                }
            }
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

pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/api/v1/forms", post(submit))
        .route("/api/v1/recaps", post(submit_recap))
        .route("/api/v1/statements", post(submit_statement))
        .route("/api/v1/discrepancies", get(discrepancies))
        .route("/api/v1/regions", get(national))
        .route("/api/v1/regions/{code}", get(region))
        .route("/api/v1/tps/{code}", get(tps))
        .route("/api/v1/receipts/{index}", get(receipt))
        .route("/api/v1/entries/{index}", get(entry))
        .route("/api/v1/log", get(log_info))
        .route("/api/v1/rulebook", get(rulebook))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/log/{*path}", get(log_file))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such resource",
        "sumber tidak ditemukan",
        None,
    )
}

/// Every error answer has the documented JSON shape, including those axum makes itself (413 from
/// the body limit, 405 from the method router, 400 from a path that does not parse), which are
/// plain text. Answers that are already JSON, and the log's own text files, pass unchanged.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let (parts, body) = response.into_parts();
    // axum's rejection texts are short; read a bounded amount as the detail.
    let detail = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|d| !d.is_empty());
    let (code, en, id) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "TOO_LARGE",
            "the request body is too large",
            "isi permintaan terlalu besar",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "METHOD_NOT_ALLOWED",
            "this method is not allowed here",
            "metode ini tidak diizinkan di sini",
        ),
        StatusCode::NOT_FOUND => ("NOT_FOUND", "no such resource", "sumber tidak ditemukan"),
        StatusCode::REQUEST_TIMEOUT => (
            "TIMEOUT",
            "the request took too long",
            "permintaan terlalu lama",
        ),
        s if s.is_client_error() => (
            "MALFORMED",
            "the request is not valid",
            "permintaan tidak sah",
        ),
        _ => ("INTERNAL", "the server failed", "server gagal"),
    };
    let mut answer = error(status, code, en, id, detail);
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    if let Some(retry_after) = retry_after {
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after);
    }
    answer
}

/// Rate limit per client address, then a deadline on the whole request.
async fn guard(
    State(app): State<App>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let client = ratelimit::client_address(peer.ip(), forwarded, &app.limits.trusted_proxies);
    if let Err(wait) = app.limiter.check(client, Instant::now()) {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "too many requests from this address",
            "terlalu banyak permintaan dari alamat ini",
            None,
        );
        let seconds = wait.as_secs().max(1).to_string();
        if let Ok(value) = HeaderValue::from_str(&seconds) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    match tokio::time::timeout(app.limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            "TIMEOUT",
            "the request took too long",
            "permintaan terlalu lama",
            None,
        ),
    }
}

/// Serves until the process is told to stop (SIGINT or SIGTERM), under the app's connection limits
/// (see `conn`).
pub async fn serve(
    app: App,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    ready(listener.local_addr()?);
    let mut limits = app.limits.connections;
    limits.max_connections = conn::fit_to_descriptor_limit(limits.max_connections);
    let tls = app.limits.tls.clone();
    conn::serve(listener, router(app), limits, tls, shutdown()).await
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

/// An API error: a stable code, a message in English and Indonesian.
fn error(status: StatusCode, code: &str, en: &str, id: &str, detail: Option<String>) -> Response {
    let mut body = json!({"error": {"code": code, "message": en, "message_id": id}});
    if let Some(detail) = detail {
        body["error"]["detail"] = Value::String(detail);
    }
    (status, Json(body)).into_response()
}

fn checkpoint_json(shared: &Shared) -> Value {
    let published = shared.published();
    json!({"size": published.checkpoint.size, "root": published.checkpoint.root.to_base64()})
}

fn rule_messages(codes: &[String]) -> Value {
    Value::Array(
        codes
            .iter()
            .map(|code| match rules::rule(code) {
                Some(rule) => json!({"code": code, "en": rule.en, "id": rule.id}),
                None => json!({"code": code}),
            })
            .collect(),
    )
}

async fn index() -> Json<Value> {
    Json(json!({
        "service": "saksi",
        "api": "/api/v1/openapi.json",
        "log": "/log/checkpoint",
        "national": "/api/v1/regions",
    }))
}

async fn submit(State(app): State<App>, body: Bytes) -> Response {
    let form = match SignedForm::decode(&body) {
        Ok(form) => form,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "MALFORMED",
                "the form is not valid JSON for saksi/c-hasil/v1",
                "formulir tidak sesuai format",
                Some(e.to_string()),
            )
        }
    };
    let (reply, answer) = oneshot::channel();
    app.verifying.fetch_add(1, Ordering::AcqRel);
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
        app.signatures.try_send(SignatureJob { form, reply })
    {
        app.verifying.fetch_sub(1, Ordering::AcqRel);
        return busy();
    }
    respond(&app, answer).await
}

/// Submitting a recapitulation form (D.Hasil): same answers as a TPS form.
async fn submit_recap(State(app): State<App>, body: Bytes) -> Response {
    let form = match saksi_election::recap::SignedRecap::decode(&body) {
        Ok(form) => form,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "MALFORMED",
                "not a valid saksi/d-hasil/v1 form",
                "formulir rekapitulasi tidak sesuai format",
                Some(e.to_string()),
            )
        }
    };
    let form =
        match tokio::task::spawn_blocking(move || form.signature_valid().then_some(form)).await {
            Ok(Some(form)) => form,
            Ok(None) => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "SIGNATURE_INVALID",
                    "the form's signature is not valid",
                    "tanda tangan formulir tidak sah",
                    None,
                )
            }
            Err(_) => return busy(),
        };
    let (reply, answer) = oneshot::channel();
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
        app.ingest.try_send(IngestJob {
            form: Submission::Recap(form),
            reply,
        })
    {
        return busy();
    }
    respond(&app, answer).await
}

/// Logging a statement the authority signed offline: checked and committed by the writer (403
/// STATEMENT_REFUSED when it is not the authority's or does not apply), answered like a form.
async fn submit_statement(State(app): State<App>, body: Bytes) -> Response {
    let (reply, answer) = oneshot::channel();
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
        app.ingest.try_send(IngestJob {
            form: Submission::Statement(body.to_vec()),
            reply,
        })
    {
        return busy();
    }
    respond(&app, answer).await
}

async fn respond(app: &App, answer: oneshot::Receiver<Answer>) -> Response {
    let (outcome, receipt) = match answer.await {
        Ok(Answer::Ingested(outcome, receipt)) => (outcome, receipt),
        Ok(Answer::SignatureInvalid) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "SIGNATURE_INVALID",
                "the form's signature is not valid",
                "tanda tangan formulir tidak sah",
                None,
            )
        }
        Ok(Answer::Unavailable(message)) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the log cannot accept writes",
                "log tidak dapat menerima data",
                Some(message),
            )
        }
        Ok(Answer::Busy) | Err(_) => return busy(),
    };
    match outcome {
        IngestOutcome::Refused { code, detail } => {
            let (en, id) = rules::rule(code)
                .map(|r| (r.en, r.id))
                .unwrap_or(("refused", "ditolak"));
            error(StatusCode::FORBIDDEN, code, en, id, Some(detail))
        }
        IngestOutcome::Logged {
            index,
            verdict,
            duplicate,
        } => {
            if receipt.is_none() && index >= app.shared.published().checkpoint.size {
                // Durable in the log, but the witness policy has not let its checkpoint be published.
                let detail = format!("logged at index {index}; the receipt follows once witnesses cosign its checkpoint");
                let mut response = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "WITNESS_PENDING",
                    "recorded, but not yet cosigned by enough witnesses to be published",
                    "tercatat, tetapi belum ditandatangani cukup saksi independen untuk diterbitkan",
                    Some(detail),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return response;
            }
            // None here: its checkpoint was published after the receipt thread looked; build it now.
            let receipt = match receipt {
                Some(text) => Ok(text),
                None => {
                    let shared = app.shared.clone();
                    tokio::task::spawn_blocking(move || shared.receipt(index).map(|r| r.encode()))
                        .await
                        .map_err(|_| ())
                        .and_then(|r| r.map_err(|_| ()))
                }
            };
            let receipt = match receipt {
                Ok(text) => text,
                Err(()) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "RECEIPT",
                        "could not build the receipt",
                        "tanda terima gagal dibuat",
                        None,
                    )
                }
            };
            let status = if duplicate {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let body = json!({
                "index": index,
                "duplicate": duplicate,
                "accepted": verdict.accepted,
                "rejected_by": rule_messages(&verdict.rejected_by),
                "warnings": rule_messages(&verdict.warnings),
                "rulebook": &*verdict.rulebook,
                "checkpoint": checkpoint_json(&app.shared),
                "receipt": receipt,
            });
            (status, Json(body)).into_response()
        }
    }
}

fn busy() -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "BUSY",
        "too many submissions waiting; retry shortly",
        "antrean penuh; coba lagi sebentar lagi",
        None,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn tally_json(tally: &Tally, positions: &[String]) -> Value {
    let votes: serde_json::Map<String, Value> = positions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                p.clone(),
                Value::from(tally.votes.get(i).copied().unwrap_or(0)),
            )
        })
        .collect();
    json!({
        "votes": votes,
        "valid": tally.valid,
        "invalid": tally.invalid,
        "voters": tally.voters,
        "dpt": tally.dpt,
        "tps_reported": tally.tps_reported,
        "tps_total": tally.tps_total,
        "rejected_entries": tally.rejected_entries,
        // Counted TPS that did not report a figure (published rows only): not in that figure's sum.
        "unreported": {
            "votes": tally.unreported.votes,
            "valid": tally.unreported.valid,
            "invalid": tally.unreported.invalid,
            "voters": tally.unreported.voters,
        },
    })
}

fn positions(state: &saksi_recap::State) -> Vec<String> {
    state
        .election()
        .and_then(|e| e.contests.first())
        .map(|c| c.candidates.iter().map(|p| p.number.clone()).collect())
        .unwrap_or_default()
}

/// Serves a region page from the cache when it was built at the current (state size, published size),
/// else builds and keeps it: between commits every request for a page is a lookup.
async fn cached(app: &App, key: String, build: impl FnOnce() -> Response) -> Response {
    let version = (
        app.shared.state.read().expect("not poisoned").size,
        app.shared.published().checkpoint.size,
    );
    if let Some(body) = app.pages.get(&key, version) {
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let response = build();
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    app.pages.put(key, version, bytes.clone());
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

async fn national(State(app): State<App>) -> Response {
    let page = app.clone();
    cached(&app, String::new(), move || national_page(&page)).await
}

async fn region(State(app): State<App>, Path(code): Path<String>) -> Response {
    let page = app.clone();
    cached(&app, code.clone(), move || region_page(&page, code)).await
}

fn national_page(app: &App) -> Response {
    let state = app.shared.state.read().expect("not poisoned");
    let positions = positions(&state);
    let children: Vec<Value> = state
        .provinces()
        .iter()
        .map(|code| {
            json!({
                "code": code.as_str(),
                "name": state.registry.region_name(*code),
                "tally": tally_json(state.tally(*code).unwrap_or(&Tally::default()), &positions),
            })
        })
        .collect();
    Json(json!({
        "code": null,
        "name": "Nasional",
        "level": "nasional",
        "tally": tally_json(state.national(), &positions),
        "children": children,
        "checkpoint": checkpoint_json(&app.shared),
        "log_size": state.size,
    }))
    .into_response()
}

fn region_page(app: &App, code: String) -> Response {
    let Ok(code) = Code::parse(&code) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_CODE",
            "not a region code",
            "kode wilayah tidak sah",
            None,
        );
    };
    if code.level() == Level::Tps {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_CODE",
            "a TPS code: use /api/v1/tps/{code}",
            "kode TPS: gunakan /api/v1/tps/{code}",
            None,
        );
    }
    let state = app.shared.state.read().expect("not poisoned");
    let (Some(name), Some(tally)) = (state.registry.region_name(code), state.tally(code)) else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such region",
            "wilayah tidak ditemukan",
            None,
        );
    };
    let positions = positions(&state);
    let children: Vec<Value> = state
        .children(code)
        .iter()
        .map(|child| {
            if child.level() == Level::Tps {
                let record = state.tps_record(*child);
                let kind = state.registry.tps(*child).map(|t| t.kind.as_str());
                json!({
                    "code": child.as_str(),
                    "kind": kind,
                    "current": record.and_then(|r| r.current),
                    "counts": record.and_then(|r| r.counts.as_ref()).map(|c| {
                        let votes: serde_json::Map<String, Value> =
                            positions.iter().cloned().zip(c.votes.iter().map(|v| Value::from(*v))).collect();
                        json!({"votes": votes, "valid": c.valid, "invalid": c.invalid, "voters": c.voters})
                    }),
                    "entries": record.map_or(0, |r| r.history.len()),
                })
            } else {
                json!({
                    "code": child.as_str(),
                    "name": state.registry.region_name(*child),
                    "tally": tally_json(state.tally(*child).unwrap_or(&Tally::default()), &positions),
                })
            }
        })
        .collect();
    let recap_level = saksi_election::recap::RecapLevel::of_region(Some(code));
    let recap_discrepancies: Vec<Value> = recap_level
        .map(|level| {
            saksi_recap::inflation::discrepancies_of(&state, level, Some(code))
                .iter()
                .map(saksi_recap::inflation::discrepancy_json)
                .collect()
        })
        .unwrap_or_default();
    Json(json!({
        "code": code.as_str(),
        "name": name,
        "level": code.level().as_str(),
        "recap": recap_level.map(|level| json!({
            "current": state.recaps.get(&(level, Some(code))).and_then(|r| r.current.as_ref()).map(|(i, _)| *i),
            "versions": state.recaps.get(&(level, Some(code))).map_or(0, |r| r.history.len()),
            "discrepancies": recap_discrepancies,
        })),
        "parent": code.parent().map(|p| p.to_string()),
        "tally": tally_json(tally, &positions),
        "children": children,
        "checkpoint": checkpoint_json(&app.shared),
        "log_size": state.size,
    }))
    .into_response()
}

async fn tps(State(app): State<App>, Path(code): Path<String>) -> Response {
    let Ok(code) = Code::parse(&code) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_CODE",
            "not a TPS code",
            "kode TPS tidak sah",
            None,
        );
    };
    let (registry_entry, history, current) = {
        let state = app.shared.state.read().expect("not poisoned");
        let Some(entry) = state.registry.tps(code).cloned() else {
            return error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such TPS",
                "TPS tidak ditemukan",
                None,
            );
        };
        let record = state.tps_record(code).cloned().unwrap_or_default();
        (entry, record.history, record.current)
    };
    let shared = app.shared.clone();
    let current_entry = match current {
        Some(index) => tokio::task::spawn_blocking(move || shared.entry(index))
            .await
            .ok()
            .and_then(Result::ok),
        None => None,
    };
    let current_json = current_entry.and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let evidence = current_json
        .as_ref()
        .and_then(|e| e["form"]["evidence"].as_array().cloned());
    Json(json!({
        "code": code.as_str(),
        "kind": registry_entry.kind.as_str(),
        "dpt": registry_entry.dpt.map(|d| json!({"l": d.l, "p": d.p, "j": d.total()})),
        "officers": registry_entry.officers.iter().map(|k| k.to_base64()).collect::<Vec<_>>(),
        "current": current.map(|index| json!({"index": index, "entry": current_json, "evidence": evidence})),
        "history": history.iter().map(|h| json!({
            "index": h.index,
            "source": h.source.as_str(),
            "accepted": h.verdict.accepted,
            "rejected_by": rule_messages(&h.verdict.rejected_by),
            "warnings": h.verdict.warnings,
            "rulebook": &*h.verdict.rulebook,
        })).collect::<Vec<_>>(),
        "checkpoint": checkpoint_json(&app.shared),
    }))
    .into_response()
}

async fn receipt(State(app): State<App>, Path(index): Path<u64>) -> Response {
    let shared = app.shared.clone();
    match tokio::task::spawn_blocking(move || shared.receipt(index)).await {
        Ok(Ok(proof)) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            proof.encode(),
        )
            .into_response(),
        _ => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such entry",
            "entri tidak ditemukan",
            None,
        ),
    }
}

async fn entry(State(app): State<App>, Path(index): Path<u64>) -> Response {
    let shared = app.shared.clone();
    match tokio::task::spawn_blocking(move || shared.entry(index)).await {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        _ => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such entry",
            "entri tidak ditemukan",
            None,
        ),
    }
}

async fn log_info(State(app): State<App>) -> Response {
    let published = app.shared.published();
    Json(json!({
        "origin": published.checkpoint.origin,
        "vkey": app.shared.vkey,
        "checkpoint": {"size": published.checkpoint.size, "root": published.checkpoint.root.to_base64(), "note": published.note},
        "tiles": "/log/",
        "witnesses": app.shared.state.read().expect("not poisoned").witness_policy.as_ref().map(|p| json!({
            "quorum": p.quorum,
            "witnesses": p.witnesses.iter().map(|(vkey, url)| json!({"vkey": vkey, "url": url})).collect::<Vec<_>>(),
        })),
    }))
    .into_response()
}

#[derive(Default)]
struct DiscrepancyFilter {
    level: Option<String>,
    region: Option<String>,
}

fn parse_query(query: Option<&str>) -> DiscrepancyFilter {
    let mut filter = DiscrepancyFilter::default();
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("level", v)) => filter.level = Some(v.to_string()),
            Some(("region", v)) => filter.region = Some(v.to_string()),
            _ => {}
        }
    }
    filter
}

/// Every discrepancy between a recap figure and what is below it, largest first; `?level=` and
/// `?region=` (a region code: its own forms and those of regions under it) filter. Served from a view
/// rebuilt at most every DISCREPANCY_REFRESH, off the request path; the answer names the log size and
/// checkpoint the view was built from.
async fn discrepancies(State(app): State<App>, uri: axum::http::Uri) -> Response {
    let filter = parse_query(uri.query());
    let log_size = app.shared.state.read().expect("not poisoned").size;
    let view = match app.discrepancies.plan(log_size, Instant::now()) {
        views::Plan::Serve(view) => view,
        views::Plan::Build(stale) => {
            let (shared, views) = (app.shared.clone(), app.discrepancies.clone());
            let build = tokio::task::spawn_blocking(move || {
                let built = Arc::new(build_discrepancies(&shared));
                views.store(built.clone(), Instant::now());
                built
            });
            match stale {
                // Someone is served now; the build finishes in the background.
                Some(stale) => stale,
                None => match build.await {
                    Ok(built) => built,
                    Err(_) => {
                        app.discrepancies.abandon();
                        return error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "INTERNAL",
                            "the server failed",
                            "server gagal",
                            None,
                        );
                    }
                },
            }
        }
    };
    let items: Vec<&Value> = view
        .items
        .iter()
        .filter(|(level, _, _)| filter.level.as_deref().is_none_or(|l| l == *level))
        .filter(|(_, region, _)| match &filter.region {
            None => true,
            Some(r) if r == "nasional" => region.is_empty(),
            Some(r) => !region.is_empty() && region.starts_with(r.as_str()),
        })
        .map(|(_, _, item)| item)
        .collect();
    Json(json!({
        "discrepancies": items,
        "coverage_gaps": view.coverage_gaps,
        "left_out": view.truncated,
        "checkpoint": view.checkpoint,
        "log_size": view.log_size,
    }))
    .into_response()
}

fn build_discrepancies(shared: &Shared) -> views::Discrepancies {
    let state = shared.state.read().expect("not poisoned");
    let checkpoint = checkpoint_json(shared);
    let (found, coverage) = saksi_recap::inflation::discrepancies(&state);
    let mut items: Vec<(&'static str, String, Value)> = found
        .iter()
        .map(|d| {
            (
                d.level.as_str(),
                d.region.map(|c| c.to_string()).unwrap_or_default(),
                saksi_recap::inflation::discrepancy_json(d),
            )
        })
        .collect();
    let truncated = views::bound_items(&mut items);
    views::Discrepancies {
        log_size: state.size,
        checkpoint,
        items,
        coverage_gaps: coverage.len(),
        truncated,
    }
}

async fn rulebook() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        rules::rulebook_json(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Serves a file of the log directory, if the published checkpoint covers it.
async fn log_file(State(app): State<App>, Path(path): Path<String>) -> Response {
    let size = app.shared.published().checkpoint.size;
    let (allowed, immutable, text) = if path == "checkpoint" {
        (true, false, true)
    } else if let Some(n) = path.strip_prefix("checkpoints/") {
        (
            n.parse::<u64>()
                .is_ok_and(|v| v <= size && v.to_string() == n),
            true,
            true,
        )
    } else {
        match Tile::parse(&path) {
            Ok(tile) => (tile.covered_by(size), true, false),
            Err(_) => (false, true, false),
        }
    };
    if !allowed {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "not in the published log",
            "tidak ada dalam log yang diterbitkan",
            None,
        );
    }
    // The checkpoint comes from memory: the latest durable one, the one every API answer names (the
    // file on disk may trail it by up to PUBLISH_INTERVAL, see Engine::publish_lagging).
    let storage = app.shared.storage.clone();
    let read = if path == "checkpoint" {
        Ok(Ok(Some(app.shared.published().note.clone().into_bytes())))
    } else {
        tokio::task::spawn_blocking(move || storage.read(&path)).await
    };
    let bytes = match read {
        Ok(Ok(Some(bytes))) => bytes,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "not found",
                "tidak ditemukan",
                None,
            )
        }
    };
    let content_type = if text {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    // Full and partial tiles never change once published: let CDNs keep them. The checkpoint does.
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=2"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response()
}

/// A tlog-witness over HTTP: `POST /add-checkpoint` (c2sp.org/tlog-witness).
pub async fn serve_witness(
    witness: Arc<saksi_tlog::witness::Witness>,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(
            saksi_tlog::witness::MAX_REQUEST_BYTES,
        ))
        .with_state(witness);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    ready(listener.local_addr()?);
    let mut limits = ConnectionLimits::default();
    limits.max_connections = conn::fit_to_descriptor_limit(limits.max_connections);
    conn::serve(listener, router, limits, None, shutdown()).await
}

async fn add_checkpoint(
    State(witness): State<Arc<saksi_tlog::witness::Witness>>,
    body: Bytes,
) -> Response {
    let result = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body)).await;
    match result {
        Ok(Ok(lines)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], lines).into_response()
        }
        Ok(Err(refusal)) => {
            let status =
                StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match refusal.latest_size {
                Some(size) => (
                    status,
                    [(header::CONTENT_TYPE, "text/x.tlog.size")],
                    format!("{size}\n"),
                )
                    .into_response(),
                None => (
                    status,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    format!("{}\n", refusal.message),
                )
                    .into_response(),
            }
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
