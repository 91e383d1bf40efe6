//! The site's lists, each filterable by region and paged: `/selisih` every recapitulation figure
//! against the sum below it (the API's discrepancy items, rendered), `/ditolak` every rejected TPS
//! entry with its rules, `/koreksi` every correction with its reason. And `/cari`, the search by
//! region name or code and TPS code.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use saksi_election::code::{Code, Level};
use saksi_election::rules;
use saksi_recap::entry::Entry;

use super::{html_response, layout, level_name, Lang};
use crate::App;

/// Rows per page of a list: a page stays far below the 100 KB budget (a row is ~300 bytes).
const ROWS_PER_PAGE: usize = 100;
/// Search answers shown at most: a person refines the query rather than reads more.
const SEARCH_RESULTS_MAX: usize = 50;
/// A name query shorter than this matches most of the country ("a": 75,864 of 91,756 names) and
/// helps nobody; codes may be as short as a province's two digits.
const QUERY_CHARS_MIN: usize = 2;
/// A query longer than any region name is not one.
const QUERY_BYTES_MAX: usize = 100;

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    lang: Option<String>,
    /// A region code: only entries of TPS within it (or discrepancies of regions within it).
    wilayah: Option<String>,
    /// A rule code (rejections only).
    aturan: Option<String>,
    /// A recapitulation level (discrepancies only).
    tingkat: Option<String>,
    halaman: Option<usize>,
    q: Option<String>,
}

impl ListQuery {
    fn lang(&self) -> Lang {
        if self.lang.as_deref() == Some("en") {
            Lang::En
        } else {
            Lang::Id
        }
    }

    fn region(&self) -> Option<&str> {
        self.wilayah
            .as_deref()
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
    }

    fn page(&self) -> usize {
        self.halaman.unwrap_or(1).max(1)
    }

    /// This list's URL with the filters kept, `page`, and the language.
    fn link(&self, path: &str, page: usize) -> String {
        self.lang().link(&self.path(path, page))
    }

    /// [`ListQuery::link`] without the language (the layout adds it).
    fn path(&self, path: &str, page: usize) -> String {
        let mut parts = Vec::new();
        if let Some(w) = self.region() {
            parts.push(format!("wilayah={w}"));
        }
        if let Some(a) = self.aturan.as_deref().filter(|a| !a.is_empty()) {
            parts.push(format!(
                "aturan={}",
                a.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "")
            ));
        }
        if let Some(t) = self.tingkat.as_deref().filter(|t| !t.is_empty()) {
            parts.push(format!(
                "tingkat={}",
                t.replace(|c: char| !c.is_ascii_alphanumeric(), "")
            ));
        }
        if page > 1 {
            parts.push(format!("halaman={page}"));
        }
        if parts.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", parts.join("&"))
        }
    }
}

/// "Rows a–b of n" and the links to the neighbouring pages.
fn pager(lang: Lang, query: &ListQuery, path: &str, total: usize) -> Markup {
    let page = query.page();
    let pages = total.div_ceil(ROWS_PER_PAGE).max(1);
    let first = (page - 1) * ROWS_PER_PAGE;
    html! {
        nav class="pager" aria-label=(lang.t("Halaman", "Pages")) {
            @if total == 0 {
                p data-figure="rows" { (lang.t("Tidak ada.", "None.")) }
            } @else {
                p {
                    (lang.t("Baris ", "Rows ")) (lang.number((first + 1).min(total) as i64)) "–"
                    (lang.number((first + ROWS_PER_PAGE).min(total) as i64)) (lang.t(" dari ", " of "))
                    span data-figure="rows" { (lang.number(total as i64)) }
                    @if page > 1 { " · " a href=(query.link(path, page - 1)) rel="prev" { (lang.t("‹ sebelumnya", "‹ previous")) } }
                    @if page < pages { " · " a href=(query.link(path, page + 1)) rel="next" { (lang.t("berikutnya ›", "next ›")) } }
                }
            }
        }
    }
}

