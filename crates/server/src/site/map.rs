//! The map of the 38 provinces (and overseas) as a tile grid: one square per province, placed
//! roughly where it lies, so it needs no boundary data. Coloured by the leading pair, the margin,
//! turnout or progress (`?peta=`), drawn by the server as SVG; each tile links to its province and
//! says its value in words (colour is never the only signal); the legend is an HTML list and the
//! provinces table below the map is its table alternative.

use maud::{html, Markup};

use saksi_election::code::Code;
use saksi_recap::State as RecapState;

use super::{pair_colour, Lang};

/// (province code, short label, column, row) on a 16 x 7 grid, west to east, north to south.
const TILES: &[(&str, &str, u32, u32)] = &[
    ("11", "ACE", 0, 0),
    ("12", "SUT", 1, 1),
    ("14", "RIA", 2, 1),
    ("21", "KEP", 3, 1),
    ("13", "SUB", 1, 2),
    ("15", "JAM", 2, 2),
    ("16", "SUS", 3, 2),
    ("19", "BAB", 4, 2),
    ("17", "BEN", 2, 3),
    ("18", "LAM", 3, 3),
    ("31", "DKI", 4, 4),
    ("36", "BTN", 3, 5),
    ("32", "JAB", 4, 5),
    ("33", "JTG", 5, 5),
    ("34", "DIY", 5, 6),
    ("35", "JTM", 6, 5),
    ("51", "BAL", 7, 5),
    ("52", "NTB", 8, 5),
    ("53", "NTT", 9, 5),
    ("61", "KBR", 5, 2),
    ("62", "KTG", 6, 2),
    ("63", "KSL", 6, 3),
    ("64", "KTM", 7, 2),
    ("65", "KTR", 7, 1),
    ("75", "GOR", 9, 1),
    ("71", "SLU", 10, 1),
    ("72", "SLT", 9, 2),
    ("76", "SLB", 8, 3),
    ("73", "SLS", 8, 4),
    ("74", "SLG", 9, 4),
    ("82", "MAU", 11, 1),
    ("81", "MAL", 11, 3),
    ("96", "PBD", 12, 1),
    ("92", "PAB", 12, 2),
    ("91", "PAP", 14, 1),
    ("94", "PTG", 13, 2),
    ("95", "PPG", 14, 2),
    ("93", "PSL", 14, 3),
    ("99", "LN", 0, 6),
];

const TILE_PX: u32 = 44;
const GAP_PX: u32 = 4;
/// Light to dark (ColorBrewer Blues, readable by colour-blind readers); text turns white from the
/// fourth step on for contrast.
const STEPS: [&str; 5] = ["#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c"];

/// What the tiles are coloured by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    Leader,
    Margin,
    Turnout,
    Progress,
}

impl Measure {
    pub(crate) fn parse(text: Option<&str>) -> Measure {
        match text {
            Some("selisih") => Measure::Margin,
            Some("partisipasi") => Measure::Turnout,
            Some("progres") => Measure::Progress,
            _ => Measure::Leader,
        }
    }

    pub(crate) fn key(self) -> &'static str {
        match self {
            Measure::Leader => "pemimpin",
            Measure::Margin => "selisih",
            Measure::Turnout => "partisipasi",
            Measure::Progress => "progres",
        }
    }

    fn name(self, lang: Lang) -> &'static str {
        match self {
            Measure::Leader => lang.t("Pasangan unggul", "Leading pair"),
            Measure::Margin => lang.t("Selisih suara unggul", "Leader's margin"),
            Measure::Turnout => lang.t("Partisipasi", "Turnout"),
            Measure::Progress => lang.t("TPS terhitung", "TPS counted"),
        }
    }

    /// The bins of a sequential measure, in percent: [0, 20), [20, 40), ... [80, 100].
    fn step(percent_tenths: i64) -> usize {
        ((percent_tenths.clamp(0, 1000) / 200) as usize).min(STEPS.len() - 1)
    }
}

/// Tenths of a percent, rounded down.
fn tenths(part: i64, whole: i64) -> Option<i64> {
    (whole > 0).then(|| part * 1000 / whole)
}

