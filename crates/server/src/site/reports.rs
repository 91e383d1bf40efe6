//! Citizens' reports on the site: counts by category and the latest reports on every region and
//! TPS page, and the report form. With script, `lapor.js` signs the report in the reader's browser
//! with the reader's own key and checks its receipt there; without, the form posts to `/lapor` and
//! the server signs with its intake (operator) key on the reader's behalf, and the page says so.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use saksi_election::code::{Code, Level};
use saksi_election::report::{text_digest, Category, Report, ReportSubmission};

use super::{html_response, layout, Lang, LangQuery, RecapState};
use crate::submit::{file_report, Filer};
use crate::App;

/// Reports a page lists (newest first); the rest are in `/api/v1/reports?region=`.
const LISTED: usize = 10;
/// The most reports a page looks through for its latest ones: a page's cost stays bounded when a
/// region has few reports among very many.
const SCANNED: usize = 200_000;

/// Whether `place` is `region` or within it (`None`: the nation).
fn within(place: Code, region: Option<Code>) -> bool {
    match region {
        None => true,
        Some(r) if r.level() == Level::Tps => place == r,
        Some(r) => place.as_str().starts_with(r.as_str()),
    }
}

/// Counts by category, the latest reports, and the form, for a region or TPS (`None`: national).
pub(super) fn section(lang: Lang, app: &App, state: &RecapState, place: Option<Code>) -> Markup {
    let counts = state.report_counts.of(place);
    let total: u64 = counts.iter().sum();
    let operator = state.genesis.as_ref().map(|g| g.operator);
    let latest: Vec<(u64, &Report)> = state
        .reports
        .iter()
        .rev()
        .take(SCANNED)
        .filter(|(index, report)| {
            within(report.place, place) && !state.follow_up_of.contains_key(index)
        })
        .take(LISTED)
        .map(|(index, report)| (*index, report))
        .collect();
    let api = match place {
        Some(code) => format!("/api/v1/reports?region={}", code.as_str()),
        None => "/api/v1/reports".to_string(),
    };
    html! {
        section id="laporan" class="reports" {
            h2 { (lang.t("Laporan warga", "Citizens' reports")) }
            @if total == 0 {
                p class="note" { (lang.t("Belum ada laporan di sini.", "No reports here yet.")) }
            } @else {
                table class="report-counts" {
                    caption class="sr" { (lang.t("Laporan menurut kategori", "Reports by category")) }
                    thead { tr { th class="text" { (lang.t("Kategori", "Category")) } th { (lang.t("Laporan", "Reports")) } } }
                    tbody {
                        @for (category, n) in Category::ALL.iter().zip(counts) {
                            @if n > 0 {
                                tr data-category=(category.code()) {
                                    td class="text" { (label(lang, *category)) }
                                    td { (lang.number(n as i64)) }
                                }
                            }
                        }
                    }
                }
                ul class="report-list" {
                    @for (index, report) in &latest {
                        (item(lang, app, state, *index, report, operator))
                    }
                }
                p class="note" {
                    (lang.t("Semua laporan, dengan moderasinya, dalam JSON: ", "Every report, with its moderation, as JSON: "))
                    a href=(api) { (api) }
                }
            }
            @if let Some(place) = place {
                (form(lang, app, state, place))
            }
        }
    }
}

fn label(lang: Lang, category: Category) -> &'static str {
    let (id, en) = category.labels();
    lang.t(id, en)
}

fn item(
    lang: Lang,
    app: &App,
    state: &RecapState,
    index: u64,
    report: &Report,
    operator: Option<saksi_election::sign::PublicKey>,
) -> Markup {
    let moderation = state.moderation.get(&index);
    let hidden = moderation.and_then(|m| m.hidden.as_ref());
    let status = moderation.and_then(|m| m.status.as_ref());
    let thread = state.threads.get(&index);
    // A hidden report's words are not served; its entry and digest are.
    let text = match hidden {
        Some(_) => None,
        None => app
            .shared
            .report_texts
            .get(&report.text_sha256)
            .ok()
            .flatten(),
    };
    html! {
        li data-index=(index) {
            strong { (label(lang, report.category)) } " · "
            a href=(format!("/api/v1/entries/{index}")) { (lang.t("entri ", "entry ")) (index) }
            " · " (report.place.as_str())
            " · " (lang.t("kejadian ", "event ")) (wib_text(report.event_at))
            @if Some(report.reporter) == operator {
                " · " em { (lang.t("ditandatangani server atas nama pelapor", "signed by the server on the reporter's behalf")) }
            }
            @if let Some((status, _)) = status { " · " span class="status" { (status) } }
            @if let Some(at) = thread.and_then(|t| t.withdrawn) {
                " · " strong { (lang.t("ditarik pelapor", "withdrawn by the reporter")) } " (" (at) ")"
            }
            @if let Some(thread) = thread.filter(|t| !t.follow_ups.is_empty()) {
                " · " (thread.follow_ups.len()) (lang.t(" tindak lanjut", " follow-ups"))
            }
            @match (hidden, text) {
                (Some((reason, _, at)), _) => {
                    p class="note" { (lang.t("Disembunyikan oleh moderator (", "Hidden by a moderator (")) (reason) (lang.t(", entri ", ", entry ")) (at) (lang.t("); digestnya tetap di log.", "); its digest stays in the log.")) }
                }
                (None, Some(text)) => { blockquote { (text) } }
                (None, None) => { p class="note" { (lang.t("Teks tidak tersimpan di server ini.", "The text is not stored on this server.")) } }
            }
        }
    }
}

