//! The HTTP face of saksi: a versioned JSON API (described by `openapi.json`) and the log itself,
//! served read-only in the C2SP tlog-tiles layout under `/log/`. This crate is the only place that
//! knows the API's JSON shapes and status codes. This file is the wiring: the app's parts, the routes,
//! the guard every request passes, and serving. The rooms:
//! - `pipeline`: the signature, writer and receipt threads a submission crosses, and their protocol;
//! - `submit`: the submission handlers and their answers;
//! - `pages`: region, TPS, log and discrepancy pages (and the API's JSON for them);
//! - `log_files`: `/log/` files the published checkpoint covers;
//! - `api_error`: the table of every error answer;
//! - `conn`, `ratelimit`, `views`: connections, per-client rates, bounded derived views;
//! - `witness_server`: the C2SP tlog-witness endpoint of `saksi witness`;
//! - `relay`: the report intake of `saksi relay`, an independent relay with its own log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use saksi_election::form::MAX_FORM_BYTES;
use saksi_election::recap::MAX_RECAP_BYTES;
use saksi_recap::engine::MAX_STATEMENT_BYTES;
use saksi_recap::engine::{Engine, Shared};

mod api_error;
mod conn;
mod copies;
mod evidence;
pub mod flags;
mod log_files;
mod metrics;
mod pages;
mod pipeline;
mod ratelimit;
mod relay;
mod reports;
mod site;
mod submit;
mod views;
mod witness_server;

use api_error::ApiError;
use views::{DerivedView, PageCache};

pub use conn::{load_tls, ConnectionLimits};
pub use pages::discrepancy_json;
pub use ratelimit::RateLimiter;
pub use relay::serve_relay;
pub use witness_server::serve_witness;

pub const OPENAPI: &str = include_str!("openapi.json");

#[derive(Clone)]
pub struct App {
    shared: Arc<Shared>,
    /// The signature, writer and receipt threads (see `pipeline`).
    pipeline: pipeline::Pipeline,
    limits: Arc<Limits>,
    limiter: Arc<RateLimiter>,
    /// Photo uploads per address, beside `limiter` (a photo costs ~1,000 forms of disk).
    photo_limiter: Arc<RateLimiter>,
    pages: Arc<PageCache>,
    discrepancies: Arc<DerivedView>,
    /// The site's search over region names.
    search: Arc<site::SearchIndex>,
    /// The site's turnout histograms, per region.
    turnout: Arc<site::TurnoutCache>,
    /// Reports per reporter key, at the rate the logged intake setting names.
    reporters: Arc<ratelimit::HourlyAllowance>,
    /// Reports filed without script (signed by the server), per client address, at the same rate.
    form_reporters: Arc<ratelimit::HourlyAllowance>,
    /// Forensic flags, rescored by a background thread as the state grows (`flags`).
    flags: Arc<flags::FlagsView>,
    /// What `/metrics` reports (`metrics`).
    metrics: Arc<metrics::Metrics>,
}

impl App {
    /// Takes a report from `reporter`'s hourly allowance; `Err(wait)` when it has none.
    fn reporter_limit(
        &self,
        reporter: &saksi_election::sign::PublicKey,
        intake: &saksi_recap::entry::IntakeSetting,
    ) -> Result<(), Duration> {
        // The limiter's buckets are by address; a key takes the bucket of an IPv6 /64 named by
        // its first 8 bytes (distinct keys share one with probability 2^-64, and a clash would
        // only share an allowance). This allowance holds keys only, never client addresses.
        let mut octets = [0u8; 16];
        octets[..8].copy_from_slice(&reporter.0[..8]);
        self.reporters.check(
            intake.reports_per_key_per_hour,
            std::net::IpAddr::V6(std::net::Ipv6Addr::from(octets)),
        )
    }

