//! Citizens' reports in the API: `GET /api/v1/reports?region=CODE&after=INDEX&limit=N`, in log
//! order, each with its text read from the store by the digest the entry names.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use saksi_election::code::{Code, Level};
use saksi_election::form::hex;

use crate::api_error::ApiError;
use crate::pages::checkpoint_json;
use crate::App;

/// Reports per page unless `limit` says fewer, and the most a page holds (texts are read per item).
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

pub(crate) async fn list(State(app): State<App>, uri: axum::http::Uri) -> Response {
    let (mut region, mut after, mut limit) = (None, None, DEFAULT_PAGE);
    for pair in uri.query().unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("region", v)) if !v.is_empty() && v != "nasional" => match Code::parse(v) {
                Ok(code) => region = Some(code),
                Err(_) => return ApiError::BadRegionCode.response(),
            },
            Some(("after", v)) => match v.parse::<u64>() {
                Ok(index) => after = Some(index),
                Err(_) => {
                    return ApiError::Malformed.with_detail(Some("after is a log index".into()))
                }
            },
            Some(("limit", v)) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => limit = n,
                _ => {
                    return ApiError::Malformed
                        .with_detail(Some(format!("limit is a number from 1 to {MAX_PAGE}")))
                }
            },
            _ => {}
        }
    }
    // A TPS's reports, or those of every place within a region (the region's own included).
    let within = |place: Code| match region {
        None => true,
        Some(r) if r.level() == Level::Tps => place == r,
        Some(r) => place.as_str().starts_with(r.as_str()),
    };
    type Item = (
        u64,
        saksi_election::report::Report,
        Option<saksi_recap::state::ReportModeration>,
        Option<u64>,
        Option<saksi_recap::state::ReportThread>,
    );
    let (items, more, log_size, operator) = {
        let state = app.shared.state.read().expect("not poisoned");
        let mut matching = state
            .reports
            .iter()
            .filter(|(index, _)| after.is_none_or(|a| *index > a))
            .filter(|(_, report)| within(report.place));
        let items: Vec<Item> = matching
            .by_ref()
            .take(limit)
            .map(|(index, report)| {
                (
                    *index,
                    report.clone(),
                    state.moderation.get(index).cloned(),
                    state.follow_up_of.get(index).copied(),
                    state.threads.get(index).cloned(),
                )
            })
            .collect();
        let operator = state.genesis.as_ref().map(|g| g.operator);
        (items, matching.next().is_some(), state.size, operator)
    };
    let texts = app.shared.report_texts.clone();
    let items: Vec<Value> = tokio::task::spawn_blocking(move || {
        items
            .iter()
            .map(|(index, report, moderation, follows, thread)| {
                let (id, en) = report.category.labels();
                let hidden = moderation.as_ref().and_then(|m| m.hidden.as_ref());
                // A hidden report's words are not served; its entry and digests are.
                let text = match hidden {
                    Some(_) => None,
                    None => texts.get(&report.text_sha256).ok().flatten(),
                };
                json!({
                    "status": moderation.as_ref().and_then(|m| m.status.as_ref()).map(|(s, i)| json!({"status": s, "index": i})),
                    "hidden": hidden.map(|(reason, moderator, i)| json!({"reason": reason, "moderator": moderator.to_base64(), "index": i})),
                    "moderation": moderation.as_ref().map(|m| m.history.clone()).unwrap_or_default(),
                    "index": index,
                    "place": report.place.as_str(),
                    "category": {"code": report.category.code(), "id": id, "en": en},
                    "event_at": report.event_at,
                    "filed_at": report.filed_at,
                    "reporter": report.reporter.to_base64(),
                    "text_sha256": hex(&report.text_sha256),
                    "text": text,
                    "photos": report.photos.iter().map(|p| p.to_text()).collect::<Vec<_>>(),
                    "receipt": format!("/api/v1/receipts/{index}"),
                    "follows": follows,
                    "withdraws": report.withdraw.then_some(*follows).flatten(),
                    "follow_ups": thread.as_ref().map(|t| t.follow_ups.clone()).unwrap_or_default(),
                    "withdrawn": thread.as_ref().and_then(|t| t.withdrawn),
                    "contact": report.contact.is_some().then_some("encrypted to the oversight body"),
                    "signed_by": if Some(report.reporter) == operator { "server" } else { "reporter" },
                })
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    let next = if more {
        items.last().and_then(|i| i["index"].as_u64())
    } else {
        None
    };
    Json(json!({
        "region": region.map(|c| c.to_string()),
        "reports": items,
        "next": next,
        "checkpoint": checkpoint_json(&app.shared),
        "log_size": log_size,
    }))
    .into_response()
}

/// `GET /api/v1/moderation`: the moderators, and how many reports are hidden now by each of them
/// and in each province: public, so hiding is seen.
pub(crate) async fn summary(State(app): State<App>) -> Response {
    let state = app.shared.state.read().expect("not poisoned");
    let by_moderator: serde_json::Map<String, Value> = state
        .hidden_by_moderator
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(key, n)| (key.to_base64(), Value::from(*n)))
        .collect();
    let mut by_province: std::collections::BTreeMap<String, u64> = Default::default();
    for (index, moderation) in &state.moderation {
        if moderation.hidden.is_some() {
            if let Some(report) = state.report_at(*index) {
                let province = report.place.as_str()[..2].to_string();
                *by_province.entry(province).or_default() += 1;
            }
        }
    }
    Json(json!({
        "moderators": state.registry.moderators().iter().map(|k| k.to_base64()).collect::<Vec<_>>(),
        "oversight_recipient": state.oversight_recipient,
        "reports": state.reports.len(),
        "hidden_by_moderator": by_moderator,
        "hidden_by_province": by_province,
        "checkpoint": checkpoint_json(&app.shared),
    }))
    .into_response()
}

/// `GET /api/v1/intake`: the operator's logged intake setting (the proof-of-work stamp asked of a
/// report, the per-key bound) and how to make a stamp.
pub(crate) async fn intake(State(app): State<App>) -> Response {
    let state = app.shared.state.read().expect("not poisoned");
    let setting = &state.intake;
    Json(json!({
        "pow_bits": setting.pow_bits,
        "reports_per_key_per_hour": setting.reports_per_key_per_hour,
        "note": setting.note,
        "issued_at": setting.issued_at,
        "stamp": {
            "member": "stamp",
            "rule": "SHA-256(\"saksi/pow/v1\\n\" || the report's 64 signature bytes || the stamp's ASCII) starts with pow_bits zero bits; a stamp is 1 to 32 ASCII letters and digits",
        },
        "oversight_recipient": state.oversight_recipient,
    }))
    .into_response()
}

/// `POST /api/v1/contact-seal`: encrypts contact details (the body, UTF-8) to the oversight body's
/// age recipient and answers the ciphertext, for a browser to put in the report it signs (a
/// browser has no age). The server sees the details in transit; `saksi report --contact` encrypts
/// on the reporter's own device instead. Nothing is stored.
pub(crate) async fn contact_seal(State(app): State<App>, body: axum::body::Bytes) -> Response {
    let recipient = app
        .shared
        .state
        .read()
        .expect("not poisoned")
        .oversight_recipient
        .clone();
    let Some(recipient) = recipient else {
        return ApiError::NotFound.with_detail(Some(
            "the registry names no oversight body's key for contact details".into(),
        ));
    };
    let Ok(details) = std::str::from_utf8(&body) else {
        return ApiError::Malformed.with_detail(Some("contact details are UTF-8 text".into()));
    };
    match saksi_recap::contact::seal(&recipient, details) {
        Ok(sealed) => Json(json!({
            "contact": saksi_recap::contact::to_base64(&sealed),
            "recipient": recipient,
        }))
        .into_response(),
        Err(e) => ApiError::Malformed.with_detail(Some(e)),
    }
}

/// `GET /api/v1/report-texts/sha256/{hex}`: a report's text by the digest its signed report names
/// (as a relay serves it), for mirrors; 451 while a moderator hides every report naming it.
pub(crate) async fn text(
    State(app): State<App>,
    axum::extract::Path(hex): axum::extract::Path<String>,
) -> Response {
    let Some(digest) = saksi_election::form::unhex(&hex)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .filter(|d| saksi_election::form::hex(d) == hex)
    else {
        return ApiError::NotFound
            .with_detail(Some("a text is named by 64 lowercase hex digits".into()));
    };
    let (named, hidden) = {
        let state = app.shared.state.read().expect("not poisoned");
        let naming = state
            .reports_by_text
            .get(&digest)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let hidden = |index: &u64| {
            state
                .moderation
                .get(index)
                .is_some_and(|m| m.hidden.is_some())
        };
        (
            !naming.is_empty(),
            !naming.is_empty() && naming.iter().all(hidden),
        )
    };
    if !named {
        return ApiError::NotFound.with_detail(Some("no report in the log names this text".into()));
    }
    if hidden {
        return ApiError::Withheld.response();
    }
    let texts = app.shared.report_texts.clone();
    match tokio::task::spawn_blocking(move || texts.get(&digest)).await {
        Ok(Ok(Some(text))) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Ok(None)) => ApiError::NotFound.with_detail(Some("not stored on this server".into())),
        Ok(Err(e)) => ApiError::Internal.with_detail(Some(e.to_string())),
        Err(_) => ApiError::Internal.response(),
    }
}
