//! `/tps/{code}`: one TPS (tempat pemungutan suara, a polling station). Every field of its latest
//! versions as the log holds them, beside the registry's DPT (the registered voters); each verdict,
//! and for a rejection each rule in both languages with the figures that broke it (re-derived by
//! the rulebook the verdict names); the recapitulation forms above it; and the box in which the
//! reader's browser checks all of it against the signed log (`/assets/verify.js`).
//!
//! Every checkable figure carries `data-entry` (its log index) and `data-field` (its path in the
//! entry's form), so the browser's check and the tests find exactly what a reader sees.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{html, Markup};

use saksi_election::code::{Code, Level};
use saksi_election::recap::RecapLevel;
use saksi_election::rules::{self, check_sheet_in, Finding, Rulebook, TpsFacts};
use saksi_election::sheet::{Field, Sheet};
use saksi_recap::entry::{Entry, RecordedVerdict};
use saksi_recap::state::{HistoryItem, Source};

use super::{breadcrumbs, html_response, layout, not_found, Lang, LangQuery};
use crate::App;

/// The most recent versions of a TPS whose every field is shown (each is one read from the log):
/// a TPS has one form, rarely a correction or two; the rest of a long history is listed by index.
const VERSIONS_SHOWN_MAX: usize = 6;

/// One version of the TPS's form as read back from the log.
struct Version {
    index: u64,
    verdict: RecordedVerdict,
    sheet: Sheet,
    /// The officer's or commission's key (base64); the operator's for a transcription.
    signer: String,
    correction_reason: Option<String>,
    evidence: Vec<String>,
    /// For a rejected version: the broken rules with their fields and figures, as the rulebook the
    /// verdict names finds them (empty for an accepted one).
    findings: Vec<Finding>,
}

pub(super) fn source_name(lang: Lang, source: Source) -> &'static str {
    match source {
        Source::Officer => lang.t("formulir petugas KPPS", "KPPS officer's form"),
        Source::Correction => lang.t("koreksi", "correction"),
        Source::Transcription => lang.t(
            "transkripsi data terbitan",
            "transcription of published data",
        ),
    }
}

