//! Read pages: the nation, a region, a TPS, an entry and its receipt, the log's description, the
//! discrepancy list, the rulebook and the API's own description. Their JSON shapes live here.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use saksi_election::code::{Code, Level};
use saksi_election::rules;
use saksi_recap::engine::Shared;
use saksi_recap::state::Tally;

use crate::api_error::ApiError;
use crate::{views, App, OPENAPI};

pub(crate) fn checkpoint_json(shared: &Shared) -> Value {
    let published = shared.published();
    json!({"size": published.checkpoint.size, "root": published.checkpoint.root.to_base64()})
}

pub(crate) fn rule_messages(codes: &[String]) -> Value {
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

pub(crate) async fn index() -> Json<Value> {
    Json(json!({
        "service": "saksi",
        "api": "/api/v1/openapi.json",
        "log": "/log/checkpoint",
        "national": "/api/v1/regions",
    }))
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
        "copies": crate::copies::copy_tally_json(&tally.copies, positions),
    })
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

pub(crate) async fn national(State(app): State<App>) -> Response {
    let page = app.clone();
    cached(&app, String::new(), move || national_page(&page)).await
}

pub(crate) async fn region(State(app): State<App>, Path(code): Path<String>) -> Response {
    let page = app.clone();
    cached(&app, code.clone(), move || region_page(&page, code)).await
}

fn national_page(app: &App) -> Response {
    let state = app.shared.state.read().expect("not poisoned");
    let positions = state.positions();
    let children: Vec<Value> = state
        .provinces()
        .iter()
        .map(|code| {
            json!({
                "code": code.as_str(),
                "name": state.registry.region_name(*code),
                "tally": tally_json(state.tally(*code).unwrap_or(&Tally::default()), positions),
            })
        })
        .collect();
    Json(json!({
        "code": null,
        "name": "Nasional",
        "level": "nasional",
        "tally": tally_json(state.national(), positions),
        "children": children,
        "checkpoint": checkpoint_json(&app.shared),
        "log_size": state.size,
    }))
    .into_response()
}

fn region_page(app: &App, code: String) -> Response {
    let Ok(code) = Code::parse(&code) else {
        return ApiError::BadRegionCode.response();
    };
    if code.level() == Level::Tps {
        return ApiError::TpsCodeNotRegion.response();
    }
    let state = app.shared.state.read().expect("not poisoned");
    let (Some(name), Some(tally)) = (state.registry.region_name(code), state.tally(code)) else {
        return ApiError::NoSuchRegion.response();
    };
    let positions = state.positions();
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
                    "tally": tally_json(state.tally(*child).unwrap_or(&Tally::default()), positions),
                })
            }
        })
        .collect();
    let recap_level = saksi_election::recap::RecapLevel::of_region(Some(code));
    let recap_discrepancies: Vec<Value> = recap_level
        .map(|level| {
            saksi_recap::inflation::discrepancies_of(&state, level, Some(code))
                .iter()
                .map(discrepancy_json)
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
        "tally": tally_json(tally, positions),
        "children": children,
        "checkpoint": checkpoint_json(&app.shared),
        "log_size": state.size,
    }))
    .into_response()
}

