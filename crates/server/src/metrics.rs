//! Prometheus metrics at `/metrics`, in the text exposition format, and the one log line per
//! request. Only this file knows Prometheus; the engine reports its commits and witness rounds as
//! [`saksi_recap::Event`]s, and the pipeline and handlers call the counters here.
//!
//! Every label has a bounded set of values (route templates, status codes, rule codes, roles), so
//! no client can grow the series: a path that matches no route is counted as "unmatched".

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, State};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::App;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuorumLabels {
    quorum_met: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: &'static str,
}

/// What a submission came to, as counted in `saksi_submissions_total{outcome}`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    /// Logged and accepted by the rulebook.
    Accepted,
    /// Logged, and rejected by the rulebook (the rules in `saksi_rejections_total`).
    Rejected,
    /// Sent again: already in the log.
    Duplicate,
    /// Not logged: not authenticated for its TPS or region.
    Refused,
    SignatureInvalid,
    /// The log refused to write (standby, replica, full disk, lost compare-and-swap).
    Unavailable,
    /// A queue was full.
    Busy,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Duplicate => "duplicate",
            Outcome::Refused => "refused",
            Outcome::SignatureInvalid => "signature_invalid",
            Outcome::Unavailable => "unavailable",
            Outcome::Busy => "busy",
        }
    }
}

pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    submissions: Family<OutcomeLabels, Counter>,
    rejections: Family<RuleLabels, Counter>,
    commit_seconds: Histogram,
    commit_entries: Histogram,
    witness_round_seconds: Family<QuorumLabels, Histogram>,
    /// Submissions handed to the pipeline whose handler still waits for the answer: the queues,
    /// the commit and the receipt together.
    in_flight: Gauge,
    /// Forms in or waiting for their signature check (the pipeline's own count, read when scraped).
    signature_checks: Gauge,
    /// Open connections (the connection layer's count).
    pub(crate) connections: Gauge,
    /// Failures of the log's store as the writer or follower met them: refused writes (each alarm),
    /// failed takeovers and failed follows.
    store_errors: Counter,
    role: Family<RoleLabels, Gauge>,
    published_size: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("saksi");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        // 0.25 ms to ~8 s, doubling: a cached page to a request deadline.
        let request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from the request's arrival to its answer, by route template",
            request_seconds.clone(),
        );
        let submissions = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "submissions",
            "Submissions (forms, recaps, copies, reports, statements) by what they came to",
            submissions.clone(),
        );
        let rejections = Family::<RuleLabels, Counter>::default();
        registry.register(
            "rejections",
            "Rule violations of logged rejected submissions, by rule code",
            rejections.clone(),
        );
        // 0.1 ms to ~3 s: a commit is a few fsync rounds, or one PostgreSQL transaction.
        let commit_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 15));
        registry.register(
            "commit_duration_seconds",
            "Time to append one batch durably (the log's whole commit protocol)",
            commit_seconds.clone(),
        );
        let commit_entries = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "commit_entries",
            "Entries per committed batch",
            commit_entries.clone(),
        );
        // 1 ms to ~16 s: witnesses answer in milliseconds, and a round ends by its deadline.
        let witness_round_seconds = Family::<QuorumLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "witness_round_duration_seconds",
            "Time from asking the witnesses to cosign a checkpoint to the round's end",
            witness_round_seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "submissions_in_flight",
            "Submissions in the pipeline (queued, committing, or waiting for their receipt)",
            in_flight.clone(),
        );
        let signature_checks = Gauge::default();
        registry.register(
            "signature_checks_pending",
            "Forms queued for or in their signature check",
            signature_checks.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "http_connections",
            "Open client connections",
            connections.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "store_errors",
            "Failures met writing, taking over, or following the log's store",
            store_errors.clone(),
        );
        let role = Family::<RoleLabels, Gauge>::default();
        registry.register(
            "role",
            "1 for this server's part in writing the log (writer, standby, replica, refusing)",
            role.clone(),
        );
        let published_size = Gauge::default();
        registry.register(
            "log_published_size",
            "Entries under the checkpoint this server serves",
            published_size.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            submissions,
            rejections,
            commit_seconds,
            commit_entries,
            witness_round_seconds,
            in_flight,
            signature_checks,
            connections,
            store_errors,
            role,
            published_size,
        }
    }

    /// Hears the engine's commits and witness rounds.
    pub(crate) fn observe(self: &Arc<Self>, shared: &saksi_recap::Shared) {
        let metrics = self.clone();
        shared.set_observer(Box::new(move |event| match event {
            saksi_recap::Event::Committed { entries, seconds } => {
                metrics.commit_seconds.observe(seconds);
                metrics.commit_entries.observe(entries as f64);
            }
            saksi_recap::Event::WitnessRound {
                seconds,
                quorum_met,
            } => {
                let quorum_met = if quorum_met { "true" } else { "false" };
                metrics
                    .witness_round_seconds
                    .get_or_create(&QuorumLabels { quorum_met })
                    .observe(seconds);
            }
        }));
    }

    pub(crate) fn submission(&self, outcome: Outcome, rules: &[String]) {
        self.submissions
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
        for rule in rules {
            self.rejections
                .get_or_create(&RuleLabels { rule: rule.clone() })
                .inc();
        }
    }

    pub(crate) fn store_error(&self) {
        self.store_errors.inc();
    }

    /// Counts a submission handed to the pipeline until the returned guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }
}

pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn method_label(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::POST => "POST",
        _ => "other",
    }
}

/// The outermost layer: counts and times every request by its route template, and writes its
/// line (method, path, status, latency, client). The path is logged without its query string.
pub(crate) async fn record(
    State(app): State<App>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let metrics = &app.metrics;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status,
        })
        .inc();
    metrics
        .request_seconds
        .get_or_create(&RouteLabels { route })
        .observe(seconds);
    tracing::info!(
        target: "saksi::http",
        method = %method,
        path = %path,
        status,
        latency_ms = seconds * 1e3,
        client = %peer.ip(),
        "request"
    );
    response
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn metrics(State(app): State<App>) -> Response {
    let metrics = &app.metrics;
    {
        let role = app.shared.role();
        for candidate in [
            saksi_recap::Role::Writer,
            saksi_recap::Role::Standby,
            saksi_recap::Role::Replica,
            saksi_recap::Role::Refusing,
        ] {
            metrics
                .role
                .get_or_create(&RoleLabels {
                    role: candidate.as_str(),
                })
                .set(i64::from(candidate == role));
        }
        metrics
            .published_size
            .set(app.shared.published().checkpoint.size as i64);
        metrics
            .signature_checks
            .set(app.pipeline.verifying.load(Ordering::Acquire) as i64);
    }
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &metrics.registry).is_err() {
        return crate::api_error::ApiError::Internal.response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
