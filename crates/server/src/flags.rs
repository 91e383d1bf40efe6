//! Forensic flags kept current beside the log: `GET /api/v1/flags?region=CODE`.
//!
//! The forensics model is fitted over every accepted TPS at once (leave-one-out peers, calibration per
//! kabupaten/kota), so it is recomputed whole, off the request path, by one background thread:
//! 1. every `FLAGS_POLL` it compares the state's size with the size the last result was built at;
//! 2. if they differ and either the log was quiet over the last poll or the duty cycle allows (the
//!    time since the last run ended is at least (100 - d) / d times that run's length, d the duty
//!    in percent), it collects the accepted rows under the state's read
//!    lock (a copy, ~0.3 s nationally), releases the lock, and scores them;
//! 3. the result replaces the old one whole, naming the log size it reflects.
//!
//! The duty cycle bounds the share of the time forensics takes while forms arrive to d percent
//! (`saksi serve --forensics-duty`, default 2); the thread ends when the app is dropped. A flag is never a rejection:
//! nothing here writes to the log or the tallies.

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use axum::extract::State as AxumState;
use axum::response::{IntoResponse, Response};
use axum::Json;
use saksi_election::{Code, Level};
use saksi_forensics::{analyze, RegionResult, Settings, TpsRow, TpsScore};
use saksi_recap::{Shared, State};
use serde_json::json;

use crate::api_error::ApiError;
use crate::App;

/// How often the background thread looks for a changed state.
pub const FLAGS_POLL: Duration = Duration::from_secs(1);
/// The default share of time (percent) rescoring may take while forms arrive. Over a short burst one
/// long run dominates: 100,000 forms over HTTP (about 11 s) lost 14.5% of their rate at 10%, 12.9% at
/// 5%, 6.9% at 1% while rescoring used every core; with one thread and 2%, 3.6%
/// (bench/forensics-ingest.sh).
pub const DEFAULT_DUTY_PERCENT: u32 = 2;
/// Flagged TPS listed per answer at most, highest scores first; the answer says how many were left out.
pub const MAX_FLAGS_LISTED: usize = 2_000;

/// One scoring of the whole state.
pub struct FlagSnapshot {
    pub log_size: u64,
    pub computed_seconds: f64,
    pub fdr: f64,
    pub pairs: Vec<String>,
    pub tested: usize,
    /// Flagged TPS only, highest score first.
    pub flagged: Vec<TpsScore>,
    pub regions: Vec<RegionResult>,
}

#[derive(Default)]
pub struct FlagsView {
    latest: RwLock<Option<Arc<FlagSnapshot>>>,
}

impl FlagsView {
    pub fn latest(&self) -> Option<Arc<FlagSnapshot>> {
        self.latest.read().expect("not poisoned").clone()
    }
}

/// The forensics' rows from a state: every TPS with an accepted result whose pair counts are all
/// reported, with its registry kind and DPT, and whether a poll witness's copy disagrees with it.
/// Returns the rows, the pair labels, and how many accepted results were left out.
pub fn rows_from_state(state: &State) -> (Vec<TpsRow>, Vec<String>, usize) {
    let pairs: Vec<String> = state
        .positions()
        .iter()
        .map(|p| format!("paslon {p}"))
        .collect();
    let mut rows = Vec::new();
    let mut left_out = 0;
    for tps in state.registry.all_tps() {
        let Some(counts) = state.tps_record(tps.code).and_then(|r| r.counts.as_ref()) else {
            continue;
        };
        let votes: Option<Vec<u32>> = counts
            .votes
            .iter()
            .map(|&v| u32::try_from(v).ok())
            .collect();
        match votes {
            Some(votes) if counts.unreported.votes == 0 && votes.len() == pairs.len() => {
                rows.push(TpsRow {
                    tps: tps.code,
                    kind: tps.kind,
                    dpt: tps.dpt.map(|lp| lp.total()),
                    voters: (counts.unreported.voters == 0)
                        .then(|| u32::try_from(counts.voters).ok())
                        .flatten(),
                    votes,
                    disagreeing_copies: state.disagreeing.contains(&tps.code),
                })
            }
            _ => left_out += 1,
        }
    }
    (rows, pairs, left_out)
}

fn compute(shared: &Shared) -> Option<FlagSnapshot> {
    let started = Instant::now();
    let (rows, pairs, log_size) = {
        let state = shared.state.read().expect("not poisoned");
        let (rows, pairs, _) = rows_from_state(&state);
        (rows, pairs, state.size)
    };
    if rows.is_empty() || pairs.is_empty() {
        return None;
    }
    // One thread: the other cores stay with ingest.
    let settings = Settings {
        threads: 1,
        ..Settings::default()
    };
    let analysis = analyze(&rows, &pairs, &settings).ok()?;
    let tested = analysis.tested;
    let mut flagged: Vec<TpsScore> = analysis.tps.into_iter().filter(|s| s.flagged).collect();
    flagged.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.tps.cmp(&b.tps)));
    Some(FlagSnapshot {
        log_size,
        computed_seconds: started.elapsed().as_secs_f64(),
        fdr: settings.fdr,
        pairs: analysis.pairs,
        tested,
        flagged,
        regions: analysis.regions,
    })
}

