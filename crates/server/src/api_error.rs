//! Every error the API answers, as one table (status, stable code, English, Indonesian), the way
//! `RULES` holds the rulebook: a handler names the error, the table says how it reads. The body is
//! always `{"error": {"code", "message", "message_id", "detail"?}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Declares the errors once: the enum, `ApiError::ALL`, and each one's text.
macro_rules! api_errors {
    ($($name:ident => $status:expr, $code:literal, $en:literal, $id:literal;)+) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ApiError {
            $($name,)+
        }

        impl ApiError {
            /// Every error, in table order (for the table's own checks).
            #[cfg(test)]
            pub const ALL: &'static [ApiError] = &[$(ApiError::$name,)+];

            pub fn text(self) -> ErrorText {
                match self {
                    $(ApiError::$name => ErrorText {
                        status: $status,
                        code: $code,
                        en: $en,
                        id: $id,
                    },)+
                }
            }
        }
    };
}

/// How an error reads: its status, its stable code, and its message in English and Indonesian.
pub struct ErrorText {
    pub status: StatusCode,
    pub code: &'static str,
    pub en: &'static str,
    pub id: &'static str,
}

api_errors! {
    MalformedForm => StatusCode::BAD_REQUEST, "MALFORMED",
        "the form is not valid JSON for saksi/c-hasil/v1",
        "formulir tidak sesuai format";
    MalformedRecap => StatusCode::BAD_REQUEST, "MALFORMED",
        "not a valid saksi/d-hasil/v1 form",
        "formulir rekapitulasi tidak sesuai format";
    MalformedCopy => StatusCode::BAD_REQUEST, "MALFORMED",
        "not a valid poll witness's copy (a saksi/c-hasil/v1 form and a participant)",
        "salinan saksi TPS tidak sesuai format";
    CopySignatureInvalid => StatusCode::UNAUTHORIZED, "SIGNATURE_INVALID",
        "the copy's signature is not the named poll witness's",
        "tanda tangan salinan bukan milik saksi TPS yang disebut";
    PollWitnessNotEnrolled => StatusCode::FORBIDDEN, "POLL_WITNESS_NOT_ENROLLED",
        "not a poll witness enrolled by this participant",
        "bukan saksi TPS yang didaftarkan oleh peserta ini";
    PollWitnessRevoked => StatusCode::FORBIDDEN, "POLL_WITNESS_REVOKED",
        "this poll witness was revoked by its participant",
        "saksi TPS ini telah dicabut oleh pesertanya";
    PollWitnessOutOfScope => StatusCode::FORBIDDEN, "POLL_WITNESS_OUT_OF_SCOPE",
        "this poll witness is not enrolled for this TPS",
        "saksi TPS ini tidak didaftarkan untuk TPS ini";
    MalformedReport => StatusCode::BAD_REQUEST, "MALFORMED",
        "not a valid report (saksi report: report, signature, text)",
        "laporan tidak sesuai format";
    ReportSignatureInvalid => StatusCode::UNAUTHORIZED, "SIGNATURE_INVALID",
        "the report's signature is not its reporter's",
        "tanda tangan laporan bukan milik pelapornya";
    ReportPlaceUnknown => StatusCode::BAD_REQUEST, "REPORT_PLACE_UNKNOWN",
        "the report's place is not a registered region or TPS",
        "tempat dalam laporan bukan wilayah atau TPS yang terdaftar";
    ReportElection => StatusCode::BAD_REQUEST, "REPORT_ELECTION",
        "the report is about another election",
        "laporan ini tentang pemilu lain";
    ReportFollowsUnknown => StatusCode::BAD_REQUEST, "REPORT_FOLLOWS_UNKNOWN",
        "the report this follows up is not in the log (file that first)",
        "laporan yang ditindaklanjuti belum ada di log (kirim laporan itu lebih dulu)";
    ReportNotReporter => StatusCode::FORBIDDEN, "REPORT_NOT_REPORTER",
        "a follow-up is signed by the key that signed the report it follows",
        "tindak lanjut harus ditandatangani kunci yang menandatangani laporan awalnya";
    ReportWithdrawn => StatusCode::FORBIDDEN, "REPORT_WITHDRAWN",
        "the reporter withdrew this report",
        "pelapor telah menarik laporan ini";
    PowRequired => StatusCode::FORBIDDEN, "POW_REQUIRED",
        "the intake asks for a proof-of-work stamp with this report (see GET /api/v1/intake)",
        "penerimaan laporan meminta cap bukti kerja (lihat GET /api/v1/intake)";
    ReporterRateLimited => StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED",
        "too many reports from this reporter key (see GET /api/v1/intake)",
        "terlalu banyak laporan dari kunci pelapor ini (lihat GET /api/v1/intake)";
    Withheld => StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS, "WITHHELD",
        "withheld by a moderator's logged statement (its digest stays in the log)",
        "ditahan oleh pernyataan moderator yang tercatat (digestnya tetap di log)";
    CopyLimit => StatusCode::FORBIDDEN, "COPY_LIMIT",
        "this TPS has as many copies as one TPS takes",
        "TPS ini sudah menerima salinan sebanyak batasnya";
    Malformed => StatusCode::BAD_REQUEST, "MALFORMED",
        "the request is not valid",
        "permintaan tidak sah";
    SignatureInvalid => StatusCode::UNAUTHORIZED, "SIGNATURE_INVALID",
        "the form's signature is not valid",
        "tanda tangan formulir tidak sah";
    BadRegionCode => StatusCode::BAD_REQUEST, "BAD_CODE",
        "not a region code",
        "kode wilayah tidak sah";
    TpsCodeNotRegion => StatusCode::BAD_REQUEST, "BAD_CODE",
        "a TPS code: use /api/v1/tps/{code}",
        "kode TPS: gunakan /api/v1/tps/{code}";
    BadTpsCode => StatusCode::BAD_REQUEST, "BAD_CODE",
        "not a TPS code",
        "kode TPS tidak sah";
    NoSuchRegion => StatusCode::NOT_FOUND, "NOT_FOUND",
        "no such region",
        "wilayah tidak ditemukan";
    NoSuchTps => StatusCode::NOT_FOUND, "NOT_FOUND",
        "no such TPS",
        "TPS tidak ditemukan";
    NoSuchEntry => StatusCode::NOT_FOUND, "NOT_FOUND",
        "no such entry",
        "entri tidak ditemukan";
    NotInLog => StatusCode::NOT_FOUND, "NOT_FOUND",
        "not in the published log",
        "tidak ada dalam log yang diterbitkan";
    NotFound => StatusCode::NOT_FOUND, "NOT_FOUND",
        "no such resource",
        "sumber tidak ditemukan";
    MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED",
        "this method is not allowed here",
        "metode ini tidak diizinkan di sini";
    PhotoTooLarge => StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE",
        "a photo may be at most 8 MiB",
        "foto paling besar 8 MiB";
    NotAPhoto => StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE",
        "not a JPEG, PNG or WebP image",
        "bukan gambar JPEG, PNG, atau WebP";
    NoSuchPhoto => StatusCode::NOT_FOUND, "NOT_FOUND",
        "no photo with this digest is stored here",
        "tidak ada foto dengan digest ini di sini";
    TooLarge => StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE",
        "the request body is too large",
        "isi permintaan terlalu besar";
    Timeout => StatusCode::REQUEST_TIMEOUT, "TIMEOUT",
        "the request took too long",
        "permintaan terlalu lama";
    RateLimited => StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED",
        "too many requests from this address",
        "terlalu banyak permintaan dari alamat ini";
    Busy => StatusCode::SERVICE_UNAVAILABLE, "BUSY",
        "too many submissions waiting; retry shortly",
        "antrean penuh; coba lagi sebentar lagi";
    Unavailable => StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE",
        "the log cannot accept writes",
        "log tidak dapat menerima data";
    WitnessPending => StatusCode::SERVICE_UNAVAILABLE, "WITNESS_PENDING",
        "recorded, but not yet cosigned by enough witnesses to be published",
        "tercatat, tetapi belum ditandatangani cukup saksi independen untuk diterbitkan";
    RelayFull => StatusCode::SERVICE_UNAVAILABLE, "RELAY_FULL",
        "this relay holds as many reports as it keeps; file with another relay or the main server",
        "relay ini sudah penuh; kirim ke relay lain atau ke server utama";
    Receipt => StatusCode::INTERNAL_SERVER_ERROR, "RECEIPT",
        "could not build the receipt",
        "tanda terima gagal dibuat";
    Internal => StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL",
        "the server failed",
        "server gagal";
}

