//! Evidence photos over HTTP: `POST /api/v1/evidence` stores a photo (durable before the answer)
//! and answers with its digest; `GET /evidence/sha256/<hex>` serves the exact bytes, immutable.
//! The store itself (sniffing, limits, content addressing, fsync) is `saksi_recap::evidence`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use saksi_election::form::PhotoDigest;
use saksi_recap::evidence::{EvidenceError, EvidenceStore};
use std::sync::Arc;

use crate::api_error::ApiError;
use crate::App;

/// `POST /api/v1/evidence`: 201 when stored now, 200 when it was already stored.
pub(crate) async fn upload(State(app): State<App>, body: Bytes) -> Response {
    store_photo(app.shared.evidence.clone(), body).await
}

/// Stores a photo in `store` and answers with its digest (the main server's store and a relay's).
pub(crate) async fn store_photo(store: Arc<EvidenceStore>, body: Bytes) -> Response {
    let putting = store.clone();
    match tokio::task::spawn_blocking(move || putting.put(&body)).await {
        Ok(Ok(stored)) => {
            let (photos, bytes) = store.usage();
            let status = if stored.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let digest = stored.digest.to_text();
            (
                status,
                [(
                    header::LOCATION,
                    format!("/evidence/{}", digest.replacen(':', "/", 1)),
                )],
                Json(json!({
                    "digest": digest,
                    "type": stored.kind.mime(),
                    "bytes": stored.bytes,
                    "stored": if stored.created { "now" } else { "before" },
                    "store": {"photos": photos, "bytes": bytes},
                })),
            )
                .into_response()
        }
        Ok(Err(EvidenceError::TooLarge { bytes })) => {
            ApiError::PhotoTooLarge.with_detail(Some(format!("{bytes} bytes")))
        }
        Ok(Err(EvidenceError::UnsupportedType)) => ApiError::NotAPhoto.response(),
        Ok(Err(EvidenceError::Io(e))) => ApiError::Internal.with_detail(Some(e.to_string())),
        Err(_) => ApiError::Internal.response(),
    }
}

/// `GET /evidence/sha256/{hex}`: the photo's exact bytes; a name never changes what it serves.
pub(crate) async fn photo(State(app): State<App>, Path(hex): Path<String>) -> Response {
    let Some(digest) = PhotoDigest::parse(&format!("sha256:{hex}"))
        .filter(|d| saksi_election::form::hex(&d.0) == hex)
    else {
        return ApiError::NoSuchPhoto
            .with_detail(Some("a photo is named by 64 lowercase hex digits".into()));
    };
    let withheld = app
        .shared
        .state
        .read()
        .expect("not poisoned")
        .photo_withheld(&digest);
    if withheld {
        return ApiError::Withheld.response();
    }
    serve_photo(app.shared.evidence.clone(), digest).await
}

/// A photo's exact bytes from `store`, cacheable for ever (its name is its digest).
pub(crate) async fn serve_photo(store: Arc<EvidenceStore>, digest: PhotoDigest) -> Response {
    let hex = saksi_election::form::hex(&digest.0);
    match tokio::task::spawn_blocking(move || store.get(&digest)).await {
        Ok(Ok(Some((bytes, kind)))) => (
            [
                (header::CONTENT_TYPE, kind.mime().to_string()),
                (
                    header::CACHE_CONTROL,
                    "public, max-age=31536000, immutable".to_string(),
                ),
                (header::ETAG, format!("\"sha256:{hex}\"")),
                // Evidence is public and signed for by its digest: any site may show it.
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_string()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            ],
            bytes,
        )
            .into_response(),
        Ok(Ok(None)) => ApiError::NoSuchPhoto.response(),
        Ok(Err(e)) => ApiError::Internal.with_detail(Some(e.to_string())),
        Err(_) => ApiError::Internal.response(),
    }
}