/// `/tps/{code}`.
pub(crate) async fn tps(
    State(app): State<App>,
    Path(code): Path<String>,
    Query(query): Query<LangQuery>,
) -> Response {
    let lang = Lang::of(&query);
    let not_found = |why| not_found(lang, lang.t("TPS tidak ditemukan", "No such TPS"), why);
    let Some(code) = Code::parse(&code).ok().filter(|c| c.level() == Level::Tps) else {
        return not_found(lang.t(
            "Kode TPS terdiri dari 13 angka.",
            "A TPS code has 13 digits.",
        ));
    };
    // What the state knows, copied out so the log reads below run without the lock.
    let (registered, record, election, copy_indexes) = {
        let state = app.shared.state.read().expect("not poisoned");
        let Some(registered) = state.registry.tps(code).cloned() else {
            return not_found(lang.t("TPS ini tidak terdaftar.", "This TPS is not registered."));
        };
        (
            registered,
            state.tps_record(code).cloned().unwrap_or_default(),
            state.election().cloned(),
            state
                .copies(code)
                .iter()
                .map(|c| c.index)
                .collect::<Vec<u64>>(),
        )
    };
    let shown: Vec<HistoryItem> = record
        .history
        .iter()
        .rev()
        .take(VERSIONS_SHOWN_MAX)
        .rev()
        .cloned()
        .collect();
    let shared = app.shared.clone();
    let facts = TpsFacts {
        kind: registered.kind,
        dpt: registered.dpt,
    };
    let (versions, copy_photos) = tokio::task::spawn_blocking(move || {
        let versions = shown
            .into_iter()
            .filter_map(|item| read_version(&shared, item, facts, election.as_ref()))
            .collect::<Vec<Version>>();
        // Each copy's photos, read back from its entry (a TPS has a few copies).
        let photos: Vec<(u64, Vec<String>)> = copy_indexes
            .into_iter()
            .filter_map(
                |index| match Entry::decode(&shared.entry(index).ok()?).ok()? {
                    Entry::Copy { copy, .. } => Some((
                        index,
                        copy.copy
                            .form
                            .evidence
                            .iter()
                            .map(|d| d.to_text())
                            .collect(),
                    )),
                    _ => None,
                },
            )
            .collect();
        (versions, photos)
    })
    .await
    .unwrap_or_default();

    let checkpoint_size = app.shared.published().checkpoint.size;
    let state = app.shared.state.read().expect("not poisoned");
    let positions = state.positions();
    let name = format!("TPS {}", code.as_str());
    let path = format!("/tps/{}", code.as_str());
    let current = record.current;
    let body = html! {
        (breadcrumbs(lang, &state, code, &name))
        h1 { (name) small { (registered.kind.as_str()) } }
        (verification_box(lang, &app.shared.vkey, Checks::Tps { has_entries: !record.history.is_empty() }))
        p id="live-status" class="note" aria-live="polite" data-live=(checkpoint_size) {}
        dl class="figures" {
            dt { (lang.t("DPT menurut registri (L / P / jumlah)", "Registered voters per the registry (M / F / total)")) }
            dd {
                @if let Some(dpt) = registered.dpt {
                    (lang.number(dpt.l.into())) " / " (lang.number(dpt.p.into())) " / " span data-figure="dpt" { (lang.number(dpt.total().into())) }
                } @else { "–" }
            }
        }
        h2 { (lang.t("Hasil yang dihitung", "Counted result")) }
        @if let (Some(counts), Some(index)) = (&record.counts, current) {
            // The headline figures name their entry where it states them all (the fields table
            // below shows a transcription's missing figures as such).
            @let checked = Some(index).filter(|_| super::fully_reported(counts));
            p { (lang.t("Dari entri log ", "From log entry ")) a href=(format!("/api/v1/entries/{index}")) { (index) } "." }
            dl class="figures" {
                @for (i, position) in positions.iter().enumerate() {
                    dt { (lang.t("Suara pasangan ", "Votes for pair ")) (position) }
                    dd data-figure=(format!("votes.{position}")) data-entry=[checked] data-field=(format!("votes.{position}")) { (lang.number(counts.votes.get(i).copied().unwrap_or(0))) }
                }
                dt { (lang.t("Suara sah", "Valid votes")) }
                dd data-figure="valid" data-entry=[checked] data-field="valid" { (lang.number(counts.valid)) }
                dt { (lang.t("Suara tidak sah", "Invalid votes")) }
                dd data-figure="invalid" data-entry=[checked] data-field="invalid" { (lang.number(counts.invalid)) }
                dt { (lang.t("Pengguna hak pilih", "Voters")) }
                dd data-figure="voters" data-entry=[checked] data-field="voted.total.j" { (lang.number(counts.voters)) }
            }
        } @else {
            p data-figure="uncounted" { (lang.t("Belum ada hasil yang diterima untuk TPS ini.", "No accepted result for this TPS yet.")) }
        }
        (super::flags::tps_section(lang, &app, code))
        (copies_section(lang, &state, code, &copy_photos))
        (photos_section(lang, &app.shared.evidence, &versions, current, &copy_photos))
        @if !versions.is_empty() {
            h2 { (lang.t("Isi formulir C.Hasil", "The C.Hasil form, field by field")) }
            (fields_table(lang, positions, &versions, current))
        }
        h2 { (lang.t("Riwayat di log", "History in the log")) }
        (history_table(lang, &record.history, &versions))
        (recaps_above(lang, &state, code))
        (super::reports::section(lang, &app, &state, Some(code)))
    };
    html_response(layout(lang, &path, &name, body))
}