    /// Takes a report filed without script (signed by the server) from `client`'s allowance:
    /// the per-key rate, per address.
    fn address_report_limit(
        &self,
        client: std::net::IpAddr,
        intake: &saksi_recap::entry::IntakeSetting,
    ) -> Result<(), Duration> {
        self.form_reporters
            .check(intake.reports_per_key_per_hour, client)
    }
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
    /// Evidence photos per second per client address, sustained; 0 for none. Two 8 MiB photos a
    /// second is 16 MiB/s from one address: a poll witness photographs a few pages, not a stream.
    pub photos_per_second: u32,
    pub photo_burst: u32,
    /// The share of time (percent) forensic rescoring may take while the log grows; 0: none
    /// (`flags`); see `flags::DEFAULT_DUTY_PERCENT` for the measured cost.
    pub forensics_duty_percent: u32,
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
            photos_per_second: 2,
            photo_burst: 8,
            forensics_duty_percent: flags::DEFAULT_DUTY_PERCENT,
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

pub fn app_with_limits(mut engine: Engine, limits: Limits) -> App {
    // The server answers at once; the signers' points fill in meanwhile (and on a takeover).
    engine.hold_key_points(saksi_recap::engine::KeyPointsFill::Background);
    let shared = engine.shared();
    let metrics = Arc::new(metrics::Metrics::new());
    let pipeline = pipeline::start(engine, metrics.clone());
    app_around(shared, pipeline, limits, metrics)
}

/// A read replica's app: every page, the API's reads and `/log/`, following the log copy; every
/// POST answered 503 (see `pipeline::start_replica`).
pub fn replica_app(replica: saksi_recap::replica::Replica, limits: Limits) -> App {
    let shared = replica.shared();
    let metrics = Arc::new(metrics::Metrics::new());
    let pipeline = pipeline::start_replica(replica, metrics.clone());
    app_around(shared, pipeline, limits, metrics)
}

fn app_around(
    shared: Arc<Shared>,
    pipeline: pipeline::Pipeline,
    limits: Limits,
    metrics: Arc<metrics::Metrics>,
) -> App {
    metrics.observe(&shared);
    let flags = Arc::new(flags::FlagsView::default());
    if limits.forensics_duty_percent > 0 {
        flags::start(&shared, &flags, limits.forensics_duty_percent);
    }
    App {
        flags,
        shared,
        pipeline,
        limiter: Arc::new(RateLimiter::new(limits.requests_per_second, limits.burst)),
        photo_limiter: Arc::new(RateLimiter::new(
            limits.photos_per_second,
            limits.photo_burst,
        )),
        limits: Arc::new(limits),
        pages: Arc::new(PageCache::default()),
        discrepancies: Arc::new(DerivedView::default()),
        search: Arc::new(site::SearchIndex::default()),
        turnout: Arc::new(site::TurnoutCache::default()),
        reporters: Arc::default(),
        form_reporters: Arc::default(),
        metrics,
    }
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(site::nation))
        .route("/wilayah/{code}", get(site::region))
        .route("/tps/{code}", get(site::tps))
        .route("/assets/{name}", get(site::asset))
        .route("/selisih", get(site::inflation))
        .route("/ditolak", get(site::rejections))
        .route("/koreksi", get(site::corrections))
        .route("/salinan", get(site::disagreements))
        .route("/cari", get(site::search))
        .route("/cara-memeriksa", get(site::how_to_verify))
        .route("/csv/nasional", get(site::nation_csv))
        .route("/csv/wilayah/{code}", get(site::region_csv))
        .route("/api/v1", get(pages::index))
        .route("/api/v1/forms", post(submit::submit))
        // Each submission route takes at most what its decoder takes (forms: the router-wide
        // limit below).
        .route(
            "/api/v1/copies",
            post(submit::submit_copy)
                .layer(DefaultBodyLimit::max(saksi_election::copy::MAX_COPY_BYTES)),
        )
        .route(
            "/api/v1/recaps",
            post(submit::submit_recap).layer(DefaultBodyLimit::max(MAX_RECAP_BYTES)),
        )
        .route(
            "/api/v1/statements",
            post(submit::submit_statement).layer(DefaultBodyLimit::max(MAX_STATEMENT_BYTES)),
        )
        .route(
            "/api/v1/reports",
            post(submit::submit_report)
                .layer(DefaultBodyLimit::max(
                    saksi_election::report::MAX_REPORT_BYTES,
                ))
                .get(reports::list),
        )
        .route("/api/v1/moderation", get(reports::summary))
        .route("/api/v1/intake", get(reports::intake))
        .route("/api/v1/contact-seal", post(reports::contact_seal))
        .route("/api/v1/report-texts/sha256/{hex}", get(reports::text))
        .route("/lapor", post(site::file_without_script))
        .route("/api/v1/discrepancies", get(pages::discrepancies))
        .route("/api/v1/disagreements", get(copies::disagreements))
        .route("/api/v1/flags", get(flags::flags))
        .route("/api/v1/regions", get(pages::national))
        .route("/api/v1/regions/{code}", get(pages::region))
        .route("/api/v1/tps/{code}", get(pages::tps))
        .route("/api/v1/receipts/{index}", get(pages::receipt))
        .route("/api/v1/entries/{index}", get(pages::entry))
        .route("/api/v1/log", get(pages::log_info))
        .route("/healthz", get(pages::healthz))
        .route("/readyz", get(pages::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/rulebook", get(pages::rulebook))
        .route("/api/v1/openapi.json", get(pages::openapi))
        .route("/log/{*path}", get(log_files::log_file))
        .route(
            "/api/v1/evidence",
            // Room for the largest photo; the store refuses one byte more with 413 and its own words.
            post(evidence::upload).layer(DefaultBodyLimit::max(
                saksi_recap::evidence::MAX_PHOTO_BYTES + 1,
            )),
        )
        .route("/evidence/sha256/{hex}", get(evidence::photo))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::map_response(api_error::json_errors))
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::record,
        ))
        .with_state(app)
}

async fn not_found() -> Response {
    ApiError::NotFound.response()
}

/// Rate limit per client address, then a deadline on the whole request.
async fn guard(
    State(app): State<App>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() == axum::http::Method::POST
        && app.shared.role() == saksi_recap::Role::Replica
    {
        return ApiError::Unavailable.with_detail(Some(pipeline::READ_ONLY.into()));
    }
    if let Some(refused) = admit(
        &app.limiter,
        &app.photo_limiter,
        &app.limits,
        peer,
        &request,
    ) {
        return refused;
    }
    match tokio::time::timeout(app.limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.response(),
    }
}

/// The per-address rate limits every request passes (and photo uploads a second, stricter one), on
/// the main server and on a relay: `Some` is the 429 answer.
pub(crate) fn admit(
    limiter: &RateLimiter,
    photo_limiter: &RateLimiter,
    limits: &Limits,
    peer: SocketAddr,
    request: &axum::extract::Request,
) -> Option<Response> {
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let client = ratelimit::client_address(peer.ip(), forwarded, &limits.trusted_proxies);
    let now = Instant::now();
    let photo =
        request.method() == axum::http::Method::POST && request.uri().path() == "/api/v1/evidence";
    limiter
        .check(client, now)
        .and_then(|()| {
            if photo {
                photo_limiter.check(client, now)
            } else {
                Ok(())
            }
        })
        .err()
        .map(|wait| ApiError::RateLimited.after(wait))
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
    let connections = app.metrics.connections.clone();
    conn::serve(listener, router(app), limits, tls, shutdown(), connections).await
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