/// The region filter: the provinces to choose from, or the region the URL names.
fn region_select(lang: Lang, state: &saksi_recap::State, chosen: Option<&str>) -> Markup {
    let chosen_code = chosen.and_then(|c| Code::parse(c).ok());
    html! {
        label for="wilayah" { (lang.t("Wilayah ", "Region ")) }
        select id="wilayah" name="wilayah" {
            option value="" { (lang.t("Seluruh Indonesia", "All of Indonesia")) }
            @if let Some(code) = chosen_code.filter(|c| c.level() != Level::Provinsi) {
                option value=(code.as_str()) selected { (state.registry.region_name(code).unwrap_or(code.as_str())) " (" (code.as_str()) ")" }
            }
            @for province in state.provinces() {
                option value=(province.as_str()) selected[chosen_code == Some(*province)] {
                    (state.registry.region_name(*province).unwrap_or(province.as_str()))
                }
            }
        }
    }
}

fn filter_form(lang: Lang, extra: Markup) -> Markup {
    html! {
        form class="filters" method="get" {
            (extra)
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            " " button type="submit" { (lang.t("Saring", "Filter")) }
        }
    }
}

fn tps_link(lang: Lang, state: &saksi_recap::State, tps: Code) -> Markup {
    html! {
        a href=(lang.link(&format!("/tps/{}", tps.as_str()))) { (tps.as_str()) }
        @if let Some(desa) = tps.parent().and_then(|d| state.registry.region_name(d)) {
            br; span class="note" { (desa) }
        }
    }
}

