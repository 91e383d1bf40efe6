//! Submissions: TPS forms, recapitulation forms, authority statements. Each is decoded here (400),
//! handed to the pipeline, and answered from what the writer and the receipt thread say.

use std::sync::atomic::Ordering;
use std::sync::mpsc::TrySendError;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::sync::oneshot;

use saksi_election::form::{EncodedForm, SignedForm};
use saksi_recap::engine::IngestOutcome;

use crate::api_error::{self, ApiError};
use crate::metrics::Outcome;
use crate::pages::{checkpoint_json, rule_messages};
use crate::pipeline::{Answer, IngestJob, SignatureJob, Submission};
use crate::App;

pub(crate) async fn submit(State(app): State<App>, body: Bytes) -> Response {
    let form = match SignedForm::decode(&body) {
        // Encoded here, on whichever core runs the handler, not on the writer's.
        Ok(form) => EncodedForm::new(form),
        Err(e) => return ApiError::MalformedForm.with_detail(Some(e.to_string())),
    };
    let (reply, answer) = oneshot::channel();
    app.pipeline.verifying.fetch_add(1, Ordering::AcqRel);
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = app
        .pipeline
        .signatures
        .try_send(SignatureJob { form, reply })
    {
        app.pipeline.verifying.fetch_sub(1, Ordering::AcqRel);
        return ApiError::Busy.response();
    }
    respond(&app, answer).await
}

/// Submitting a recapitulation form (D.Hasil): same answers as a TPS form.
pub(crate) async fn submit_recap(State(app): State<App>, body: Bytes) -> Response {
    let form = match saksi_election::recap::SignedRecap::decode(&body) {
        Ok(form) => form,
        Err(e) => return ApiError::MalformedRecap.with_detail(Some(e.to_string())),
    };
    let form =
        match tokio::task::spawn_blocking(move || form.signature_valid().then_some(form)).await {
            Ok(Some(form)) => form,
            Ok(None) => return ApiError::SignatureInvalid.response(),
            Err(_) => return ApiError::Busy.response(),
        };
    let (reply, answer) = oneshot::channel();
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
        app.pipeline.ingest.try_send(IngestJob {
            form: Submission::Recap(form),
            reply,
        })
    {
        return ApiError::Busy.response();
    }
    respond(&app, answer).await
}

/// Submitting a poll witness's copy: 400 when malformed, 401 when the signature is not the named
/// poll witness's, 403 when the witness is not entitled to speak for the TPS (not enrolled by the
/// participant, revoked, or out of scope); otherwise logged with its verdict and answered like a form.
pub(crate) async fn submit_copy(State(app): State<App>, body: Bytes) -> Response {
    let copy = match saksi_election::copy::SignedCopy::decode(&body) {
        Ok(copy) => copy,
        Err(e) => return ApiError::MalformedCopy.with_detail(Some(e.to_string())),
    };
    let copy =
        match tokio::task::spawn_blocking(move || copy.signature_valid().then_some(copy)).await {
            Ok(Some(copy)) => copy,
            Ok(None) => return ApiError::CopySignatureInvalid.response(),
            Err(_) => return ApiError::Busy.response(),
        };
    let (reply, answer) = oneshot::channel();
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
        app.pipeline.ingest.try_send(IngestJob {
            form: Submission::Copy(copy),
            reply,
        })
    {
        return ApiError::Busy.response();
    }
    respond(&app, answer).await
}

/// Filing a citizen's report: 400 when malformed (or its text is not the one it names, or breaks
/// the text rules), 401 when the signature is not the named reporter's, 403 POW_REQUIRED without
/// the work the intake asks, 429 over the key's allowance; the text is stored durably first, then
/// the report is logged, and the answer carries its receipt (no promise without inclusion). The
/// same report again is its entry (200).
pub(crate) async fn submit_report(State(app): State<App>, body: Bytes) -> Response {
    let submission = match saksi_election::report::ReportSubmission::decode(&body) {
        Ok(submission) => submission,
        Err(e) => return ApiError::MalformedReport.with_detail(Some(e)),
    };
    match file_report(&app, submission, Filer::Reporter).await {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(response) => response,
    }
}

/// Who signed a report being filed.
pub(crate) enum Filer {
    /// The reporter's own key: proof of work as the intake asks, bounded per key.
    Reporter,
    /// The server's intake (operator) key, for a reader without script: bounded per address
    /// instead, at the per-key rate (such a reader cannot do the work).
    Server(std::net::IpAddr),
}

