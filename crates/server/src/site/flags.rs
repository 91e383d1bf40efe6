//! Forensic flags on the site: a region's flagged TPS, digit tests and fingerprint chart, and a TPS's
//! own flags, each explained. Read from the latest background scoring (`crate::flags`); a flag is a
//! lead, never a rejection, and the pages say so. Nothing here is a log figure, so nothing carries
//! `data-figure` (the browser's verifier checks only those).

use maud::{html, Markup};
use saksi_election::code::Code;
use saksi_forensics::region::{Fingerprint, FINGERPRINT_BINS};
use saksi_forensics::TestResult;

use super::Lang;
use crate::App;

/// Flagged TPS listed on a region page at most (the API lists more).
const FLAGS_ON_PAGE: usize = 20;

fn explanation(lang: Lang, test: &TestResult) -> &str {
    match lang {
        Lang::Id => &test.id,
        Lang::En => &test.en,
    }
}

fn what_a_flag_is(lang: Lang) -> &'static str {
    lang.t(
        "Tanda forensik menunjukkan angka yang mungkin tetapi janggal dibanding TPS sekitarnya, untuk diperiksa orang (foto formulir, salinan saksi). Tanda bukan penolakan: tidak mengubah jumlah apa pun.",
        "A forensic flag marks figures that are possible but implausible next to the TPS around them, for a person to check (the form's photo, poll witnesses' copies). A flag is not a rejection: it changes no total.",
    )
}

/// The section of a region page.
pub(crate) fn region_section(lang: Lang, app: &App, region: Code) -> Markup {
    let Some(snapshot) = app.flags.latest() else {
        return html! {};
    };
    let prefix = region.to_string();
    let flagged: Vec<_> = snapshot
        .flagged
        .iter()
        .filter(|s| s.tps.starts_with(&prefix))
        .collect();
    let result = snapshot.regions.iter().find(|r| r.region == prefix);
    html! {
        section class="flags" id="flags" {
            h2 { (lang.t("Tanda forensik", "Forensic flags")) }
            p class="note" {
                (what_a_flag_is(lang)) " "
                (lang.t("Dinilai pada ukuran log ", "Scored at log size ")) (lang.number(snapshot.log_size as i64))
                (lang.t("; ambang FDR ", "; false discovery rate ")) (snapshot.fdr) "."
            }
            p {
                (lang.number(flagged.len() as i64))
                (lang.t(" TPS ditandai di wilayah ini.", " TPS flagged in this region."))
            }
            @if !flagged.is_empty() {
                // A list, not a table: the reasons are sentences, and a phone has room for one column.
                ol {
                    @for score in flagged.iter().take(FLAGS_ON_PAGE) {
                        li {
                            a href=(lang.link(&format!("/tps/{}", score.tps))) { "TPS " (score.tps) }
                            " — " (lang.t("skor", "score")) " " (format!("{:.1}", score.score)) ", q = " (format!("{:.1e}", score.q))
                            @if let Some(test) = score.tests.first() {
                                br;
                                code { (test.code) } " " (explanation(lang, test))
                            }
                        }
                    }
                }
                @if flagged.len() > FLAGS_ON_PAGE {
                    p class="note" {
                        (lang.t("Selebihnya: ", "The rest: "))
                        a href=(format!("/api/v1/flags?region={prefix}")) { "/api/v1/flags?region=" (prefix) }
                    }
                }
            }
            @if let Some(result) = result {
                @if let Some([en, id]) = &result.not_tested {
                    p class="note" { (match lang { Lang::Id => id, Lang::En => en }) }
                }
                @for test in &result.tests {
                    p class="note" { code { (test.code) } " " (match lang { Lang::Id => &test.id, Lang::En => &test.en }) }
                }
                @if result.flagged {
                    p { strong { (lang.t("Wilayah ini ditandai oleh uji digit", "This region is flagged by its digit tests")) } " (q = " (format!("{:.1e}", result.q)) ")." }
                }
                @if let Some(fingerprint) = &result.fingerprint {
                    (fingerprint_chart(lang, fingerprint))
                }
            }
        }
    }
}

/// The turnout-by-share fingerprint: one square per 4 x 4 percentage points, darker with more TPS
/// (log scale), turnout across, the region winner's share up.
fn fingerprint_chart(lang: Lang, fingerprint: &Fingerprint) -> Markup {
    const CELL: usize = 8;
    const LEFT: usize = 30;
    let side = CELL * FINGERPRINT_BINS;
    let most = fingerprint
        .cells
        .iter()
        .map(|c| c[2])
        .max()
        .unwrap_or(1)
        .max(1);
    let shade = |count: u32| (f64::from(count) + 1.0).ln() / (f64::from(most) + 1.0).ln();
    html! {
        figure class="fingerprint" {
            figcaption {
                (lang.t("Sidik jari: partisipasi (mendatar) terhadap perolehan ", "Fingerprint: turnout (across) against the share of "))
                (fingerprint.winner)
                (lang.t(" (tegak), per TPS", " (up), per TPS"))
            }
            svg viewBox=(format!("0 0 {} {}", side + LEFT + 4, side + 20)) width="100%" style="max-width:360px" role="img" aria-label=(lang.t("Sidik jari partisipasi dan perolehan", "Turnout and share fingerprint")) {
                rect x=(LEFT) y="0" width=(side) height=(side) fill="#f4f4f4" {}
                @for cell in &fingerprint.cells {
                    rect x=(LEFT + cell[0] as usize * CELL) y=(side - (cell[1] as usize + 1) * CELL) width=(CELL) height=(CELL) fill="#0072B2" fill-opacity=(format!("{:.2}", 0.15 + 0.85 * shade(cell[2]))) {}
                }
                @for mark in [0usize, 50, 100] {
                    text x=(LEFT + mark * side / 100) y=(side + 14) font-size="10" text-anchor="middle" { (mark) "%" }
                    text x=(LEFT - 4) y=(side - mark * side / 100 + 4) font-size="10" text-anchor="end" { (mark) "%" }
                }
            }
            p class="note" { (match lang { Lang::Id => &fingerprint.id, Lang::En => &fingerprint.en }) }
        }
    }
}

/// The section of a TPS page: its flags, or that it was scored and not flagged.
pub(crate) fn tps_section(lang: Lang, app: &App, tps: Code) -> Markup {
    let Some(snapshot) = app.flags.latest() else {
        return html! {};
    };
    let code = tps.to_string();
    let flag = snapshot.flagged.iter().find(|s| s.tps == code);
    html! {
        section class="flags" id="flags" {
            h2 { (lang.t("Tanda forensik", "Forensic flags")) }
            @match flag {
                Some(score) => {
                    p { strong { (lang.t("TPS ini ditandai", "This TPS is flagged")) } " (" (lang.t("skor", "score")) " " (format!("{:.1}", score.score)) ", q = " (format!("{:.1e}", score.q)) ")." }
                    ul {
                        @for test in &score.tests {
                            li { code { (test.code) } " " (explanation(lang, test)) " (p = " (format!("{:.1e}", test.p)) ")" }
                        }
                    }
                }
                None => p { (lang.t("Tidak ditandai pada penilaian terakhir.", "Not flagged in the latest scoring.")) }
            }
            p class="note" {
                (what_a_flag_is(lang)) " "
                (lang.t("Dinilai pada ukuran log ", "Scored at log size ")) (lang.number(snapshot.log_size as i64)) "."
            }
        }
    }
}
