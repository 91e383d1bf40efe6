//! The public results site: server-rendered HTML (maud escapes every value), Indonesian by default and
//! English with `?lang=en`, kept in every link. Every figure carries `data-figure` so tests and
//! monitors can compare it with the API's. Works without JavaScript; no request to any other host.
//!
//! Pages so far: `/` the nation, `/wilayah/{code}` any region (overseas `99` too), `/tps/{code}` a TPS. Numbers come from
//! the same state as the API, read once per request under the state's read lock.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use saksi_election::code::{Code, Level};
use saksi_recap::state::Tally;
use saksi_recap::State as RecapState;

use crate::App;

mod flags;
mod how;
mod lists;
mod map;
mod reports;
mod tps;
mod turnout;
pub(crate) use how::how_to_verify;
pub(crate) use lists::{corrections, disagreements, inflation, rejections, search, SearchIndex};
pub(crate) use reports::file_without_script;
pub(crate) use tps::tps;
pub(crate) use turnout::TurnoutCache;

/// The page's language: Indonesian unless the URL asks for English.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    Id,
    En,
}

#[derive(Deserialize)]
pub(crate) struct LangQuery {
    lang: Option<String>,
    /// The map's measure (`/` only).
    peta: Option<String>,
}

impl Lang {
    fn of(query: &LangQuery) -> Lang {
        match query.lang.as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Id,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    /// `path` (which may carry a query) in this language (Indonesian is the default and needs no
    /// query).
    fn link(self, path: &str) -> String {
        match self {
            Lang::Id => path.to_string(),
            Lang::En if path.contains('?') => format!("{path}&lang=en"),
            Lang::En => format!("{path}?lang=en"),
        }
    }

    /// The same page (`path` without the language) in the other language.
    fn other(self, path: &str) -> (String, &'static str) {
        match self {
            Lang::Id => (Lang::En.link(path), "English"),
            Lang::En => (path.to_string(), "Bahasa Indonesia"),
        }
    }

    fn t(self, id: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Id => id,
            Lang::En => en,
        }
    }

    /// A count with the language's thousands separator (1.234.567 or 1,234,567).
    fn number(self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let separator = self.t(".", ",");
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        if n < 0 {
            out.push('-');
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(separator);
            }
            out.push(c);
        }
        out
    }

    /// `part` of `whole` as a percentage with one decimal, in the language's decimal mark.
    fn percent(self, part: i64, whole: i64) -> String {
        if whole <= 0 {
            return "–".into();
        }
        // Tenths of a percent, rounded half up, in integers (no float formatting differences).
        let tenths = (i128::from(part) * 1000 + i128::from(whole) / 2) / i128::from(whole);
        let mark = self.t(",", ".");
        format!("{}{mark}{}%", tenths / 10, tenths % 10)
    }
}

