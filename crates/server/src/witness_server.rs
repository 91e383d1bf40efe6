//! `saksi witness` over HTTP: `POST /add-checkpoint` (c2sp.org/tlog-witness), with the spec's
//! status codes and bodies (plain text, never the API's JSON).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::conn::{self, ConnectionLimits};

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
    conn::serve(
        listener,
        router,
        limits,
        None,
        crate::shutdown(),
        Default::default(),
    )
    .await
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