/// Checks and logs a report; the answer's status and JSON body, or the error response.
pub(crate) async fn file_report(
    app: &App,
    submission: saksi_election::report::ReportSubmission,
    filer: Filer,
) -> Result<(StatusCode, serde_json::Value), Response> {
    // The operator's logged intake setting: the work asked (checked first: one hash, the flood
    // guard), then, once the signature shows the key is the reporter's, the per-key bound.
    let intake = app
        .shared
        .state
        .read()
        .expect("not poisoned")
        .intake
        .clone();
    if intake.pow_bits > 0 && matches!(filer, Filer::Reporter) {
        let bits = submission.stamp.as_deref().map_or(0, |stamp| {
            saksi_election::report::stamp_bits(&submission.signed.signature, stamp)
        });
        if bits < intake.pow_bits as u32 {
            return Err(ApiError::PowRequired.with_detail(Some(format!(
                "a stamp of {} bits is asked; this one has {bits}",
                intake.pow_bits
            ))));
        }
    }
    // Order: the signature (so a forged report cannot spend a real key's allowance), then the
    // allowance (so a key over it costs no durable write), then the text, durably.
    let submission = match tokio::task::spawn_blocking(move || {
        submission.signed.signature_valid().then_some(submission)
    })
    .await
    {
        Ok(Some(submission)) => submission,
        Ok(None) => return Err(ApiError::ReportSignatureInvalid.response()),
        Err(_) => return Err(ApiError::Busy.response()),
    };
    let limited = match filer {
        Filer::Reporter => app.reporter_limit(&submission.signed.report.reporter, &intake),
        Filer::Server(client) => app.address_report_limit(client, &intake),
    };
    if let Err(wait) = limited {
        return Err(ApiError::ReporterRateLimited.after(wait));
    }
    let texts = app.shared.report_texts.clone();
    let report = match tokio::task::spawn_blocking(move || {
        texts.put(&submission.text).map(|_| submission.signed)
    })
    .await
    {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            return Err(ApiError::Internal.with_detail(Some(format!("storing the text: {e}"))))
        }
        Err(_) => return Err(ApiError::Busy.response()),
    };
    let (reply, answer) = oneshot::channel();
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
        app.pipeline.ingest.try_send(IngestJob {
            form: Submission::Report(report),
            reply,
        })
    {
        return Err(ApiError::Busy.response());
    }
    answer_of(app, answer).await
}

/// Logging a statement the authority signed offline: checked and committed by the writer (403
/// STATEMENT_REFUSED when it is not the authority's or does not apply), answered like a form.
pub(crate) async fn submit_statement(State(app): State<App>, body: Bytes) -> Response {
    let (reply, answer) = oneshot::channel();
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
        app.pipeline.ingest.try_send(IngestJob {
            form: Submission::Statement(body.to_vec()),
            reply,
        })
    {
        return ApiError::Busy.response();
    }
    respond(&app, answer).await
}

async fn respond(app: &App, answer: oneshot::Receiver<Answer>) -> Response {
    match answer_of(app, answer).await {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(response) => response,
    }
}

/// What the writer answered, as the status and JSON body of a success, or the error response.
async fn answer_of(
    app: &App,
    answer: oneshot::Receiver<Answer>,
) -> Result<(StatusCode, serde_json::Value), Response> {
    let in_flight = app.metrics.in_flight();
    let answer = answer.await;
    drop(in_flight);
    let count = |outcome| app.metrics.submission(outcome, &[]);
    let (outcome, receipt) = match answer {
        Ok(Answer::Ingested(outcome, receipt)) => (outcome, receipt),
        Ok(Answer::SignatureInvalid) => {
            count(Outcome::SignatureInvalid);
            return Err(ApiError::SignatureInvalid.response());
        }
        Ok(Answer::Unavailable(message)) => {
            count(Outcome::Unavailable);
            return Err(ApiError::Unavailable.with_detail(Some(message)));
        }
        Ok(Answer::Busy) | Err(_) => {
            count(Outcome::Busy);
            return Err(ApiError::Busy.response());
        }
    };
    match outcome {
        IngestOutcome::Refused { code, detail } => {
            count(Outcome::Refused);
            tracing::info!(target: "saksi::submissions", code, detail = %detail, "refused");
            Err(api_error::refusal(code, detail))
        }
        IngestOutcome::Logged {
            index,
            verdict,
            duplicate,
        } => {
            match (duplicate, verdict.accepted) {
                (true, _) => count(Outcome::Duplicate),
                (false, true) => count(Outcome::Accepted),
                (false, false) => {
                    app.metrics
                        .submission(Outcome::Rejected, &verdict.rejected_by);
                    tracing::info!(
                        target: "saksi::submissions",
                        index,
                        rules = %verdict.rejected_by.join(","),
                        "rejected"
                    );
                }
            }
            if receipt.is_none() && index >= app.shared.published().checkpoint.size {
                // Durable in the log, but the witness policy has not let its checkpoint be published.
                let detail = format!("logged at index {index}; the receipt follows once witnesses cosign its checkpoint");
                return Err(ApiError::WitnessPending.with_detail(Some(detail)));
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
                Err(()) => return Err(ApiError::Receipt.response()),
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
            Ok((status, body))
        }
    }
}
