//! `saksi relay` over HTTP: the report intake of an independent relay (see `saksi_recap::relay`),
//! with the main server's paths and answers, so a reporter's tool files with either unchanged:
//! `POST /api/v1/reports` and `/api/v1/evidence`, receipts, `/api/v1/log`, and the relay's own log
//! under `/log/` for auditors. `GET /api/v1/relay` says what was forwarded upstream.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use saksi_election::form::PhotoDigest;
use saksi_recap::relay::{RelayError, RelayStore};

use crate::api_error::ApiError;
use crate::conn::{self, ConnectionLimits};
use crate::ratelimit::RateLimiter;
use crate::Limits;

#[derive(Clone)]
struct Relay {
    store: Arc<RelayStore>,
    upstream: String,
    limiter: Arc<RateLimiter>,
    photo_limiter: Arc<RateLimiter>,
    limits: Arc<Limits>,
}

/// Serves the relay until the process is told to stop.
pub async fn serve_relay(
    store: Arc<RelayStore>,
    upstream: String,
    limits: Limits,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let relay = Relay {
        store,
        upstream,
        limiter: Arc::new(RateLimiter::new(limits.requests_per_second, limits.burst)),
        photo_limiter: Arc::new(RateLimiter::new(
            limits.photos_per_second,
            limits.photo_burst,
        )),
        limits: Arc::new(limits),
    };
    let tls = relay.limits.tls.clone();
    let router = Router::new()
        .route(
            "/api/v1/reports",
            post(accept).layer(DefaultBodyLimit::max(
                saksi_election::report::MAX_REPORT_BYTES,
            )),
        )
        .route(
            "/api/v1/evidence",
            post(upload).layer(DefaultBodyLimit::max(
                saksi_recap::evidence::MAX_PHOTO_BYTES,
            )),
        )
        .route("/api/v1/receipts/{index}", get(receipt))
        .route("/api/v1/log", get(log_info))
        .route("/api/v1/relay", get(status))
        .route("/api/v1/report-texts/sha256/{hex}", get(text))
        .route("/evidence/sha256/{hex}", get(photo))
        .route("/log/{*path}", get(log_file))
        .fallback(|| async { ApiError::NotFound.response() })
        .layer(axum::middleware::from_fn_with_state(relay.clone(), guard))
        .layer(DefaultBodyLimit::max(
            saksi_election::report::MAX_REPORT_BYTES,
        ))
        .with_state(relay);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    ready(listener.local_addr()?);
    let mut connections = ConnectionLimits::default();
    connections.max_connections = conn::fit_to_descriptor_limit(connections.max_connections);
    conn::serve(
        listener,
        router,
        connections,
        tls,
        crate::shutdown(),
        Default::default(),
    )
    .await
}

/// The same per-address limits and request deadline as the main server.
async fn guard(
    State(relay): State<Relay>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(refused) = crate::admit(
        &relay.limiter,
        &relay.photo_limiter,
        &relay.limits,
        peer,
        &request,
    ) {
        return refused;
    }
    match tokio::time::timeout(relay.limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.response(),
    }
}

/// 201 with the relay's receipt once the report is durable in the relay's log (200 for the same
/// report again); 400 malformed, 401 not the reporter's signature, 503 when the relay is full.
async fn accept(State(relay): State<Relay>, body: Bytes) -> Response {
    let store = relay.store.clone();
    match tokio::task::spawn_blocking(move || store.accept(&body)).await {
        Ok(Ok(accepted)) => {
            let status = if accepted.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let published = relay.store.published();
            (
                status,
                Json(json!({
                    "index": accepted.index,
                    "duplicate": !accepted.created,
                    "received_at": accepted.entry.received_at,
                    "relay": {"upstream": relay.upstream, "forwarded": "/api/v1/relay"},
                    "checkpoint": {"size": published.checkpoint.size, "root": published.checkpoint.root.to_base64()},
                    "receipt": accepted.receipt.encode(),
                })),
            )
                .into_response()
        }
        Ok(Err(RelayError::Malformed(e))) => ApiError::MalformedReport.with_detail(Some(e)),
        Ok(Err(RelayError::SignatureInvalid)) => ApiError::ReportSignatureInvalid.response(),
        Ok(Err(RelayError::Full)) => ApiError::RelayFull.response(),
        Ok(Err(e)) => ApiError::Unavailable.with_detail(Some(e.to_string())),
        Err(_) => ApiError::Internal.response(),
    }
}

async fn upload(State(relay): State<Relay>, body: Bytes) -> Response {
    crate::evidence::store_photo(relay.store.evidence.clone(), body).await
}

async fn photo(State(relay): State<Relay>, Path(hex): Path<String>) -> Response {
    match PhotoDigest::parse(&format!("sha256:{hex}"))
        .filter(|d| saksi_election::form::hex(&d.0) == hex)
    {
        Some(digest) => crate::evidence::serve_photo(relay.store.evidence.clone(), digest).await,
        None => ApiError::NoSuchPhoto.response(),
    }
}

/// A report's text by its digest: what a third party needs to file a report the upstream does not
/// hold, besides the signed entry.
async fn text(State(relay): State<Relay>, Path(hex): Path<String>) -> Response {
    let Some(digest) = saksi_election::form::unhex(&hex)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .filter(|d| saksi_election::form::hex(d) == hex)
    else {
        return ApiError::NotFound.response();
    };
    let store = relay.store.clone();
    match tokio::task::spawn_blocking(move || store.texts.get(&digest)).await {
        Ok(Ok(Some(text))) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        Ok(Ok(None)) => ApiError::NotFound.response(),
        Ok(Err(e)) => ApiError::Internal.with_detail(Some(e.to_string())),
        Err(_) => ApiError::Internal.response(),
    }
}

async fn receipt(State(relay): State<Relay>, Path(index): Path<u64>) -> Response {
    let store = relay.store.clone();
    match tokio::task::spawn_blocking(move || store.receipt(index)).await {
        Ok(Ok(proof)) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            proof.encode(),
        )
            .into_response(),
        Ok(Err(_)) => ApiError::NoSuchEntry.response(),
        Err(_) => ApiError::Internal.response(),
    }
}

async fn log_info(State(relay): State<Relay>) -> Response {
    let published = relay.store.published();
    Json(json!({
        "origin": published.checkpoint.origin,
        "vkey": relay.store.vkey,
        "checkpoint": {"size": published.checkpoint.size, "root": published.checkpoint.root.to_base64(), "note": published.note},
        "tiles": "/log/",
        "relay": {"upstream": relay.upstream},
    }))
    .into_response()
}

async fn status(State(relay): State<Relay>) -> Response {
    let mut status = relay.store.status();
    status["upstream"] = json!(relay.upstream);
    status["vkey"] = json!(relay.store.vkey);
    Json(status).into_response()
}

async fn log_file(State(relay): State<Relay>, Path(path): Path<String>) -> Response {
    let published = relay.store.published();
    crate::log_files::serve(relay.store.storage(), &published, path).await
}
