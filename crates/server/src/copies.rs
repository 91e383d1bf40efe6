//! Poll witnesses' copies in the API: a TPS's copies and their comparison with the official result
//! (`GET /api/v1/tps/{code}` carries them), and the list of disagreements under a region
//! (`GET /api/v1/disagreements`). The comparison itself is the state's ([`saksi_recap::state::compare`]).

use std::ops::Bound;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use saksi_election::code::{Code, Level};
use saksi_recap::state::{CopyRecord, CopyTally, FieldDifference, State as RecapState};

use crate::api_error::ApiError;
use crate::pages::{checkpoint_json, rule_messages};
use crate::App;

/// Disagreements per page of `/api/v1/disagreements` unless `limit` says fewer.
pub const DEFAULT_PAGE: usize = 500;
/// The most a page holds: bounds the time the state's read lock is held for one request.
pub const MAX_PAGE: usize = 5000;

pub(crate) fn copy_tally_json(tally: &CopyTally, positions: &[String]) -> Value {
    let by_participant: serde_json::Map<String, Value> = positions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let count = tally
                .disagreeing_by_participant
                .get(i)
                .copied()
                .unwrap_or(0);
            (p.clone(), Value::from(count))
        })
        .collect();
    json!({
        "tps_with_copies": tally.tps_with_copies,
        "tps_disagreeing": tally.tps_disagreeing,
        "tps_disagreeing_by_participant": by_participant,
        "tps_witness_only": tally.tps_witness_only,
    })
}

pub(crate) fn differences_json(differences: &[FieldDifference]) -> Value {
    Value::Array(
        differences
            .iter()
            .map(|d| json!({"field": d.field, "official": d.official, "copy": d.copy}))
            .collect(),
    )
}

/// One copy as the API shows it. `differences` is None when there is no official result yet;
/// `latest` is false for a copy its own poll witness has since replaced.
fn copy_json(
    copy: &CopyRecord,
    positions: &[String],
    latest: bool,
    differences: Option<&[FieldDifference]>,
) -> Value {
    json!({
        "index": copy.index,
        "participant": positions.get(copy.participant),
        "poll_witness": copy.signer.to_base64(),
        "accepted": copy.verdict.accepted,
        "rejected_by": rule_messages(&copy.verdict.rejected_by),
        "latest": latest,
        "agrees": differences.map(|d| d.is_empty()),
        "differences": differences.map(differences_json),
    })
}

/// A TPS's copies and their comparison, for `/api/v1/tps/{code}`: every copy logged (a replaced
/// one marked `latest: false`), the status, and the participants whose witnesses disagree.
pub(crate) fn tps_copies_json(state: &RecapState, tps: Code) -> Value {
    let positions = state.positions();
    let latest = state.latest_copies(tps);
    let all = state.copies(tps);
    let items: Vec<Value> = all
        .iter()
        .map(|copy| {
            let current = latest.iter().find(|(c, _)| c.index == copy.index);
            match current {
                Some((_, differences)) => copy_json(copy, positions, true, differences.as_deref()),
                None => copy_json(copy, positions, false, None),
            }
        })
        .collect();
    let mut disagreeing: Vec<&str> = latest
        .iter()
        .filter(|(_, d)| d.as_ref().is_some_and(|d| !d.is_empty()))
        .filter_map(|(c, _)| positions.get(c.participant).map(String::as_str))
        .collect();
    disagreeing.sort_unstable();
    disagreeing.dedup();
    let status = if all.is_empty() {
        "no_copies"
    } else if !state.has_accepted(tps) {
        "witness_only"
    } else if disagreeing.is_empty() {
        "agree"
    } else {
        "disagree"
    };
    // What each accepted correction did to the agreement with the copies.
    let corrections: Vec<Value> = state
        .correction_effects
        .iter()
        .filter(|e| e.tps == tps)
        .map(|e| {
            json!({
                "index": e.index,
                "effect": e.kind(),
                "disagreeing_before": e.disagreeing_before,
                "disagreeing_after": e.disagreeing_after,
                "copies": e.copies,
            })
        })
        .collect();
    json!({
        "status": status,
        "disagreeing_participants": disagreeing,
        "items": items,
        "corrections": corrections,
    })
}