/// Level names as people say them.
fn level_name(lang: Lang, level: Level) -> &'static str {
    match level {
        Level::Provinsi => lang.t("Provinsi", "Province"),
        Level::KabKota => lang.t("Kabupaten/Kota", "Regency/City"),
        Level::Kecamatan => lang.t("Kecamatan", "District"),
        Level::Desa => lang.t("Kelurahan/Desa", "Village"),
        Level::Tps => "TPS",
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#111;background:#fff;line-height:1.4}\
header,main,footer{max-width:72rem;margin:0 auto;padding:0.75rem 1rem}\
header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:0.5rem;border-bottom:1px solid #ccc}\
header input[type=search]{width:16rem;max-width:100%;padding:0.3rem}nav.site{flex-basis:100%;display:flex;flex-wrap:wrap;gap:0.3rem 1rem}\
.skip{position:absolute;left:-9999px}.skip:focus{left:1rem;top:0.5rem;background:#fff;padding:0.3rem}\
input:focus,select:focus,button:focus,th button:focus{outline:3px solid #e08a00;outline-offset:2px}\
th button{font:inherit;font-weight:700;background:none;border:0;padding:0;cursor:pointer;color:inherit}\
form.filters{margin:0.5rem 0;display:flex;flex-wrap:wrap;gap:0.4rem;align-items:center}\
a{color:#0b4f9c}a:focus{outline:3px solid #e08a00;outline-offset:2px}\
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}\
th,td{padding:0.3rem 0.5rem;border-bottom:1px solid #ddd;text-align:right}\
th:first-child,td:first-child,th.text,td.text{text-align:left}\
.scroll{overflow-x:auto}.note{color:#555;font-size:0.9rem}\
.leader{font-weight:700}.provisional{background:#fff4d6;padding:0.4rem 0.6rem;border-left:4px solid #e08a00}\
nav.crumbs ol{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:0.3rem}\
nav.crumbs li+li::before{content:'›';margin-right:0.3rem;color:#777}\
dl.figures{display:grid;grid-template-columns:1fr max-content;gap:0.2rem 1rem;max-width:36rem}\
dl.figures dd{margin:0;text-align:right;font-variant-numeric:tabular-nums;font-weight:600}\
h1 small{display:block;font-size:1rem;font-weight:400;color:#444}\
.verification{border:2px solid #777;padding:0.5rem 1rem;margin:1rem 0}\
.verification[data-state=verified]{border-color:#1a7f37}.verification[data-state=failed]{border-color:#b42318;background:#fff1f0}\
.verification .outcome{font-weight:600}.vkey,td.key code{word-break:break-all;font-size:0.8rem}\
td.broke{background:#fde2e1;font-weight:700}.sr{position:absolute;left:-9999px}\
code.path{color:#555;font-size:0.8rem}.swatch{display:inline-block;width:0.8em;height:0.8em;margin-right:0.3em;border:1px solid #333}\
figure.map{margin:1rem 0}figure.map svg{max-width:48rem;display:block}figure.map a:focus rect{stroke:#e08a00;stroke-width:3}\
ul.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:0.3rem 1rem;font-size:0.9rem}\
span.share{color:#555;font-size:0.85em}figure.turnout svg{max-width:32rem;display:block}svg.bars{max-width:36rem;display:block;margin:0.5rem 0}pre{white-space:pre-wrap;word-break:break-all}\
figure.map .scroll svg{min-width:34rem}\
ul.photos{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:0.5rem}ul.photos img{border:1px solid #999;image-rendering:pixelated;height:auto}\
table.copies td.broke small{font-weight:400}\
section.reports{margin-top:2rem;border-top:1px solid #ccc}table.report-counts{max-width:28rem}\
ul.report-list{padding-left:1.2rem}ul.report-list blockquote{margin:0.3rem 0 0.8rem;white-space:pre-wrap}\
form.report-form textarea,form.report-form input[type=text]{width:100%;max-width:40rem;box-sizing:border-box}\
#report-outcome:empty{display:none}#report-outcome pre{font-size:0.8rem}\
#live-status{position:fixed;bottom:0.5rem;right:0.5rem;margin:0;max-width:90vw}\
#live-status:not(:empty){background:#fff;border:1px solid #777;padding:0.3rem 0.6rem}\
@media (max-width:480px){th,td{padding:0.25rem 0.3rem}body{font-size:0.95rem}\
dl.figures{grid-template-columns:1fr}dl.figures dd{text-align:left;margin-bottom:0.4rem}}";

fn layout(lang: Lang, path: &str, title: &str, body: Markup) -> Markup {
    let (other_link, other_name) = lang.other(path);
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · saksi" }
                style { (PreEscaped(STYLE)) }
                link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
                script src="/assets/verify.js" defer {}
                script src="/assets/site.js" defer {}
                script src="/assets/lapor.js" defer {}
            }
            body {
                a class="skip" href="#main" { (lang.t("Langsung ke isi", "Skip to content")) }
                header {
                    div class="brand" {
                        a href=(lang.link("/")) { strong { "saksi" } }
                        " " span { (lang.t("Rekapitulasi hasil Pilpres 2024", "Recapitulation of the 2024 presidential election")) }
                    }
                    form role="search" action="/cari" method="get" {
                        label for="q" class="sr" { (lang.t("Cari wilayah atau TPS", "Search a region or TPS")) }
                        input id="q" name="q" type="search" placeholder=(lang.t("Cari wilayah / kode TPS ( / )", "Search region / TPS code ( / )")) aria-keyshortcuts="/";
                        @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
                    }
                    a href=(other_link) hreflang=(match lang { Lang::Id => "en", Lang::En => "id" }) { (other_name) }
                    nav class="site" aria-label=(lang.t("Bagian situs", "Site sections")) {
                        a href=(lang.link("/")) { (lang.t("Nasional", "National")) }
                        a href=(lang.link("/selisih")) { (lang.t("Selisih rekapitulasi", "Discrepancies")) }
                        a href=(lang.link("/ditolak")) { (lang.t("Ditolak", "Rejected")) }
                        a href=(lang.link("/koreksi")) { (lang.t("Koreksi", "Corrections")) }
                        a href=(lang.link("/salinan")) { (lang.t("Salinan saksi", "Witnesses' copies")) }
                        a href=(lang.link("/cara-memeriksa")) { (lang.t("Cara memeriksa", "How to verify")) }
                    }
                }
                main id="main" { (body) }
                footer class="note" {
                    a href=(lang.link("/cara-memeriksa")) { (lang.t("Cara memeriksa", "How to verify")) }
                    " · "
                    (lang.t(
                        "Setiap angka dapat diperiksa ulang dari log publik yang ditandatangani: ",
                        "Every figure can be re-derived from the signed public log: ",
                    ))
                    a href="/log/checkpoint" { "/log/checkpoint" }
                    " · "
                    a href="/api/v1/openapi.json" { "API" }
                }
            }
        }
    }
}

/// Seconds since 1970-01-01 as (year, month, day, seconds into the day): Howard Hinnant's
/// civil-from-days algorithm.
fn civil(seconds: i64) -> (i64, i64, i64, i64) {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day, rest)
}

/// Now, as an RFC 3339 timestamp and as people read it (UTC; a checkpoint carries no time of its
/// own, so a page says when it was made).
fn utc_now() -> (String, String) {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (year, month, day, rest) = civil(seconds);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    (
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
        format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC"),
    )
}

/// A 404 page saying what was not found and why, in the page's language.
fn not_found(lang: Lang, title: &str, why: &str) -> Response {
    let body = html! { h1 { (title) } p { (why) } };
    let page = layout(lang, "/", lang.t("Tidak ditemukan", "Not found"), body);
    (StatusCode::NOT_FOUND, html_response(page)).into_response()
}

fn html_response(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// The candidate pairs' names by position, for the headline table.
fn pair_names(state: &RecapState) -> Vec<String> {
    state
        .election()
        .and_then(|e| e.contests.first())
        .map(|c| c.candidates.iter().map(|p| p.name.clone()).collect())
        .unwrap_or_default()
}

/// Colour-blind-safe colours (Okabe and Ito) by ballot position; every use also says the number.
const PAIR_COLOURS: [&str; 8] = [
    "#E69F00", "#0072B2", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000",
];

fn pair_colour(i: usize) -> &'static str {
    PAIR_COLOURS[i % PAIR_COLOURS.len()]
}

/// What the lists say about a region (or the nation): their counts, and where the lists are.
pub(crate) struct ListCounts {
    pub corrections: usize,
    /// `None` while the discrepancy list could not be built.
    pub discrepancies: Option<usize>,
    /// The region code the lists are filtered by (`None`: the nation).
    pub region: Option<Code>,
}

impl ListCounts {
    async fn of(app: &App, region: Option<Code>) -> ListCounts {
        let within = |code: &str| region.is_none_or(|r| code.starts_with(r.as_str()));
        let discrepancies = crate::pages::discrepancy_view(app)
            .await
            .ok()
            .map(|view| view.items.iter().filter(|(_, r, _)| within(r)).count());
        let corrections = app
            .shared
            .state
            .read()
            .expect("not poisoned")
            .corrections
            .iter()
            .filter(|(_, tps)| within(tps.as_str()))
            .count();
        ListCounts {
            corrections,
            discrepancies,
            region,
        }
    }

    fn link(&self, lang: Lang, list: &str) -> String {
        match self.region {
            Some(code) => lang.link(&format!("{list}?wilayah={}", code.as_str())),
            None => lang.link(list),
        }
    }
}

/// Horizontal bars of the pairs' shares, drawn by the server (the table above is the accessible
/// alternative, so the chart is hidden from screen readers).
fn share_bars(lang: Lang, positions: &[String], tally: &Tally) -> Markup {
    const ROW_HEIGHT: usize = 28;
    let height = ROW_HEIGHT * positions.len().max(1);
    html! {
        svg class="bars" viewBox=(format!("0 0 400 {height}")) width="100%" preserveAspectRatio="xMinYMin meet" aria-hidden="true" {
            @for (i, position) in positions.iter().enumerate() {
                @let votes = tally.votes.get(i).copied().unwrap_or(0);
                @let width = if tally.valid > 0 { 300.0 * votes as f64 / tally.valid as f64 } else { 0.0 };
                @let y = i * ROW_HEIGHT;
                text x="0" y=(y + 18) font-size="14" { (position) }
                rect x="28" y=(y + 4) width=(format!("{width:.1}")) height="18" fill=(pair_colour(i)) {}
                text x=(format!("{:.1}", 34.0 + width)) y=(y + 18) font-size="13" { (lang.percent(votes, tally.valid)) }
            }
        }
    }
}

/// The headline of a region: votes and shares per pair (the leader marked in words, not colour
/// alone), progress, valid, invalid, turnout, rejected entries, corrections and discrepancies with
/// links to their lists. Each block is replaced in place by the live updates (`data-live-html`).
fn totals(
    lang: Lang,
    state: &RecapState,
    tally: &Tally,
    checkpoint_size: u64,
    lists: &ListCounts,
) -> Markup {
    let positions = state.positions();
    let names = pair_names(state);
    let leader = tally
        .votes
        .iter()
        .enumerate()
        .max_by_key(|(_, v)| **v)
        .filter(|(_, v)| **v > 0)
        .map(|(i, _)| i);
    let vote = |i: usize| tally.votes.get(i).copied().unwrap_or(0);
    html! {
        p class="provisional" data-live=(checkpoint_size) data-live-html="progress" {
            strong { (lang.t("Sementara: ", "Provisional: ")) }
            span data-figure="tps_reported" { (lang.number(tally.tps_reported as i64)) }
            " / "
            span data-figure="tps_total" { (lang.number(tally.tps_total as i64)) }
            (lang.t(" TPS terhitung (", " TPS counted ("))
            (lang.percent(tally.tps_reported as i64, tally.tps_total as i64))
            "). "
            (lang.t("Mencerminkan log sampai entri ke-", "Reflects the log up to entry "))
            a href="/log/checkpoint" data-figure="checkpoint_size" { (checkpoint_size) }
            @let now = utc_now();
            (lang.t(", pada ", ", as of ")) time datetime=(now.0) { (now.1) } "."
        }
        p id="live-status" class="note" aria-live="polite" {}
        div class="scroll" data-live-html="headline" {
            table {
                caption { (lang.t("Perolehan suara per pasangan calon", "Votes per candidate pair")) }
                thead { tr {
                    th scope="col" { (lang.t("Pasangan", "Pair")) }
                    th scope="col" { (lang.t("Suara", "Votes")) }
                    th scope="col" { abbr title=(lang.t("Persentase suara sah", "Share of valid votes")) { "%" } }
                } }
                tbody {
                    @for (i, position) in positions.iter().enumerate() {
                        tr class=[(leader == Some(i)).then_some("leader")] {
                            th scope="row" {
                                span class="swatch" style=(format!("background:{}", pair_colour(i))) {}
                                (position) " " (names.get(i).map(String::as_str).unwrap_or(""))
                                @if leader == Some(i) { " — " (lang.t("unggul", "leading")) }
                            }
                            td data-figure=(format!("votes.{position}")) { (lang.number(vote(i))) }
                            td { (lang.percent(vote(i), tally.valid)) }
                        }
                    }
                }
            }
            (share_bars(lang, positions, tally))
        }
        dl class="figures" data-live-html="figures" {
            dt { (lang.t("Suara sah", "Valid votes")) }
            dd data-figure="valid" { (lang.number(tally.valid)) }
            dt { (lang.t("Suara tidak sah", "Invalid votes")) }
            dd data-figure="invalid" { (lang.number(tally.invalid)) }
            dt { (lang.t("Partisipasi di TPS terhitung (pengguna hak pilih / DPT)", "Turnout at counted TPS (voters / registered)")) }
            dd { (lang.number(tally.voters)) " / " (lang.number(tally.dpt)) " (" (lang.percent(tally.voters, tally.dpt)) ")" }
            dt { a href=(lists.link(lang, "/ditolak")) { (lang.t("Formulir ditolak (tercatat di log)", "Rejected forms (in the log)")) } }
            dd data-figure="rejected_entries" { (lang.number(tally.rejected_entries as i64)) }
            dt { a href=(lists.link(lang, "/koreksi")) { (lang.t("Koreksi", "Corrections")) } }
            dd data-figure="corrections" { (lang.number(lists.corrections as i64)) }
            dt { a href=(lists.link(lang, "/selisih")) { (lang.t("Selisih rekapitulasi dengan jumlah di bawahnya", "Recapitulation figures differing from the sum below")) } }
            dd data-figure="discrepancies" { @match lists.discrepancies { Some(n) => (lang.number(n as i64)), None => "–" } }
            dt { a href=(lists.link(lang, "/salinan")) { (lang.t("TPS dengan salinan saksi yang berbeda dari hasil resmi", "TPS where a poll witness's copy differs from the official result")) } }
            dd data-figure="tps_disagreeing" {
                (lang.number(tally.copies.tps_disagreeing as i64))
                span class="share" { " / " (lang.number(tally.copies.tps_with_copies as i64)) (lang.t(" dengan salinan", " with copies")) }
            }
            dt { (lang.t("TPS yang hanya dilaporkan saksi", "TPS reported only by poll witnesses")) }
            dd data-figure="tps_witness_only" { (lang.number(tally.copies.tps_witness_only as i64)) }
        }
    }
}

/// The table of a region's child regions, each row linking down.
fn children_table(lang: Lang, state: &RecapState, children: &[Code]) -> Markup {
    let positions = state.positions();
    let child_level = children
        .first()
        .map(|c| c.level())
        .unwrap_or(Level::Provinsi);
    html! {
        div class="scroll" {
            table class="sortable" {
                caption { (level_name(lang, child_level)) }
                thead { tr {
                    th scope="col" { (lang.t("Wilayah", "Region")) }
                    @for position in positions { th scope="col" { (position) } }
                    th scope="col" { (lang.t("Sah", "Valid")) }
                    th scope="col" { (lang.t("TPS terhitung", "TPS counted")) }
                    th scope="col" { (lang.t("Ditolak", "Rejected")) }
                } }
                tbody {
                    @for child in children {
                        @let tally = state.tally(*child).cloned().unwrap_or_default();
                        tr data-code=(child.as_str()) {
                            th scope="row" {
                                a href=(lang.link(&format!("/wilayah/{}", child.as_str()))) {
                                    (state.registry.region_name(*child).unwrap_or(child.as_str()))
                                }
                            }
                            @for (i, _) in positions.iter().enumerate() {
                                td { (lang.number(tally.votes.get(i).copied().unwrap_or(0)))
                                     br; span class="share" { (lang.percent(tally.votes.get(i).copied().unwrap_or(0), tally.valid)) } }
                            }
                            td { (lang.number(tally.valid)) }
                            td { (lang.number(tally.tps_reported as i64)) " / " (lang.number(tally.tps_total as i64)) }
                            td { (lang.number(tally.rejected_entries as i64)) }
                        }
                    }
                }
            }
        }
    }
}

/// The TPS of a kelurahan/desa: each with its current result's votes, linking to its page.
fn tps_table(lang: Lang, state: &RecapState, tps: &[Code]) -> Markup {
    let positions = state.positions();
    html! {
        div class="scroll" {
            table class="sortable" {
                caption { "TPS" }
                thead { tr {
                    th scope="col" { "TPS" }
                    @for position in positions { th scope="col" { (position) } }
                    th scope="col" { (lang.t("Sah", "Valid")) }
                    th scope="col" { (lang.t("Entri di log", "Log entries")) }
                } }
                tbody {
                    @for code in tps {
                        @let record = state.tps_record(*code);
                        @let counts = record.and_then(|r| r.counts.as_ref());
                        // A counted figure names its entry, for the reader's browser to check, where
                        // the entry states every figure (a transcription may lack some, shown as 0).
                        @let entry = record.and_then(|r| r.current).filter(|_| counts.is_some_and(fully_reported));
                        tr data-code=(code.as_str()) {
                            th scope="row" {
                                a href=(lang.link(&format!("/tps/{}", code.as_str()))) { (code.as_str()) }
                            }
                            @for (i, position) in positions.iter().enumerate() {
                                td data-entry=[entry] data-field=[entry.map(|_| format!("votes.{position}"))] { @if let Some(c) = counts { (lang.number(c.votes.get(i).copied().unwrap_or(0))) } @else { "–" } }
                            }
                            td data-entry=[entry] data-field=[entry.map(|_| "valid")] { @if let Some(c) = counts { (lang.number(c.valid)) } @else { "–" } }
                            td { (record.map_or(0, |r| r.history.len())) }
                        }
                    }
                }
            }
        }
    }
}

/// Whether a counted result states every figure the tallies take from it.
fn fully_reported(counts: &saksi_recap::state::Counts) -> bool {
    let u = &counts.unreported;
    u.votes == 0 && u.valid == 0 && u.invalid == 0 && u.voters == 0
}

/// `/`: the nation.
pub(crate) async fn nation(State(app): State<App>, Query(query): Query<LangQuery>) -> Response {
    let lang = Lang::of(&query);
    let lists = ListCounts::of(&app, None).await;
    let measure = map::Measure::parse(query.peta.as_deref());
    let checkpoint_size = app.shared.published().checkpoint.size;
    let state = app.shared.state.read().expect("not poisoned");
    let body = html! {
        h1 { (lang.t("Hasil nasional", "National results")) }
        (totals(lang, &state, state.national(), checkpoint_size, &lists))
        (turnout::chart(lang, &app.turnout.of(&state, None)))
        (map::province_map(lang, &state, measure))
        h2 { (lang.t("Per provinsi", "By province")) }
        (children_table(lang, &state, state.provinces()))
        (csv_link(lang, "/csv/nasional"))
        (reports::section(lang, &app, &state, None))
    };
    let path = match measure {
        map::Measure::Leader => "/".to_string(),
        other => format!("/?peta={}", other.key()),
    };
    html_response(layout(
        lang,
        &path,
        lang.t("Hasil nasional", "National results"),
        body,
    ))
}

/// `/wilayah/{code}`: any region, with breadcrumbs up to the nation.
pub(crate) async fn region(
    State(app): State<App>,
    Path(code): Path<String>,
    Query(query): Query<LangQuery>,
) -> Response {
    let lang = Lang::of(&query);
    let not_found = |why: &str| {
        let body =
            html! { h1 { (lang.t("Wilayah tidak ditemukan", "No such region")) } p { (why) } };
        let page = layout(lang, "/", lang.t("Tidak ditemukan", "Not found"), body);
        (StatusCode::NOT_FOUND, html_response(page)).into_response()
    };
    let Ok(code) = Code::parse(&code) else {
        return not_found(lang.t("Kode wilayah tidak sah.", "Not a region code."));
    };
    if code.level() == Level::Tps {
        return not_found(lang.t(
            "Ini kode TPS, bukan wilayah.",
            "This is a TPS code, not a region.",
        ));
    }
    let lists = ListCounts::of(&app, Some(code)).await;
    let checkpoint_size = app.shared.published().checkpoint.size;
    let state = app.shared.state.read().expect("not poisoned");
    let (Some(name), Some(tally)) = (state.registry.region_name(code), state.tally(code)) else {
        return not_found(lang.t(
            "Wilayah ini tidak terdaftar.",
            "This region is not registered.",
        ));
    };
    let path = format!("/wilayah/{}", code.as_str());
    let children = state.children(code);
    let body = html! {
        (breadcrumbs(lang, &state, code, name))
        h1 { (name) " " small { "(" (level_name(lang, code.level())) " " (code.as_str()) ")" } }
        (totals(lang, &state, tally, checkpoint_size, &lists))
        (turnout::chart(lang, &app.turnout.of(&state, Some(code))))
        @if code.level() == Level::Desa {
            (tps::verification_box(lang, &app.shared.vkey, tps::Checks::DesaSum))
            (tps_table(lang, &state, children))
        } @else {
            p class="note" { (lang.t(
                "Angka wilayah ini adalah jumlah yang dihitung server dari log. Peramban Anda memeriksa setiap TPS di halamannya dan setiap kelurahan/desa terhadap TPS-nya; seluruh jumlah diperiksa dengan `saksi verify` (lihat Cara memeriksa).",
                "This region's figures are sums the server computed from the log. Your browser checks each TPS on its page and each village against its TPS; all sums are checked by `saksi verify` (see How to verify).",
            )) }
            (children_table(lang, &state, children))
        }
        (csv_link(lang, &format!("/csv/wilayah/{}", code.as_str())))
        (flags::region_section(lang, &app, code))
        (reports::section(lang, &app, &state, Some(code)))
    };
    html_response(layout(lang, &path, name, body))
}

/// A CSV field: quoted when it holds a separator, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The children table of a page as CSV, exactly its figures (without separators): regions with
/// their tallies, or a desa's TPS with their counted results.
fn children_csv(state: &RecapState, children: &[Code]) -> String {
    let positions = state.positions();
    let mut out = String::new();
    let tps = children.first().is_some_and(|c| c.level() == Level::Tps);
    let votes_header: Vec<String> = positions.iter().map(|p| format!("votes_{p}")).collect();
    if tps {
        out.push_str(&format!(
            "code,{},valid,invalid,voters,entries\n",
            votes_header.join(",")
        ));
    } else {
        let share_header: Vec<String> = positions.iter().map(|p| format!("share_{p}")).collect();
        out.push_str(&format!(
            "code,name,{},{},valid,invalid,voters,dpt,tps_reported,tps_total,rejected_entries\n",
            votes_header.join(","),
            share_header.join(",")
        ));
    }
    for child in children {
        let mut row = vec![child.as_str().to_string()];
        if tps {
            let record = state.tps_record(*child);
            match record.and_then(|r| r.counts.as_ref()) {
                Some(c) => {
                    row.extend(
                        (0..positions.len())
                            .map(|i| c.votes.get(i).copied().unwrap_or(0).to_string()),
                    );
                    row.extend([c.valid, c.invalid, c.voters].map(|n| n.to_string()));
                }
                None => row.extend(std::iter::repeat_n(String::new(), positions.len() + 3)),
            }
            row.push(record.map_or(0, |r| r.history.len()).to_string());
        } else {
            let tally = state.tally(*child).cloned().unwrap_or_default();
            row.push(csv_field(state.registry.region_name(*child).unwrap_or("")));
            row.extend(
                (0..positions.len()).map(|i| tally.votes.get(i).copied().unwrap_or(0).to_string()),
            );
            // Shares as the table shows them (percent, one decimal, half up), with a point.
            row.extend((0..positions.len()).map(|i| {
                Lang::En
                    .percent(tally.votes.get(i).copied().unwrap_or(0), tally.valid)
                    .trim_end_matches('%')
                    .replace('–', "")
            }));
            row.extend(
                [tally.valid, tally.invalid, tally.voters, tally.dpt].map(|n| n.to_string()),
            );
            row.extend(
                [tally.tps_reported, tally.tps_total, tally.rejected_entries]
                    .map(|n| n.to_string()),
            );
        }
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn csv_response(name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"saksi-{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// `/csv/nasional`: the provinces table of `/` as CSV.
pub(crate) async fn nation_csv(State(app): State<App>) -> Response {
    let state = app.shared.state.read().expect("not poisoned");
    csv_response("nasional", children_csv(&state, state.provinces()))
}

/// `/csv/wilayah/{code}`: the children table of `/wilayah/{code}` as CSV.
pub(crate) async fn region_csv(State(app): State<App>, Path(code): Path<String>) -> Response {
    let state = app.shared.state.read().expect("not poisoned");
    match Code::parse(&code) {
        Ok(code) if code.level() != Level::Tps && state.tally(code).is_some() => {
            csv_response(code.as_str(), children_csv(&state, state.children(code)))
        }
        _ => (StatusCode::NOT_FOUND, "no such region\n").into_response(),
    }
}

fn csv_link(lang: Lang, href: &str) -> Markup {
    html! {
        p { a href=(href) download { (lang.t("Unduh tabel ini (CSV)", "Download this table (CSV)")) } }
    }
}

/// From the nation down to `code`'s parent, each linking to its page, then `name`.
fn breadcrumbs(lang: Lang, state: &RecapState, code: Code, name: &str) -> Markup {
    let mut ancestors = Vec::new();
    let mut up = code.parent();
    while let Some(parent) = up {
        ancestors.push(parent);
        up = parent.parent();
    }
    ancestors.reverse();
    html! {
        nav class="crumbs" aria-label=(lang.t("Jejak wilayah", "Breadcrumbs")) {
            ol {
                li { a href=(lang.link("/")) { (lang.t("Nasional", "National")) } }
                @for ancestor in &ancestors {
                    li { a href=(lang.link(&format!("/wilayah/{}", ancestor.as_str()))) {
                        (state.registry.region_name(*ancestor).unwrap_or(ancestor.as_str()))
                    } }
                }
                li aria-current="page" { (name) }
            }
        }
    }
}

/// The site's scripts, compiled into the binary (no request to any other host, no build step).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "verify.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/verify.js"),
    ),
    (
        "site.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/site.js"),
    ),
    (
        "lapor.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/lapor.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../assets/icon.svg"),
    ),
];

/// `/assets/{name}`: a script or the icon of the site.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // Short: a new binary may change the script under the same name.
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_shares_in_both_languages() {
        assert_eq!(Lang::Id.number(1_234_567), "1.234.567");
        assert_eq!(Lang::En.number(1_234_567), "1,234,567");
        assert_eq!(Lang::En.number(999), "999");
        assert_eq!(Lang::En.number(-1000), "-1,000");
        assert_eq!(Lang::Id.percent(1, 3), "33,3%");
        assert_eq!(Lang::En.percent(2, 3), "66.7%");
        assert_eq!(Lang::En.percent(1, 0), "–");
    }

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("Aceh"), "Aceh");
        assert_eq!(csv_field("Kota A, B"), "\"Kota A, B\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
    }
}