pub(crate) async fn tps(State(app): State<App>, Path(code): Path<String>) -> Response {
    let Ok(code) = Code::parse(&code) else {
        return ApiError::BadTpsCode.response();
    };
    let (registry_entry, history, current, mut copies) = {
        let state = app.shared.state.read().expect("not poisoned");
        let Some(entry) = state.registry.tps(code).cloned() else {
            return ApiError::NoSuchTps.response();
        };
        let record = state.tps_record(code).cloned().unwrap_or_default();
        let copies = crate::copies::tps_copies_json(&state, code);
        (entry, record.history, record.current, copies)
    };
    let shared = app.shared.clone();
    let current_entry = match current {
        Some(index) => tokio::task::spawn_blocking(move || shared.entry(index))
            .await
            .ok()
            .and_then(Result::ok),
        None => None,
    };
    // Each copy's photos, read back from its entry (a TPS has a few copies).
    let copy_indexes: Vec<u64> = copies["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|c| c["index"].as_u64()).collect())
        .unwrap_or_default();
    let shared = app.shared.clone();
    let copy_evidence: Vec<Value> = tokio::task::spawn_blocking(move || {
        copy_indexes
            .into_iter()
            .map(|index| {
                shared
                    .entry(index)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                    .map_or(Value::Null, |e| e["copy"]["form"]["evidence"].clone())
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    if let Some(items) = copies["items"].as_array_mut() {
        for (item, evidence) in items.iter_mut().zip(copy_evidence) {
            item["evidence"] = evidence;
        }
    }
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
        "copies": copies,
        "checkpoint": checkpoint_json(&app.shared),
    }))
    .into_response()
}

pub(crate) async fn receipt(State(app): State<App>, Path(index): Path<u64>) -> Response {
    let shared = app.shared.clone();
    match tokio::task::spawn_blocking(move || shared.receipt(index)).await {
        Ok(Ok(proof)) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            proof.encode(),
        )
            .into_response(),
        Ok(Err(e)) => read_failure(e),
        Err(_) => ApiError::Internal.response(),
    }
}

pub(crate) async fn entry(State(app): State<App>, Path(index): Path<u64>) -> Response {
    let shared = app.shared.clone();
    match tokio::task::spawn_blocking(move || shared.entry(index)).await {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(Err(e)) => read_failure(e),
        Err(_) => ApiError::Internal.response(),
    }
}

/// An entry past the published end is not found (404); anything else is the server's failure (500),
/// never passed off as "no such entry".
fn read_failure(e: saksi_recap::EngineError) -> Response {
    match e {
        saksi_recap::EngineError::NoEntry { .. } => ApiError::NoSuchEntry.response(),
        e => ApiError::Internal.with_detail(Some(e.to_string())),
    }
}

/// Liveness for a load balancer or supervisor: the process answers HTTP.
pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// A read replica that has not read its log copy for this long is not ready: it would serve
/// figures older than the writer's by more than a few publication intervals.
const REPLICA_STALE: std::time::Duration = std::time::Duration::from_secs(5);

/// Readiness: 200 on the writer (its state replayed, its store writable), and on a read replica
/// that read its log copy within REPLICA_STALE; 503 on a standby, a stale replica, or a server
/// whose log refused a write, saying which. A load balancer sends writes to the server whose
/// role is "writer" and reads to any ready server.
pub(crate) async fn readyz(State(app): State<App>) -> Response {
    let role = app.shared.role();
    let followed = app.shared.followed_ago();
    let body = Json(json!({
        "role": role.as_str(),
        "log_size": app.shared.published().checkpoint.size,
        "followed_ms_ago": followed.map(|d| d.as_millis() as u64),
    }));
    let ready = match role {
        saksi_recap::Role::Writer => true,
        saksi_recap::Role::Replica => followed.is_some_and(|d| d < REPLICA_STALE),
        saksi_recap::Role::Standby | saksi_recap::Role::Refusing => false,
    };
    if ready {
        body.into_response()
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

pub(crate) async fn log_info(State(app): State<App>) -> Response {
    let published = app.shared.published();
    Json(json!({
        "role": app.shared.role().as_str(),
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
/// The discrepancy list as built at most once per `DISCREPANCY_REFRESH` (shared by the API and the
/// site, so both show the same items).
pub(crate) async fn discrepancy_view(app: &App) -> Result<Arc<views::Discrepancies>, Response> {
    let log_size = app.shared.state.read().expect("not poisoned").size;
    Ok(match app.discrepancies.plan(log_size, Instant::now()) {
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
                        return Err(ApiError::Internal.response());
                    }
                },
            }
        }
    })
}

pub(crate) async fn discrepancies(State(app): State<App>, uri: axum::http::Uri) -> Response {
    let filter = parse_query(uri.query());
    let view = match discrepancy_view(&app).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    let items: Vec<&serde_json::value::RawValue> = view
        .items
        .iter()
        .filter(|(level, _, _)| filter.level.as_deref().is_none_or(|l| l == *level))
        .filter(|(_, region, _)| match &filter.region {
            None => true,
            Some(r) if r == "nasional" => region.is_empty(),
            Some(r) => !region.is_empty() && region.starts_with(r.as_str()),
        })
        .map(|(_, _, item)| item.as_ref())
        .collect();
    /// The answer, written with the items' stored JSON as it is (json! would parse it back).
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        discrepancies: Vec<&'a serde_json::value::RawValue>,
        coverage_gaps: usize,
        left_out: usize,
        checkpoint: &'a Value,
        log_size: u64,
    }
    Json(Answer {
        discrepancies: items,
        coverage_gaps: view.coverage_gaps,
        left_out: view.truncated,
        checkpoint: &view.checkpoint,
        log_size: view.log_size,
    })
    .into_response()
}

fn build_discrepancies(shared: &Shared) -> views::Discrepancies {
    let state = shared.state.read().expect("not poisoned");
    let checkpoint = checkpoint_json(shared);
    let (found, coverage) = saksi_recap::inflation::discrepancies(&state);
    let mut items: Vec<views::DiscrepancyItem> = found
        .iter()
        .map(|d| {
            let json = serde_json::value::to_raw_value(&discrepancy_json(d))
                .expect("a JSON value serialises");
            (
                d.level.as_str(),
                d.region.map(|c| c.to_string()).unwrap_or_default(),
                json,
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

pub(crate) async fn rulebook() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        rules::rulebook_json(),
    )
        .into_response()
}

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// A discrepancy as the API (and `saksi audit recap --json`) shows it.
pub fn discrepancy_json(d: &saksi_recap::inflation::Discrepancy) -> Value {
    let fields: serde_json::Map<String, Value> = d
        .fields
        .iter()
        .map(|(k, f)| {
            (
                k.clone(),
                json!({"recap": f.recap, "below": f.below, "delta": f.delta}),
            )
        })
        .collect();
    json!({
        "level": d.level.as_str(),
        "region": d.region.map_or("nasional".to_string(), |c| c.to_string()),
        "child": d.child.map(|c| c.to_string()),
        "basis": d.basis,
        "kind": d.kind,
        "fields": fields,
        "magnitude": d.magnitude(),
        "entry": d.index,
    })
}