/// The report form. It works without script (posted to `/lapor`, signed by the server); with
/// script and Ed25519 in WebCrypto, `lapor.js` signs it in the browser instead.
fn form(lang: Lang, app: &App, state: &RecapState, place: Code) -> Markup {
    let place_name = if place.level() == Level::Tps {
        format!("TPS {}", place.as_str())
    } else {
        state
            .registry
            .region_name(place)
            .unwrap_or(place.as_str())
            .to_string()
    };
    let election = state
        .genesis
        .as_ref()
        .map(|g| g.election.id.clone())
        .unwrap_or_default();
    html! {
        h3 { (lang.t("Laporkan kecurangan di ", "Report an irregularity at ")) (place_name) }
        form class="report-form" method="post" action="/lapor" data-vkey=(app.shared.vkey) data-election=(election) {
            input type="hidden" name="place" value=(place.as_str());
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            p class="note" data-without-script {
                (lang.t(
                    "Tanpa JavaScript, laporan ditandatangani kunci server atas nama Anda dan dicatat di log publik; Anda mendapat tanda terima, tetapi tidak dapat menambah tindak lanjut.",
                    "Without JavaScript, the report is signed by the server's key on your behalf and logged publicly; you get a receipt but cannot add follow-ups.",
                ))
            }
            p class="note" data-script-only hidden {
                (lang.t(
                    "Laporan ditandatangani di peramban ini dengan kunci pelapor Anda sendiri (nama samaran, disimpan di peramban ini) dan tanda terimanya diperiksa di sini.",
                    "The report is signed in this browser with your own reporter key (a pseudonym, kept in this browser), and its receipt is checked here.",
                ))
            }
            p {
                label for="report-category" { (lang.t("Kategori", "Category")) }
                br;
                select id="report-category" name="category" required {
                    @for category in Category::ALL {
                        option value=(category.code()) { (label(lang, category)) }
                    }
                }
            }
            p {
                label for="report-when" { (lang.t("Waktu kejadian (WIB, boleh kosong)", "When it happened (WIB, optional)")) }
                br;
                input id="report-when" name="event_at" type="datetime-local";
            }
            p {
                label for="report-text" { (lang.t("Apa yang terjadi (tanpa data pribadi orang lain)", "What happened (no one else's personal data)")) }
                br;
                textarea id="report-text" name="text" rows="5" cols="60" maxlength="4096" required {}
            }
            p data-script-only hidden {
                label for="report-photo" { (lang.t("Foto (opsional; JPEG, PNG, WebP, maks. 8 MiB)", "Photo (optional; JPEG, PNG, WebP, at most 8 MiB)")) }
                br;
                input id="report-photo" type="file" accept="image/jpeg,image/png,image/webp";
            }
            @if state.oversight_recipient.is_some() {
                p {
                    label for="report-contact" { (lang.t("Kontak untuk lembaga pengawas (opsional)", "Contact details for the oversight body (optional)")) }
                    br;
                    input id="report-contact" name="contact" type="text" maxlength="512" autocomplete="off";
                    br;
                    small class="note" { (lang.t(
                        "Dienkripsi oleh server untuk kunci lembaga pengawas segera setelah diterima; log hanya memuat sandinya. Untuk enkripsi di perangkat Anda sendiri: saksi report --contact.",
                        "Encrypted by the server to the oversight body's key on receipt; the log holds only ciphertext. To encrypt on your own device: saksi report --contact.",
                    )) }
                }
            }
            button type="submit" { (lang.t("Kirim laporan", "File the report")) }
        }
        div id="report-outcome" class="verification" aria-live="polite" data-state="" {}
    }
}

#[derive(Deserialize)]
pub(crate) struct ReportForm {
    place: String,
    category: String,
    #[serde(default)]
    event_at: String,
    text: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    lang: Option<String>,
}

/// Unix seconds as people in western Indonesia read them: `2024-02-14 09:15 WIB`.
fn wib_text(seconds: u64) -> String {
    let (year, month, day, rest) = super::civil(seconds as i64 + 7 * 3600);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} WIB",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// `YYYY-MM-DDTHH:MM[:SS]` read as WIB (UTC+7), as Unix seconds.
fn wib_seconds(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm) = (time.next()??, time.next()??);
    let ss = time.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss - 7 * 3600).ok()
}