/// Starts the background thread (see the module comment). It holds the state weakly and ends once
/// the app that owns the state is gone.
pub fn start(shared: &Arc<Shared>, view: &Arc<FlagsView>, duty_percent: u32) {
    assert!((1..=100).contains(&duty_percent));
    // Idle time after a run per unit of its length: 49 for 2%.
    let idle_per_busy = f64::from(100 - duty_percent) / f64::from(duty_percent);
    let shared: Weak<Shared> = Arc::downgrade(shared);
    let view = Arc::downgrade(view);
    let spawned = std::thread::Builder::new()
        .name("forensics".into())
        .spawn(move || {
            let mut last: Option<(Instant, Duration)> = None;
            let mut size_at_last_poll = None;
            loop {
                std::thread::sleep(FLAGS_POLL);
                let (Some(shared), Some(view)) = (shared.upgrade(), view.upgrade()) else {
                    return;
                };
                let size = shared.state.read().expect("not poisoned").size;
                // A log that did not grow over the last poll is quiet: rescore now, the duty cycle
                // only holds back while forms are arriving.
                let quiet = size_at_last_poll == Some(size);
                size_at_last_poll = Some(size);
                if view.latest().is_some_and(|s| s.log_size == size) {
                    continue;
                }
                if let Some((ended, took)) = last {
                    if !quiet && ended.elapsed() < took.mul_f64(idle_per_busy) {
                        continue;
                    }
                }
                let started = Instant::now();
                if let Some(snapshot) = compute(&shared) {
                    *view.latest.write().expect("not poisoned") = Some(Arc::new(snapshot));
                }
                last = Some((Instant::now(), started.elapsed()));
            }
        });
    if let Err(e) = spawned {
        eprintln!("forensics: could not start its thread ({e}); /api/v1/flags will answer 503");
    }
}

/// `GET /api/v1/flags?region=CODE`: the flagged TPS in the region (all when absent), highest score
/// first, and the region results of the region and every region in it, with the log size the
/// scores reflect. 503 until the first scoring is done.
pub(crate) async fn flags(AxumState(app): AxumState<App>, uri: axum::http::Uri) -> Response {
    let mut region_text = None;
    for pair in uri.query().unwrap_or_default().split('&') {
        if let Some(("region", v)) = pair.split_once('=') {
            region_text = Some(v.to_string());
        }
    }
    let region = match region_text.as_deref() {
        None | Some("") | Some("nasional") => None,
        Some(text) => match Code::parse(text) {
            Ok(code) if code.level() != Level::Tps => Some(code),
            Ok(_) => return ApiError::TpsCodeNotRegion.response(),
            Err(_) => return ApiError::BadRegionCode.response(),
        },
    };
    if let Some(code) = region {
        let state = app.shared.state.read().expect("not poisoned");
        if state.registry.region_name(code).is_none() {
            return ApiError::NoSuchRegion.response();
        }
    }
    let Some(snapshot) = app.flags.latest() else {
        return ApiError::Unavailable.with_detail(Some(
            if app.limits.forensics_duty_percent == 0 {
                "forensic scoring is off on this server (saksi serve --forensics-duty 0)".into()
            } else {
                "the first forensic scoring is still running; try again in a few seconds".into()
            },
        ));
    };
    let prefix = region.map(|c| c.to_string()).unwrap_or_default();
    let matching: Vec<&TpsScore> = snapshot
        .flagged
        .iter()
        .filter(|s| s.tps.starts_with(&prefix))
        .collect();
    let listed: Vec<&TpsScore> = matching.iter().take(MAX_FLAGS_LISTED).copied().collect();
    let regions: Vec<&RegionResult> = snapshot
        .regions
        .iter()
        .filter(|r| r.region.starts_with(&prefix))
        .collect();
    let current = app.shared.state.read().expect("not poisoned").size;
    Json(json!({
        "region": region.map(|c| c.to_string()),
        "log_size": snapshot.log_size,
        "current_log_size": current,
        "computed_seconds": snapshot.computed_seconds,
        "fdr": snapshot.fdr,
        "pairs": snapshot.pairs,
        "tested_tps": snapshot.tested,
        "flagged_tps": matching.len(),
        "left_out": matching.len() - listed.len(),
        "tps": listed,
        "regions": regions,
        "note": "A flag is a lead for a person, never a rejection: it changes no total. See docs/forensics.md.",
    }))
    .into_response()
}