#[derive(Default)]
struct Query {
    region: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

fn parse(query: Option<&str>) -> Query {
    let mut out = Query::default();
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("region", v)) => out.region = Some(v.to_string()),
            Some(("after", v)) => out.after = Some(v.to_string()),
            Some(("limit", v)) => out.limit = Some(v.to_string()),
            _ => {}
        }
    }
    out
}

/// `GET /api/v1/disagreements?region=CODE&after=TPS&limit=N`: every poll witness's latest copy
/// that disagrees with its TPS's official current result, in TPS code order, a page at a time
/// (`next` names the `after` of the following page). With the region's copy counts.
pub(crate) async fn disagreements(State(app): State<App>, uri: axum::http::Uri) -> Response {
    let query = parse(uri.query());
    let region = match query.region.as_deref() {
        None | Some("") | Some("nasional") => None,
        Some(text) => match Code::parse(text) {
            Ok(code) if code.level() != Level::Tps => Some(code),
            Ok(_) => return ApiError::TpsCodeNotRegion.response(),
            Err(_) => return ApiError::BadRegionCode.response(),
        },
    };
    let after = match query.after.as_deref() {
        None | Some("") => None,
        Some(text) => match Code::parse(text) {
            Ok(code) => Some(code),
            Err(_) => return ApiError::BadTpsCode.response(),
        },
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return ApiError::Malformed
                    .with_detail(Some(format!("limit is a number from 1 to {MAX_PAGE}")))
            }
        },
    };
    let state = app.shared.state.read().expect("not poisoned");
    let positions = state.positions();
    let tally = match region {
        None => state.national(),
        Some(code) => match state.tally(code) {
            Some(tally) if state.registry.region_name(code).is_some() => tally,
            _ => return ApiError::NoSuchRegion.response(),
        },
    };
    let prefix = region.map(|c| c.to_string()).unwrap_or_default();
    let start = match (after, region) {
        (Some(after), _) => Bound::Excluded(after),
        (None, Some(code)) => Bound::Included(code),
        (None, None) => Bound::Unbounded,
    };
    let mut items = Vec::new();
    let mut next = None;
    for tps in state
        .disagreeing
        .range((start, Bound::Unbounded))
        .take_while(|c| c.as_str().starts_with(&prefix))
    {
        if items.len() >= limit {
            break;
        }
        let official = state.tps_record(*tps).and_then(|r| r.current);
        for (copy, differences) in state.latest_copies(*tps) {
            let Some(differences) = differences.filter(|d| !d.is_empty()) else {
                continue;
            };
            items.push(json!({
                "tps": tps.as_str(),
                "participant": positions.get(copy.participant),
                "fields": differences.iter().map(|d| d.field.as_str()).collect::<Vec<_>>(),
                "differences": differences_json(&differences),
                "official_index": official,
                "copy_index": copy.index,
                "poll_witness": copy.signer.to_base64(),
                "copy_accepted": copy.verdict.accepted,
            }));
        }
        next = Some(*tps);
    }
    // `next` only when more may follow.
    let more = next.is_some_and(|last| {
        state
            .disagreeing
            .range((Bound::Excluded(last), Bound::Unbounded))
            .next()
            .is_some_and(|c| c.as_str().starts_with(&prefix))
    });
    Json(json!({
        "region": region.map(|c| c.to_string()),
        "copies": copy_tally_json(&tally.copies, positions),
        "disagreements": items,
        "next": if more { next.map(|c| c.to_string()) } else { None },
        "checkpoint": checkpoint_json(&app.shared),
        "log_size": state.size,
    }))
    .into_response()
}