pub(crate) fn province_map(lang: Lang, state: &RecapState, measure: Measure) -> Markup {
    let positions = state.positions();
    let width = 15 * (TILE_PX + GAP_PX);
    let height = 7 * (TILE_PX + GAP_PX);
    let tile = |code: &str| -> Option<(String, &'static str, &'static str, String)> {
        let code = Code::parse(code).ok()?;
        let tally = state.tally(code)?;
        let name = state.registry.region_name(code)?.to_string();
        let mut ranked: Vec<(usize, i64)> = tally.votes.iter().copied().enumerate().collect();
        ranked.sort_by_key(|(_, v)| std::cmp::Reverse(*v));
        let leader = ranked.first().filter(|(_, v)| *v > 0);
        let (fill, ink, value) = match measure {
            Measure::Leader => match leader {
                Some((i, votes)) => (
                    pair_colour(*i),
                    // White only on the two dark colours (contrast AA either way).
                    if matches!(pair_colour(*i), "#0072B2" | "#000000") {
                        "#fff"
                    } else {
                        "#000"
                    },
                    format!(
                        "{} {}",
                        positions.get(*i).map(String::as_str).unwrap_or(""),
                        lang.percent(*votes, tally.valid)
                    ),
                ),
                None => (
                    "#ffffff",
                    "#000",
                    lang.t("belum ada", "none yet").to_string(),
                ),
            },
            Measure::Margin => {
                let margin = match (ranked.first(), ranked.get(1)) {
                    (Some((_, a)), Some((_, b))) => tenths(a - b, tally.valid),
                    _ => None,
                };
                sequential(lang, margin)
            }
            Measure::Turnout => sequential(lang, tenths(tally.voters, tally.dpt)),
            Measure::Progress => sequential(
                lang,
                tenths(tally.tps_reported as i64, tally.tps_total as i64),
            ),
        };
        Some((name, fill, ink, value))
    };
    html! {
        figure class="map" {
            figcaption {
                (lang.t("Peta provinsi: ", "Provinces: ")) strong { (measure.name(lang)) } ". "
                (lang.t("Warnai menurut: ", "Colour by: "))
                @for other in [Measure::Leader, Measure::Margin, Measure::Turnout, Measure::Progress] {
                    @if other == measure { span aria-current="true" { (other.name(lang)) } }
                    @else { a href=(lang.link(&format!("/?peta={}", other.key()))) { (other.name(lang)) } }
                    " "
                }
            }
            div class="scroll" { svg viewBox=(format!("0 0 {width} {height}")) width="100%" role="group" aria-label=(lang.t("Peta petak provinsi; tabel provinsi di bawah berisi angka yang sama", "Tile map of the provinces; the provinces table below holds the same figures")) {
                @for (code, label, column, row) in TILES {
                    @if let Some((name, fill, ink, value)) = tile(code) {
                        @let (x, y) = (column * (TILE_PX + GAP_PX), row * (TILE_PX + GAP_PX));
                        a href=(lang.link(&format!("/wilayah/{code}"))) aria-label=(format!("{name}: {value}")) data-code=(code) {
                            title { (name) ": " (value) }
                            rect x=(x) y=(y) width=(TILE_PX) height=(TILE_PX) rx="4" fill=(fill) stroke="#333" {}
                            text x=(x + TILE_PX / 2) y=(y + 18) text-anchor="middle" font-size="11" font-weight="700" fill=(ink) { (label) }
                            text x=(x + TILE_PX / 2) y=(y + 34) text-anchor="middle" font-size="9" fill=(ink) { (value.split(' ').next().unwrap_or("")) }
                        }
                    }
                }
            } }
            (legend(lang, state, measure))
        }
    }
}

fn sequential(lang: Lang, tenths: Option<i64>) -> (&'static str, &'static str, String) {
    match tenths {
        Some(t) => {
            let step = Measure::step(t);
            let ink = if step >= 3 { "#fff" } else { "#000" };
            (
                STEPS[step],
                ink,
                format!("{}{}{}%", t / 10, lang.t(",", "."), t % 10),
            )
        }
        None => ("#ffffff", "#000", "–".into()),
    }
}

fn legend(lang: Lang, state: &RecapState, measure: Measure) -> Markup {
    let names = super::pair_names(state);
    html! {
        ul class="legend" aria-label=(lang.t("Keterangan warna", "Colour key")) {
            @if measure == Measure::Leader {
                @for (i, position) in state.positions().iter().enumerate() {
                    li { span class="swatch" style=(format!("background:{}", pair_colour(i))) {} (position) " " (names.get(i).map(String::as_str).unwrap_or("")) }
                }
            } @else {
                @for (i, colour) in STEPS.iter().enumerate() {
                    li { span class="swatch" style=(format!("background:{colour}")) {} (i * 20) "–" (i * 20 + 20) "%" }
                }
            }
            li { (lang.t("Angka pada petak: ", "The figure on a tile: ")) (match measure { Measure::Leader => lang.t("nomor urut pasangan unggul", "the leading pair's number"), _ => lang.t("persentase", "the percentage") }) }
        }
    }
}