/// Reads one version back from the log, with the findings of a rejected one. `None` if the entry
/// cannot be read (the page then lists it by index only; the API says why).
fn read_version(
    shared: &saksi_recap::Shared,
    item: HistoryItem,
    facts: TpsFacts,
    election: Option<&saksi_election::Election>,
) -> Option<Version> {
    let bytes = shared.entry(item.index).ok()?;
    let (sheet, signer, correction_reason, evidence) = match Entry::decode(&bytes).ok()? {
        Entry::Form { form, .. } => (
            Sheet::from_form(&form.form),
            form.form.signer.to_base64(),
            form.form.correction.as_ref().map(|c| c.reason.clone()),
            form.form.evidence.iter().map(|d| d.to_text()).collect(),
        ),
        Entry::Transcription {
            sheet, operator, ..
        } => (sheet, operator.to_base64(), None, Vec::new()),
        _ => return None,
    };
    let findings = match (item.verdict.accepted, election) {
        (false, Some(election)) => Rulebook::named(&item.verdict.rulebook)
            .map(|rulebook| {
                check_sheet_in(rulebook, &sheet, Some(facts), election)
                    .findings
                    .into_iter()
                    .filter(|f| item.verdict.rejected_by.iter().any(|c| c == f.code))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Some(Version {
        index: item.index,
        verdict: item.verdict,
        sheet,
        signer,
        correction_reason,
        evidence,
        findings,
    })
}

/// What a page's verification box checks beyond each figure against its entry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Checks {
    /// A TPS page: every version's figures and verdict.
    Tps { has_entries: bool },
    /// A kelurahan/desa page: every counted TPS's figures, and that the desa's totals are their sum.
    DesaSum,
}

/// Where the reader's browser reports its check of this page against the signed log.
pub(super) fn verification_box(lang: Lang, vkey: &str, checks: Checks) -> Markup {
    let key_hash = vkey.split('+').nth(1).unwrap_or("");
    html! {
        section id="verification" class="verification" data-state="pending" data-vkey=(vkey) data-sum=[(checks == Checks::DesaSum).then_some("tps")] aria-live="polite" {
            h2 { (lang.t("Pemeriksaan oleh peramban Anda", "Checked by your browser")) }
            p class="outcome" {
                @if checks == (Checks::Tps { has_entries: false }) {
                    (lang.t("Belum ada entri log untuk TPS ini; tidak ada yang diperiksa.", "No log entry for this TPS yet; nothing to check."))
                } @else {
                    (lang.t("Menunggu pemeriksaan…", "Waiting for the check…"))
                }
            }
            noscript { p { (lang.t(
                "Pemeriksaan memerlukan JavaScript. Tanpanya, periksa log dengan `saksi verify` (lihat Cara memeriksa).",
                "The check needs JavaScript. Without it, check the log with `saksi verify` (see How to verify).",
            )) } }
            p class="note" {
                (lang.t("Kunci pemeriksa log: ", "The log's verifier key: ")) code class="vkey" { (vkey) } " "
                (lang.t("(sidik jari ", "(fingerprint ")) code { (key_hash) } "). "
                (lang.t(
                    "Halaman ini dan pemeriksanya dikirim oleh server yang diperiksa: bandingkan kunci ini dengan yang diterbitkan di tempat lain, atau periksa terhadap salinan log (mirror).",
                    "This page and its checker come from the server being checked: compare this key with one published elsewhere, or check against a mirror of the log.",
                ))
            }
            form class="mirror" method="get" {
                label for="mirror" { (lang.t("URL /log/ salinan: ", "A mirror's /log/ URL: ")) }
                input id="mirror" name="mirror" type="url" placeholder="https://mirror.example/log/";
                @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
                " " button type="submit" { (lang.t("Periksa", "Check")) }
            }
        }
    }
}

/// Every field of the versions read, one column per version, the broken figures marked in words.
fn fields_table(
    lang: Lang,
    positions: &[String],
    versions: &[Version],
    current: Option<u64>,
) -> Markup {
    let mut rows: Vec<(String, String)> = Field::all()
        .map(|f| (f.path().to_string(), f.label().to_string()))
        .collect();
    // Votes come before the totals they add up to, as on the sheet's last page.
    let votes_at = rows.iter().position(|(p, _)| p == "valid").unwrap_or(0);
    for (i, position) in positions.iter().enumerate() {
        rows.insert(
            votes_at + i,
            (
                format!("votes.{position}"),
                format!("{} {position}", lang.t("Suara pasangan", "Votes for pair")),
            ),
        );
    }
    let broke = |version: &Version, path: &str| {
        version
            .findings
            .iter()
            .any(|f| f.fields.iter().any(|p| p == path))
    };
    let value = |version: &Version, path: &str| match path.strip_prefix("votes.") {
        Some(position) => version
            .sheet
            .votes
            .iter()
            .find(|(p, _)| p == position)
            .and_then(|(_, v)| *v),
        None => Field::all()
            .find(|f| f.path() == path)
            .and_then(|f| version.sheet.get(f)),
    };
    html! {
        div class="scroll" {
            table class="fields" {
                caption { (lang.t("Setiap isian per versi, seperti tercatat di log", "Every field per version, as the log holds it")) }
                thead { tr {
                    th scope="col" class="text" { (lang.t("Isian", "Field")) }
                    @for version in versions {
                        th scope="col" {
                            (lang.t("Entri ", "Entry ")) (version.index) br;
                            @if current == Some(version.index) { (lang.t("dihitung", "counted")) }
                            @else if version.verdict.accepted { (lang.t("diterima", "accepted")) }
                            @else { (lang.t("ditolak", "rejected")) }
                        }
                    }
                } }
                tbody {
                    @for (path, label) in &rows {
                        tr {
                            th scope="row" class="text" { (label) " " code class="path" { (path) } }
                            @for version in versions {
                                @let broken = broke(version, path);
                                td class=[broken.then_some("broke")] data-entry=(version.index) data-field=(path) {
                                    @match value(version, path) {
                                        Some(n) => (lang.number(n)),
                                        None => "–",
                                    }
                                    @if broken { span class="flag" { " ✗" span class="sr" { (lang.t(" melanggar aturan", " breaks a rule")) } } }
                                }
                            }
                        }
                    }
                    tr {
                        th scope="row" class="text" { (lang.t("Penanda tangan", "Signed by")) }
                        @for version in versions { td class="key" { code { (version.signer) } } }
                    }
                    tr {
                        th scope="row" class="text" { (lang.t("Foto bukti (SHA-256)", "Evidence photos (SHA-256)")) }
                        @for version in versions {
                            td class="key" { @for digest in &version.evidence { code { (digest) } br; } @if version.evidence.is_empty() { "–" } }
                        }
                    }
                }
            }
        }
    }
}

/// Every version in the log: source, verdict, each broken rule with both messages and figures.
fn history_table(lang: Lang, history: &[HistoryItem], versions: &[Version]) -> Markup {
    html! {
        div class="scroll" {
            table class="history" {
                thead { tr {
                    th scope="col" { (lang.t("Entri", "Entry")) }
                    th scope="col" class="text" { (lang.t("Sumber", "Source")) }
                    th scope="col" class="text" { (lang.t("Putusan", "Verdict")) }
                    th scope="col" class="text" { (lang.t("Aturan yang dilanggar", "Rules broken")) }
                } }
                tbody {
                    @for item in history {
                        @let version = versions.iter().find(|v| v.index == item.index);
                        tr data-index=(item.index) data-verdict=(if item.verdict.accepted { "accepted" } else { "rejected" }) data-rules=(item.verdict.rejected_by.join(" ")) {
                            td { a href=(format!("/api/v1/entries/{}", item.index)) { (item.index) } " "
                                 a href=(format!("/api/v1/receipts/{}", item.index)) { (lang.t("bukti", "receipt")) } }
                            td class="text" {
                                (source_name(lang, item.source))
                                @if let Some(reason) = version.and_then(|v| v.correction_reason.as_ref()) {
                                    br; span class="note" { (lang.t("Alasan: ", "Reason: ")) (reason) }
                                }
                            }
                            td class="text" { @if item.verdict.accepted { (lang.t("diterima", "accepted")) } @else { strong { (lang.t("ditolak", "rejected")) } } }
                            td class="text" {
                                @for code in &item.verdict.rejected_by {
                                    p data-rule=(code) {
                                        code { (code) }
                                        @if let Some(rule) = rules::rule(code) {
                                            br; span lang="id" { (rule.id) }
                                            br; span lang="en" { (rule.en) }
                                        }
                                        @for finding in version.map(|v| v.findings.as_slice()).unwrap_or_default().iter().filter(|f| f.code == code) {
                                            br; span class="note" { (lang.t("Angka: ", "Figures: ")) (finding.detail) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p class="note" { (lang.t("Putusan menurut buku aturan ", "Verdicts under rulebook ")) @if let Some(item) = history.last() { (&*item.verdict.rulebook) } }
    }
}

/// The recapitulation forms (D.Hasil) of the regions above this TPS, where logged.
/// The poll witnesses' copies (salinan saksi TPS) beside the official result: one row per copy,
/// each compared figure with the copy's value, a differing one marked in words and colour with the
/// official value beside it; what each correction did to the agreement.
fn copies_section(
    lang: Lang,
    state: &saksi_recap::State,
    tps: Code,
    photos: &[(u64, Vec<String>)],
) -> Markup {
    let positions = state.positions();
    let all = state.copies(tps);
    let latest = state.latest_copies(tps);
    let has_official = state.has_accepted(tps);
    let disagreeing = latest
        .iter()
        .filter(|(_, d)| d.as_ref().is_some_and(|d| !d.is_empty()))
        .count();
    let mut columns: Vec<(String, String)> = positions
        .iter()
        .map(|p| {
            (
                format!("votes.{p}"),
                format!("{} {p}", lang.t("Pasangan", "Pair")),
            )
        })
        .collect();
    columns.push(("valid".into(), lang.t("Sah", "Valid").into()));
    columns.push(("invalid".into(), lang.t("Tidak sah", "Invalid").into()));
    columns.push(("voters".into(), lang.t("Pemilih", "Voters").into()));
    let value = |counts: &saksi_recap::state::Counts, field: &str| -> i64 {
        match field {
            "valid" => counts.valid,
            "invalid" => counts.invalid,
            "voters" => counts.voters,
            votes => positions
                .iter()
                .position(|p| votes.strip_prefix("votes.") == Some(p.as_str()))
                .and_then(|i| counts.votes.get(i).copied())
                .unwrap_or(0),
        }
    };
    html! {
        section id="salinan" {
            h2 { (lang.t("Salinan saksi TPS", "Poll witnesses' copies")) }
            @if all.is_empty() {
                p data-copies="none" { (lang.t(
                    "Belum ada salinan dari saksi peserta untuk TPS ini.",
                    "No poll witness has sent a copy for this TPS yet.",
                )) }
            } @else {
                p data-copies=(if !has_official { "witness_only" } else if disagreeing > 0 { "disagree" } else { "agree" }) {
                    @if !has_official {
                        (lang.t(
                            "Hanya saksi yang telah melapor: belum ada hasil resmi yang diterima untuk dibandingkan.",
                            "Only poll witnesses have spoken: there is no accepted official result to compare with yet.",
                        ))
                    } @else if disagreeing > 0 {
                        strong { (disagreeing) (lang.t(" salinan berbeda dari hasil resmi", " copies differ from the official result")) }
                        (lang.t(" (angka yang berbeda ditandai; angka resmi di sebelahnya).", " (differing figures are marked, the official figure beside them)."))
                    } @else {
                        (lang.t("Setiap salinan terbaru sama dengan hasil resmi.", "Every latest copy agrees with the official result."))
                    }
                }
                p class="note" { (lang.t(
                    "Salinan dicatat dan dibandingkan, tetapi tidak pernah menggantikan hasil resmi. Dari tiap saksi hanya salinan terakhirnya yang dibandingkan.",
                    "Copies are logged and compared but never replace the official result. Only each witness's latest copy is compared.",
                )) }
                div class="scroll" {
                    table class="copies" {
                        thead { tr {
                            th class="text" { (lang.t("Peserta", "Participant")) }
                            th { (lang.t("Entri log", "Log entry")) }
                            @for (_, label) in &columns { th { (label) } }
                            th class="text" { (lang.t("Putusan aturan", "Rulebook verdict")) }
                        } }
                        tbody {
                            @for copy in all {
                                @let latest_entry = latest.iter().find(|(c, _)| c.index == copy.index);
                                @let differences = latest_entry.and_then(|(_, d)| d.as_ref());
                                tr data-copy=(copy.index) {
                                    td class="text" {
                                        (positions.get(copy.participant).map_or("?", String::as_str))
                                        @if latest_entry.is_none() { br; small { (lang.t("diganti oleh salinan berikutnya", "replaced by a later copy")) } }
                                        br; code class="path" title=(copy.signer.to_base64()) { (copy.signer.to_base64().get(..10).unwrap_or("")) "…" }
                                    }
                                    td { a href=(format!("/api/v1/entries/{}", copy.index)) { (copy.index) } }
                                    @for (field, _) in &columns {
                                        @let differs = differences.and_then(|d| d.iter().find(|x| &x.field == field));
                                        // The entry's own path for the browser's check (voters are B.4 J).
                                        @let path = if field == "voters" { "voted.total.j" } else { field.as_str() };
                                        @if let Some(difference) = differs {
                                            td class="broke" data-differs=(field) data-entry=(copy.index) data-field=(path) {
                                                (lang.number(difference.copy))
                                                br; small { (lang.t("resmi ", "official ")) (lang.number(difference.official)) }
                                            }
                                        } @else {
                                            td data-entry=(copy.index) data-field=(path) { (lang.number(value(&copy.counts, field))) }
                                        }
                                    }
                                    td class="text" {
                                        @if copy.verdict.accepted { (lang.t("diterima", "accepted")) }
                                        @else { (lang.t("ditolak: ", "rejected: ")) (copy.verdict.rejected_by.join(", ")) }
                                    }
                                }
                            }
                        }
                    }
                }
                @let photos_count: usize = photos.iter().map(|(_, p)| p.len()).sum();
                @if photos_count > 0 {
                    p class="note" { (photos_count) (lang.t(" foto dari para saksi ada di bagian Foto bukti.", " photos from the witnesses are under Evidence photos.")) }
                }
            }
            @for effect in state.correction_effects.iter().filter(|e| e.tps == tps) {
                p data-correction-effect=(effect.kind()) {
                    (lang.t("Koreksi di entri ", "The correction at entry ")) (effect.index) ": "
                    @match effect.kind() {
                        "aligned" => { strong { (lang.t("menyamakan hasil resmi dengan salinan saksi", "brought the official result in line with the witnesses' copies")) } }
                        "diverged" => { strong { (lang.t("menjauhkan hasil resmi dari salinan saksi yang tadinya sama", "moved the official result away from copies that agreed with it")) } }
                        _ => { (lang.t("mengubah hasil resmi", "changed the official result")) }
                    }
                    " (" (effect.disagreeing_before) " → " (effect.disagreeing_after)
                    (lang.t(" salinan berbeda).", " copies differing)."))
                }
            }
        }
    }
}

/// The photos the official version and the copies name: a thumbnail linking to the full image
/// (the browser's own viewer zooms) when this server stores it, the digest otherwise.
fn photos_section(
    lang: Lang,
    store: &saksi_recap::evidence::EvidenceStore,
    versions: &[Version],
    current: Option<u64>,
    copy_photos: &[(u64, Vec<String>)],
) -> Markup {
    let official = versions
        .iter()
        .find(|v| Some(v.index) == current)
        .or(versions.last());
    let mut groups: Vec<(String, &[String])> = Vec::new();
    if let Some(version) = official {
        groups.push((
            format!(
                "{} {}",
                lang.t("Formulir resmi, entri", "Official form, entry"),
                version.index
            ),
            &version.evidence,
        ));
    }
    for (index, photos) in copy_photos {
        groups.push((
            format!(
                "{} {index}",
                lang.t("Salinan saksi, entri", "Witness's copy, entry")
            ),
            photos,
        ));
    }
    groups.retain(|(_, photos)| !photos.is_empty());
    let stored = |digest: &str| {
        saksi_election::form::PhotoDigest::parse(digest).filter(|d| store.contains(d))
    };
    html! {
        @if !groups.is_empty() {
            section id="foto" {
                h2 { (lang.t("Foto bukti", "Evidence photos")) }
                p class="note" { (lang.t(
                    "Foto disimpan menurut SHA-256-nya; entri log menyebut digest itu. Ketuk foto untuk membukanya dalam ukuran penuh dan memperbesarnya.",
                    "Photos are stored under their SHA-256, which the log entry names. Tap a photo to open it full size and zoom.",
                )) }
                @for (label, photos) in &groups {
                    h3 { (label) }
                    ul class="photos" {
                        @for digest in photos.iter() {
                            li {
                                @if let Some(d) = stored(digest) {
                                    @let url = format!("/evidence/sha256/{}", saksi_election::form::hex(&d.0));
                                    a href=(url) { img src=(url) alt=(format!("{} {digest}", lang.t("foto", "photo"))) loading="lazy" width="160"; }
                                } @else {
                                    code class="path" { (digest) } br;
                                    small { (lang.t("tidak tersimpan di server ini", "not stored on this server")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn recaps_above(lang: Lang, state: &saksi_recap::State, tps: Code) -> Markup {
    let mut above = Vec::new();
    let mut up = tps.parent();
    while let Some(region) = up {
        let level = match region.level() {
            Level::Kecamatan => Some(RecapLevel::Kecamatan),
            Level::KabKota => Some(RecapLevel::KabKota),
            Level::Provinsi => Some(RecapLevel::Provinsi),
            _ => None,
        };
        if let Some(record) = level.and_then(|l| state.recaps.get(&(l, Some(region)))) {
            above.push((region, record));
        }
        up = region.parent();
    }
    html! {
        h2 { (lang.t("Rekapitulasi di atas TPS ini", "Recapitulations above this TPS")) }
        @if above.is_empty() {
            p { (lang.t("Belum ada formulir rekapitulasi (D.Hasil) untuk wilayah di atas TPS ini.", "No recapitulation form (D.Hasil) for the regions above this TPS yet.")) }
        } @else {
            ul {
                @for (region, record) in above {
                    li {
                        a href=(lang.link(&format!("/wilayah/{}", region.as_str()))) { (state.registry.region_name(region).unwrap_or(region.as_str())) }
                        ": "
                        @for (index, verdict) in &record.history {
                            a href=(format!("/api/v1/entries/{index}")) { (lang.t("entri ", "entry ")) (index) }
                            " (" @if verdict.accepted { (lang.t("diterima", "accepted")) } @else { (lang.t("ditolak", "rejected")) } ") "
                        }
                    }
                }
            }
            p { a href=(lang.link("/selisih")) { (lang.t("Selisih rekapitulasi dengan jumlah di bawahnya", "Recapitulation figures against the sums below them")) } }
        }
    }
}