/// `/ditolak`: every rejected TPS entry, newest first.
pub(crate) async fn rejections(State(app): State<App>, Query(query): Query<ListQuery>) -> Response {
    let lang = query.lang();
    let state = app.shared.state.read().expect("not poisoned");
    let region = query.region();
    let rule = query.aturan.as_deref().filter(|a| !a.is_empty());
    let rejected: Vec<(u64, Code, &saksi_recap::state::HistoryItem)> = state
        .rejections
        .iter()
        .rev()
        .filter(|(_, tps)| region.is_none_or(|r| tps.as_str().starts_with(r)))
        .filter_map(|(index, tps)| {
            let item = state
                .tps_record(*tps)?
                .history
                .iter()
                .find(|h| h.index == *index)?;
            Some((*index, *tps, item))
        })
        .filter(|(_, _, item)| rule.is_none_or(|r| item.verdict.rejected_by.iter().any(|c| c == r)))
        .collect();
    let title = lang.t("Formulir ditolak", "Rejected forms");
    let body = html! {
        h1 { (title) }
        p { (lang.t(
            "Setiap formulir TPS yang melanggar aturan tetap tercatat di log bersama putusannya, dan tidak dihitung.",
            "Every TPS form that broke a rule stays in the log with its verdict, and is not counted.",
        )) }
        (filter_form(lang, html! {
            (region_select(lang, &state, region)) " "
            label for="aturan" { (lang.t("Aturan ", "Rule ")) }
            select id="aturan" name="aturan" {
                option value="" { (lang.t("Semua aturan", "Every rule")) }
                @for r in rules::RULES {
                    option value=(r.code) selected[rule == Some(r.code)] { (r.code) }
                }
            }
        }))
        (pager(lang, &query, "/ditolak", rejected.len()))
        div class="scroll" {
            table class="sortable" {
                thead { tr {
                    th scope="col" { (lang.t("Entri", "Entry")) }
                    th scope="col" class="text" { "TPS" }
                    th scope="col" class="text" { (lang.t("Sumber", "Source")) }
                    th scope="col" class="text" { (lang.t("Aturan yang dilanggar", "Rules broken")) }
                } }
                tbody {
                    @for (index, tps, item) in rejected.iter().skip((query.page() - 1) * ROWS_PER_PAGE).take(ROWS_PER_PAGE) {
                        tr data-index=(index) {
                            td { a href=(format!("/api/v1/entries/{index}")) { (index) } }
                            td class="text" { (tps_link(lang, &state, *tps)) }
                            td class="text" { (super::tps::source_name(lang, item.source)) }
                            td class="text" {
                                @for code in &item.verdict.rejected_by {
                                    span data-rule=(code) title=[rules::rule(code).map(|r| lang.t(r.id, r.en))] { code { (code) } } " "
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(layout(
        lang,
        &query.path("/ditolak", query.page()),
        title,
        body,
    ))
}

/// `/koreksi`: every correction, newest first, with the reason its signer gave.
pub(crate) async fn corrections(
    State(app): State<App>,
    Query(query): Query<ListQuery>,
) -> Response {
    let lang = query.lang();
    let region = query.region().map(str::to_string);
    let (shown, total) = {
        let state = app.shared.state.read().expect("not poisoned");
        let all: Vec<(u64, Code)> = state
            .corrections
            .iter()
            .rev()
            .filter(|(_, tps)| {
                region
                    .as_deref()
                    .is_none_or(|r| tps.as_str().starts_with(r))
            })
            .copied()
            .collect();
        let shown: Vec<(u64, Code, bool)> = all
            .iter()
            .skip((query.page() - 1) * ROWS_PER_PAGE)
            .take(ROWS_PER_PAGE)
            .map(|(index, tps)| {
                let accepted = state
                    .tps_record(*tps)
                    .and_then(|r| r.history.iter().find(|h| h.index == *index))
                    .is_some_and(|h| h.verdict.accepted);
                (*index, *tps, accepted)
            })
            .collect();
        (shown, all.len())
    };
    // The reasons are in the entries: one read each, for this page's rows only.
    let shared = app.shared.clone();
    let indexes: Vec<u64> = shown.iter().map(|(i, _, _)| *i).collect();
    let reasons: Vec<String> = tokio::task::spawn_blocking(move || {
        indexes
            .iter()
            .map(
                |i| match shared.entry(*i).ok().and_then(|b| Entry::decode(&b).ok()) {
                    Some(Entry::Form { form, .. }) => {
                        form.form.correction.map(|c| c.reason).unwrap_or_default()
                    }
                    _ => String::new(),
                },
            )
            .collect()
    })
    .await
    .unwrap_or_default();
    let state = app.shared.state.read().expect("not poisoned");
    let title = lang.t("Koreksi", "Corrections");
    let body = html! {
        h1 { (title) }
        p { (lang.t(
            "Hasil TPS hanya berubah melalui koreksi yang ditandatangani komisi yang berwenang, dengan alasannya; versi sebelumnya tetap di log.",
            "A TPS result changes only by a correction signed by a competent commission, with its reason; the earlier version stays in the log.",
        )) }
        (filter_form(lang, region_select(lang, &state, region.as_deref())))
        (pager(lang, &query, "/koreksi", total))
        div class="scroll" {
            table class="sortable" {
                thead { tr {
                    th scope="col" { (lang.t("Entri", "Entry")) }
                    th scope="col" class="text" { "TPS" }
                    th scope="col" class="text" { (lang.t("Putusan", "Verdict")) }
                    th scope="col" class="text" { (lang.t("Alasan", "Reason")) }
                } }
                tbody {
                    @for ((index, tps, accepted), reason) in shown.iter().zip(reasons.iter().chain(std::iter::repeat(&String::new()))) {
                        tr data-index=(index) {
                            td { a href=(format!("/api/v1/entries/{index}")) { (index) } }
                            td class="text" { (tps_link(lang, &state, *tps)) }
                            td class="text" { @if *accepted { (lang.t("diterima", "accepted")) } @else { strong { (lang.t("ditolak", "rejected")) } } }
                            td class="text" { (reason) }
                        }
                    }
                }
            }
        }
    };
    html_response(layout(
        lang,
        &query.path("/koreksi", query.page()),
        title,
        body,
    ))
}

/// `/salinan`: TPS where a poll witness's latest copy disagrees with the official result, in TPS
/// code order, each copy's differing fields with both values; `?wilayah=` filters by region.
pub(crate) async fn disagreements(
    State(app): State<App>,
    Query(query): Query<ListQuery>,
) -> Response {
    let lang = query.lang();
    let region = query.region().map(str::to_string);
    let state = app.shared.state.read().expect("not poisoned");
    let positions = state.positions();
    let prefix = region.clone().unwrap_or_default();
    let all: Vec<Code> = state
        .disagreeing
        .iter()
        .filter(|tps| tps.as_str().starts_with(&prefix))
        .copied()
        .collect();
    let shown: Vec<Code> = all
        .iter()
        .skip((query.page() - 1) * ROWS_PER_PAGE)
        .take(ROWS_PER_PAGE)
        .copied()
        .collect();
    let tally = match region.as_deref().and_then(|r| Code::parse(r).ok()) {
        Some(code) => state.tally(code).cloned().unwrap_or_default(),
        None => state.national().clone(),
    };
    let title = lang.t(
        "TPS dengan salinan saksi yang berbeda",
        "TPS where a poll witness's copy differs",
    );
    let body = html! {
        h1 { (title) }
        p { (lang.t(
            "Saksi peserta di TPS menerima salinan C.Hasil dan dapat mengirimkannya, ditandatangani. Setiap salinan dicatat di log dan dibandingkan, angka demi angka, dengan hasil resmi TPS; salinan tidak pernah menggantikan hasil resmi.",
            "Each participant's poll witness at a TPS receives a copy of the C.Hasil and may send it, signed. Every copy is logged and compared, figure by figure, with the TPS's official result; a copy never replaces the official result.",
        )) }
        dl class="figures" {
            dt { (lang.t("TPS dengan salinan", "TPS with copies")) }
            dd data-figure="tps_with_copies" { (lang.number(tally.copies.tps_with_copies as i64)) }
            dt { (lang.t("TPS dengan salinan yang berbeda", "TPS where a copy differs")) }
            dd data-figure="tps_disagreeing" { (lang.number(tally.copies.tps_disagreeing as i64)) }
            @for (i, position) in positions.iter().enumerate() {
                dt { (lang.t("… menurut saksi pasangan ", "… per the witnesses of pair ")) (position) }
                dd data-figure=(format!("tps_disagreeing.{position}")) { (lang.number(tally.copies.disagreeing_by_participant.get(i).copied().unwrap_or(0) as i64)) }
            }
            dt { (lang.t("TPS yang hanya dilaporkan saksi (belum ada hasil resmi diterima)", "TPS only witnesses have reported (no accepted official result yet)")) }
            dd data-figure="tps_witness_only" { (lang.number(tally.copies.tps_witness_only as i64)) }
        }
        (filter_form(lang, region_select(lang, &state, region.as_deref())))
        (pager(lang, &query, "/salinan", all.len()))
        div class="scroll" {
            table class="sortable" {
                thead { tr {
                    th scope="col" class="text" { "TPS" }
                    th scope="col" class="text" { (lang.t("Peserta", "Participant")) }
                    th scope="col" { (lang.t("Entri resmi / salinan", "Official / copy entry")) }
                    th scope="col" class="text" { (lang.t("Angka yang berbeda: resmi → salinan", "Differing figures: official → copy")) }
                } }
                tbody {
                    @for tps in &shown {
                        @let official = state.tps_record(*tps).and_then(|r| r.current);
                        @for (copy, differences) in state.latest_copies(*tps) {
                            @if let Some(differences) = differences.filter(|d| !d.is_empty()) {
                                tr data-tps=(tps.as_str()) {
                                    td class="text" { (tps_link(lang, &state, *tps)) }
                                    td class="text" { (positions.get(copy.participant).map_or("?", String::as_str)) }
                                    td { (official.map_or("–".to_string(), |i| i.to_string())) " / " a href=(format!("/api/v1/entries/{}", copy.index)) { (copy.index) } }
                                    td class="text" {
                                        @for (n, d) in differences.iter().enumerate() {
                                            @if n > 0 { "; " }
                                            code { (d.field) } " " (lang.number(d.official)) " → " strong { (lang.number(d.copy)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(layout(
        lang,
        &query.path("/salinan", query.page()),
        title,
        body,
    ))
}

fn kind_name(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "votes_added" => lang.t("suara ditambahkan", "votes added"),
        "votes_removed" => lang.t("suara dikurangi", "votes removed"),
        "votes_moved" => lang.t(
            "suara dipindahkan antarpasangan",
            "votes moved between pairs",
        ),
        "valid_invalid_shift" => lang.t("pergeseran sah/tidak sah", "valid/invalid shift"),
        "voters_changed" => lang.t("jumlah pemilih berubah", "voters changed"),
        _ => lang.t("lainnya", "other"),
    }
}

fn recap_level_name(lang: Lang, level: &str) -> &'static str {
    match level {
        "kecamatan" => lang.t("Kecamatan", "District"),
        "kabkota" => lang.t("Kabupaten/Kota", "Regency/City"),
        "provinsi" => lang.t("Provinsi", "Province"),
        _ => lang.t("Nasional", "National"),
    }
}

/// `/selisih`: every recapitulation figure that differs from the sum of the level below, largest
/// first, as the API's `/api/v1/discrepancies` gives them.
pub(crate) async fn inflation(State(app): State<App>, Query(query): Query<ListQuery>) -> Response {
    let lang = query.lang();
    let view = match crate::pages::discrepancy_view(&app).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    let region = query.region();
    let level = query.tingkat.as_deref().filter(|t| !t.is_empty());
    let items: Vec<Value> = view
        .items
        .iter()
        .filter(|(l, _, _)| level.is_none_or(|want| want == *l))
        .filter(|(_, r, _)| region.is_none_or(|want| r.starts_with(want)))
        .filter_map(|(_, _, json)| serde_json::from_str(json.get()).ok())
        .collect();
    let state = app.shared.state.read().expect("not poisoned");
    let name_of = |code: &str| -> String {
        Code::parse(code)
            .ok()
            .and_then(|c| state.registry.region_name(c))
            .map_or_else(|| code.to_string(), str::to_string)
    };
    let title = lang.t("Selisih rekapitulasi", "Recapitulation discrepancies");
    let body = html! {
        h1 { (title) }
        p { (lang.t(
            "Setiap angka formulir rekapitulasi (D.Hasil) dibandingkan dengan jumlah tingkat di bawahnya, sampai formulir TPS. Selisih ditampilkan di sini, terbesar lebih dulu; penggelembungan suara tampak di tingkat tempat ia terjadi.",
            "Every figure of a recapitulation form (D.Hasil) is compared with the sum of the level below it, down to the TPS forms. Differences are listed here, largest first: inflation shows at the level where it happened.",
        )) }
        @if view.truncated > 0 || view.coverage_gaps > 0 {
            p class="note" {
                (lang.t("Tidak ditampilkan karena batas: ", "Left out by the bound: ")) (view.truncated) ". "
                (lang.t("Baris yang TPS-nya belum lengkap (tidak dibandingkan): ", "Rows whose TPS are not all counted yet (not compared): ")) (view.coverage_gaps) "."
            }
        }
        (filter_form(lang, html! {
            (region_select(lang, &state, region)) " "
            label for="tingkat" { (lang.t("Tingkat ", "Level ")) }
            select id="tingkat" name="tingkat" {
                option value="" { (lang.t("Semua tingkat", "Every level")) }
                @for l in ["kecamatan", "kabkota", "provinsi", "nasional"] {
                    option value=(l) selected[level == Some(l)] { (recap_level_name(lang, l)) }
                }
            }
        }))
        (pager(lang, &query, "/selisih", items.len()))
        div class="scroll" {
            table class="sortable" {
                thead { tr {
                    th scope="col" class="text" { (lang.t("Rekapitulasi", "Recapitulation")) }
                    th scope="col" class="text" { (lang.t("Baris (di bawahnya)", "Row (below)")) }
                    th scope="col" class="text" { (lang.t("Pola", "Pattern")) }
                    th scope="col" class="text" { (lang.t("Isian: rekap / jumlah di bawah / selisih", "Field: recap / sum below / delta")) }
                    th scope="col" { (lang.t("Entri", "Entry")) }
                } }
                tbody {
                    @for item in items.iter().skip((query.page() - 1) * ROWS_PER_PAGE).take(ROWS_PER_PAGE) {
                        @let region = item["region"].as_str().unwrap_or("nasional");
                        tr data-kind=(item["kind"].as_str().unwrap_or("")) {
                            td class="text" {
                                (recap_level_name(lang, item["level"].as_str().unwrap_or(""))) " "
                                @if region == "nasional" { a href=(lang.link("/")) { "Indonesia" } }
                                @else { a href=(lang.link(&format!("/wilayah/{region}"))) { (name_of(region)) } }
                            }
                            td class="text" {
                                @if let Some(child) = item["child"].as_str() {
                                    a href=(lang.link(&format!("/wilayah/{child}"))) { (name_of(child)) }
                                } @else { (lang.t("total", "total")) }
                                br; span class="note" { (match item["basis"].as_str() { Some("tps") => lang.t("dibandingkan dengan formulir TPS", "against the TPS forms"), Some("recap") => lang.t("dibandingkan dengan rekap di bawahnya", "against the recaps below"), _ => lang.t("dibandingkan dengan barisnya sendiri", "against its own rows") }) }
                            }
                            td class="text" { (kind_name(lang, item["kind"].as_str().unwrap_or(""))) }
                            td class="text" {
                                @if let Some(fields) = item["fields"].as_object() {
                                    @for (field, f) in fields {
                                        code { (field) } ": "
                                        span data-figure=(format!("recap.{field}")) { (lang.number(f["recap"].as_i64().unwrap_or(0))) } " / "
                                        (lang.number(f["below"].as_i64().unwrap_or(0))) " / "
                                        strong { @if f["delta"].as_i64().unwrap_or(0) > 0 { "+" } (lang.number(f["delta"].as_i64().unwrap_or(0))) }
                                        br;
                                    }
                                }
                            }
                            td { @if let Some(entry) = item["entry"].as_u64() { a href=(format!("/api/v1/entries/{entry}")) { (entry) } } }
                        }
                    }
                }
            }
        }
        p { a href=(format!("/api/v1/discrepancies{}", region.map(|r| format!("?region={r}")).unwrap_or_default())) { (lang.t("Daftar yang sama sebagai JSON", "The same list as JSON")) } }
    };
    html_response(layout(
        lang,
        &query.path("/selisih", query.page()),
        title,
        body,
    ))
}

/// `/cari?q=`: regions whose name contains the words (any case), regions and TPS by code prefix.
pub(crate) async fn search(State(app): State<App>, Query(query): Query<ListQuery>) -> Response {
    let lang = query.lang();
    let q: String = query
        .q
        .as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(QUERY_BYTES_MAX)
        .collect();
    let index = app.search.current(&app.shared);
    let state = app.shared.state.read().expect("not poisoned");
    let mut found: Vec<Code> = Vec::new();
    let too_short = q.chars().count() < QUERY_CHARS_MIN;
    if !too_short {
        let digits: String = q.chars().filter(|c| c.is_ascii_digit()).collect();
        let by_code = !digits.is_empty()
            && q.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == ' ');
        if by_code {
            if let Some(tps) = Code::parse(&digits)
                .ok()
                .filter(|c| c.level() == Level::Tps)
            {
                if state.registry.tps(tps).is_some() {
                    found.push(tps);
                }
            }
        }
        if by_code {
            found.extend(
                index
                    .codes
                    .iter()
                    .filter(|c| c.as_str().starts_with(&digits)),
            );
        } else {
            let words: Vec<Vec<u8>> = q
                .split_whitespace()
                .map(|w| w.as_bytes().to_ascii_lowercase())
                .collect();
            found.extend(index.named(&words).into_iter().map(|i| index.codes[i]));
        }
    }
    // Higher levels first (a province before a village of the same name), then by code.
    // Higher levels first (a province before a village of the same name), then by code; only the
    // shown ones are sorted ("a" matches most of 91,756 names).
    let total = found.len();
    if found.len() > SEARCH_RESULTS_MAX {
        found.select_nth_unstable_by_key(SEARCH_RESULTS_MAX, |code| (code.level(), *code));
        found.truncate(SEARCH_RESULTS_MAX);
    }
    found.sort_by_key(|code| (code.level(), *code));
    let found: Vec<(Code, String)> = found
        .into_iter()
        .map(|code| match code.level() {
            Level::Tps => (code, format!("TPS {}", code.as_str())),
            _ => (
                code,
                state.registry.region_name(code).unwrap_or("").to_string(),
            ),
        })
        .collect();
    let title = lang.t("Cari", "Search");
    let body = html! {
        h1 { (title) }
        form role="search" method="get" action="/cari" {
            label for="q-page" { (lang.t("Nama wilayah atau kode wilayah/TPS ", "Region name, or region/TPS code ")) }
            input id="q-page" name="q" type="search" value=(q) autofocus;
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            " " button type="submit" { (lang.t("Cari", "Search")) }
        }
        @if too_short && !q.is_empty() {
            p { (lang.t("Ketik paling sedikit 2 huruf atau angka.", "Type at least 2 letters or digits.")) }
        }
        @if !too_short {
            p data-figure="results" { (lang.number(total as i64)) (lang.t(" hasil", " results"))
                @if total > SEARCH_RESULTS_MAX { (lang.t(", yang pertama ditampilkan", ", the first shown")) } }
            ul class="results" {
                @for (code, name) in &found {
                    li {
                        @if code.level() == Level::Tps {
                            a href=(lang.link(&format!("/tps/{}", code.as_str()))) { (name) }
                        } @else {
                            a href=(lang.link(&format!("/wilayah/{}", code.as_str()))) { (name) }
                            " " span class="note" { (level_name(lang, code.level())) " " (code.as_str())
                                @if let Some(parent) = code.parent().and_then(|p| state.registry.region_name(p)) { ", " (parent) } }
                        }
                    }
                }
            }
        }
    };
    let path = if q.is_empty() {
        "/cari".to_string()
    } else {
        format!("/cari?q={}", url_escape(&q))
    };
    html_response(layout(lang, &path, title, body))
}

/// Every region's name, ASCII-lowercased, in one buffer: walking the registry's map and lowercasing
/// each of 91,756 names took 4 to 9 ms per search nationally.
/// Rebuilt when the registry has more regions (they are only ever added).
#[derive(Default)]
pub(crate) struct SearchIndex {
    built: std::sync::Mutex<Option<std::sync::Arc<Names>>>,
}

struct Names {
    regions: usize,
    codes: Vec<Code>,
    /// End offset of each name in `text`.
    ends: Vec<u32>,
    text: Vec<u8>,
}

impl SearchIndex {
    fn current(&self, shared: &saksi_recap::Shared) -> std::sync::Arc<Names> {
        let mut built = self.built.lock().expect("not poisoned");
        let state = shared.state.read().expect("not poisoned");
        let regions = state.registry.regions_len();
        match built.as_ref() {
            Some(names) if names.regions == regions => names.clone(),
            _ => {
                let names = Names::of(regions, state.registry.regions());
                let names = std::sync::Arc::new(names);
                *built = Some(names.clone());
                names
            }
        }
    }
}

impl Names {
    fn of<'a>(regions: usize, all: impl Iterator<Item = (Code, &'a str)>) -> Names {
        let mut names = Names {
            regions,
            codes: Vec::with_capacity(regions),
            ends: Vec::with_capacity(regions),
            text: Vec::new(),
        };
        for (code, name) in all {
            names.codes.push(code);
            names
                .text
                .extend(name.bytes().map(|b| b.to_ascii_lowercase()));
            names.ends.push(names.text.len() as u32);
        }
        names
    }

    /// Indexes of the names holding every word (lowercase ASCII), ascending: each word is found
    /// in the whole buffer at once (memchr's SIMD search), each hit mapped to its name.
    fn named(&self, words: &[Vec<u8>]) -> Vec<usize> {
        let mut result: Option<Vec<usize>> = None;
        for word in words.iter().filter(|w| !w.is_empty()) {
            let mut hits: Vec<usize> = memchr::memmem::find_iter(&self.text, word)
                .filter_map(|at| {
                    let i = self.ends.partition_point(|end| *end as usize <= at);
                    // A hit that runs past its name's end spans two names.
                    (at + word.len() <= *self.ends.get(i)? as usize).then_some(i)
                })
                .collect();
            hits.dedup();
            result = Some(match result {
                None => hits,
                Some(before) => before
                    .into_iter()
                    .filter(|i| hits.binary_search(i).is_ok())
                    .collect(),
            });
        }
        result.unwrap_or_default()
    }
}

/// Percent-encodes a query value (unreserved characters kept).
fn url_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_every_word_within_one_name_in_any_case() {
        let codes = ["11", "12", "13", "14"].map(|c| Code::parse(c).unwrap());
        let list = [
            "Kota Bandung",
            "Kabupaten Bandung Barat",
            "Jaya",
            "Sukajaya",
        ];
        let names = Names::of(4, codes.iter().copied().zip(list));
        let find = |q: &str| {
            let words: Vec<Vec<u8>> = q
                .split_whitespace()
                .map(|w| w.as_bytes().to_ascii_lowercase())
                .collect();
            names.named(&words)
        };
        assert_eq!(find("BANDUNG"), vec![0, 1]);
        assert_eq!(find("bandung barat"), vec![1]);
        assert_eq!(find("jaya"), vec![2, 3]);
        // "barat" + "jaya" run together across two names: not a match.
        assert_eq!(find("baratjaya"), Vec::<usize>::new());
        assert_eq!(find("ungkab"), Vec::<usize>::new());
        assert_eq!(find(""), Vec::<usize>::new());
    }
}