/// `POST /lapor`: a report filed without script, signed by the server's intake (operator) key on
/// the reader's behalf, bounded per address; answered with a page holding the receipt.
pub(crate) async fn file_without_script(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(_query): Query<LangQuery>,
    Form(fields): Form<ReportForm>,
) -> Response {
    let lang = match fields.lang.as_deref() {
        Some("en") => Lang::En,
        _ => Lang::Id,
    };
    let page = |status: StatusCode, title: &str, body: Markup| {
        (status, html_response(layout(lang, "/lapor", title, body))).into_response()
    };
    let refused = |why: String| {
        page(
            StatusCode::BAD_REQUEST,
            lang.t("Laporan ditolak", "Report refused"),
            html! { h1 { (lang.t("Laporan ditolak", "Report refused")) } p { (why) } p { a href="javascript:history.back()" { (lang.t("Kembali", "Back")) } } },
        )
    };
    let Some(signer) = app.shared.intake_signer.as_ref() else {
        return refused(lang.t("Server ini tidak memegang kunci penerimaan; kirim dengan JavaScript atau saksi report.", "This server holds no intake key; file with JavaScript or saksi report.").to_string());
    };
    let Ok(place) = Code::parse(fields.place.trim()) else {
        return refused(
            lang.t("Tempat tidak sah.", "Not a valid place.")
                .to_string(),
        );
    };
    let Some(category) = Category::parse(&fields.category) else {
        return refused(
            lang.t("Kategori tidak dikenal.", "Unknown category.")
                .to_string(),
        );
    };
    let text = fields.text.replace("\r\n", "\n");
    if let Err(e) = saksi_election::report::check_text(&text) {
        return refused(e);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let event_at = match fields.event_at.trim() {
        "" => now,
        text => match wib_seconds(text) {
            Some(at) => at,
            None => {
                return refused(
                    lang.t("Waktu kejadian tidak sah.", "Not a valid time.")
                        .to_string(),
                )
            }
        },
    };
    let (election, recipient) = {
        let state = app.shared.state.read().expect("not poisoned");
        (
            state.genesis.as_ref().map(|g| g.election.id.clone()),
            state.oversight_recipient.clone(),
        )
    };
    let contact = match (fields.contact.trim(), recipient) {
        ("", _) => None,
        (details, Some(recipient)) => match saksi_recap::contact::seal(&recipient, details) {
            Ok(sealed) => Some(sealed),
            Err(e) => return refused(e),
        },
        (_, None) => None,
    };
    let report = Report {
        election: election.unwrap_or_default(),
        place,
        category,
        event_at,
        filed_at: now,
        text_sha256: text_digest(&text),
        photos: Vec::new(),
        reporter: signer.public(),
        follows: None,
        withdraw: false,
        contact,
    };
    let submission = ReportSubmission {
        signed: report.sign(signer),
        text,
        stamp: None,
    };
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client =
        crate::ratelimit::client_address(peer.ip(), forwarded, &app.limits.trusted_proxies);
    match file_report(&app, submission, Filer::Server(client)).await {
        Ok((status, answer)) => {
            let index = answer["index"].as_u64().unwrap_or_default();
            let receipt = answer["receipt"].as_str().unwrap_or_default().to_string();
            page(
                status,
                lang.t("Laporan tercatat", "Report logged"),
                html! {
                    h1 { (lang.t("Laporan tercatat", "Report logged")) }
                    p id="report-outcome" data-state="logged" data-index=(index) {
                        (lang.t("Laporan Anda tercatat di log publik sebagai entri ", "Your report is in the public log as entry ")) (index) ". "
                        (lang.t(
                            "Ditandatangani oleh kunci server atas nama Anda (bukan oleh Anda sendiri). Simpan tanda terima ini: ia membuktikan laporan ada di log yang ditandatangani.",
                            "It was signed by the server's key on your behalf (not by you). Keep this receipt: it proves the report is in the signed log.",
                        ))
                    }
                    pre { (receipt) }
                    p { a href=(format!("/api/v1/entries/{index}")) { (lang.t("Entri di log", "The log entry")) } }
                },
            )
        }
        Err(response) => {
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 64 << 10)
                .await
                .unwrap_or_default();
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let message = error["error"][lang.t("message_id", "message")]
                .as_str()
                .unwrap_or_default();
            page(
                status,
                lang.t("Laporan ditolak", "Report refused"),
                html! {
                    h1 { (lang.t("Laporan ditolak", "Report refused")) }
                    p id="report-outcome" data-state="refused" { (message) " (" (error["error"]["code"].as_str().unwrap_or_default()) ")" }
                    @if let Some(detail) = error["error"]["detail"].as_str() { p class="note" { (detail) } }
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wib_times_read_as_utc_plus_seven() {
        // 2024-02-14 07:00 WIB is 2024-02-14 00:00 UTC.
        assert_eq!(wib_seconds("2024-02-14T07:00"), Some(1_707_868_800));
        assert_eq!(wib_seconds("2024-02-14T07:00:30"), Some(1_707_868_830));
        assert_eq!(wib_seconds("2024-13-01T00:00"), None);
        assert_eq!(wib_seconds("kemarin"), None);
        assert_eq!(wib_text(1_707_868_800), "2024-02-14 07:00 WIB");
        assert_eq!(wib_seconds("2024-02-29T23:59"), Some(1_709_225_940));
        assert_eq!(wib_text(1_709_225_940), "2024-02-29 23:59 WIB");
    }
}