impl ApiError {
    /// The answer, without detail.
    pub fn response(self) -> Response {
        self.with_detail(None)
    }

    /// The answer, with a detail (the figures or the decoder's words) when there is one.
    pub fn with_detail(self, detail: Option<String>) -> Response {
        let text = self.text();
        let mut response = body(text.status, text.code, text.en, text.id, detail);
        // Back-pressure answers say when to come back.
        let retry_after = match self {
            ApiError::Busy | ApiError::RateLimited => Some("1"),
            ApiError::WitnessPending => Some("5"),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response
    }
}

impl ApiError {
    /// The answer to a client over its allowance, saying in `Retry-After` when it has a token again.
    pub fn after(self, wait: std::time::Duration) -> Response {
        let mut response = self.response();
        if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.response()
    }
}

/// A refusal by the engine (403): its code is a rule's (messages from the rulebook) or the engine's
/// own (STATEMENT_REFUSED, and anything else, read as "refused").
pub fn refusal(code: &str, detail: String) -> Response {
    let own = [
        ApiError::PollWitnessNotEnrolled,
        ApiError::PollWitnessRevoked,
        ApiError::PollWitnessOutOfScope,
        ApiError::CopyLimit,
        ApiError::ReportPlaceUnknown,
        ApiError::ReportElection,
        ApiError::ReportFollowsUnknown,
        ApiError::ReportNotReporter,
        ApiError::ReportWithdrawn,
    ]
    .into_iter()
    .find(|e| e.text().code == code);
    if let Some(error) = own {
        return error.with_detail(Some(detail));
    }
    let (en, id) = saksi_election::rules::rule(code)
        .map(|r| (r.en, r.id))
        .unwrap_or(("refused", "ditolak"));
    body(StatusCode::FORBIDDEN, code, en, id, Some(detail))
}

fn body(status: StatusCode, code: &str, en: &str, id: &str, detail: Option<String>) -> Response {
    let mut body = json!({"error": {"code": code, "message": en, "message_id": id}});
    if let Some(detail) = detail {
        body["error"]["detail"] = Value::String(detail);
    }
    (status, Json(body)).into_response()
}

/// Every error answer has the documented JSON shape, including those axum makes itself (413 from
/// the body limit, 405 from the method router, 400 from a path that does not parse), which are
/// plain text. Answers that are already JSON, and the site's HTML pages, pass unchanged.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // JSON answers are already in shape; the site's HTML error pages are for people (a 404 page in
    // the reader's language), not API clients.
    let own_shape = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if own_shape {
        return response;
    }
    let (parts, body) = response.into_parts();
    // axum's rejection texts are short; read a bounded amount as the detail.
    let detail = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|d| !d.is_empty());
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::REQUEST_TIMEOUT => ApiError::Timeout,
        StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable,
        s if s.is_client_error() => ApiError::Malformed,
        _ => ApiError::Internal,
    };
    let mut answer = error.with_detail(detail);
    // The status stays what it was (a 400-class code axum chose, e.g. 415, is not rewritten).
    *answer.status_mut() = status;
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_reads_in_both_languages_with_an_error_status() {
        for &error in ApiError::ALL {
            let text = error.text();
            assert!(text.status.is_client_error() || text.status.is_server_error());
            assert!(!text.en.is_empty() && !text.id.is_empty() && text.en != text.id);
            assert!(text
                .code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_'));
        }
    }
}
