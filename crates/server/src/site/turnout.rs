//! The turnout histogram of a region: how many counted TPS had each turnout (voters over the
//! registry's DPT, in 5% bins, and a bin above 100% for TPS where DPTb/DPK voters pushed it over).
//! Drawn by the server as SVG, with the same counts in a table for screen readers.
//!
//! A national histogram walks 823,220 TPS (tens of milliseconds), so histograms are kept per region
//! and rebuilt when the log has grown and the kept one is older than `REFRESH`: under a live
//! election one request a second pays for a rebuild, the rest are served from memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maud::{html, Markup};

use saksi_election::code::{Code, Level};
use saksi_recap::State as RecapState;

use super::Lang;

/// 20 bins of 5% up to 100%, and one above.
pub(crate) const BINS: usize = 21;
const REFRESH: Duration = Duration::from_secs(2);
/// Histograms kept at most (every region above the desa is 7,900; a desa's is cheap to rebuild).
const KEPT_MAX: usize = 16_384;

pub(crate) type Bins = [u32; BINS];

/// A kept histogram: the log size and time it was built at.
struct Kept {
    size: u64,
    at: Instant,
    bins: Arc<Bins>,
}

#[derive(Default)]
pub(crate) struct TurnoutCache {
    kept: Mutex<HashMap<Option<Code>, Kept>>,
}

impl TurnoutCache {
    /// The histogram of `region` (`None`: the nation) as of `state`.
    pub(crate) fn of(&self, state: &RecapState, region: Option<Code>) -> Arc<Bins> {
        let now = Instant::now();
        if let Some(kept) = self.kept.lock().expect("not poisoned").get(&region) {
            if kept.size == state.size || now.duration_since(kept.at) < REFRESH {
                return kept.bins.clone();
            }
        }
        let bins = Arc::new(histogram(state, region));
        let mut kept = self.kept.lock().expect("not poisoned");
        if kept.len() >= KEPT_MAX {
            kept.clear();
        }
        kept.insert(
            region,
            Kept {
                size: state.size,
                at: now,
                bins: bins.clone(),
            },
        );
        bins
    }
}

fn histogram(state: &RecapState, region: Option<Code>) -> Bins {
    let mut bins = [0u32; BINS];
    let mut stack: Vec<Code> = match region {
        Some(code) => vec![code],
        None => state.provinces().to_vec(),
    };
    while let Some(code) = stack.pop() {
        if code.level() != Level::Tps {
            stack.extend_from_slice(state.children(code));
            continue;
        }
        let (Some(counts), Some(dpt)) = (
            state.tps_record(code).and_then(|r| r.counts.as_ref()),
            state.registry.tps(code).and_then(|t| t.dpt),
        ) else {
            continue;
        };
        let registered = i64::from(dpt.total());
        if registered <= 0 {
            continue;
        }
        // 100% exactly belongs to the last 5% bin; above it, to the bin of its own.
        let percent = counts.voters * 100 / registered;
        let bin = if counts.voters > registered {
            BINS - 1
        } else {
            ((percent / 5) as usize).min(BINS - 2)
        };
        bins[bin] += 1;
    }
    bins
}

fn bin_label(bin: usize) -> String {
    if bin == BINS - 1 {
        "> 100%".into()
    } else {
        format!("{}–{}%", bin * 5, bin * 5 + 5)
    }
}

pub(crate) fn chart(lang: Lang, bins: &Bins) -> Markup {
    let most = bins.iter().copied().max().unwrap_or(0).max(1);
    let total: u32 = bins.iter().sum();
    const WIDTH: usize = 420;
    const HEIGHT: usize = 120;
    let bar = WIDTH / BINS;
    html! {
        figure class="turnout" data-live-html="turnout" {
            figcaption { (lang.t("Sebaran partisipasi per TPS terhitung (", "Turnout across counted TPS (")) (lang.number(i64::from(total))) " TPS)" }
            @if total > 0 {
                svg viewBox=(format!("0 0 {} {}", WIDTH + 24, HEIGHT + 16)) width="100%" aria-hidden="true" {
                    @for (i, count) in bins.iter().enumerate() {
                        @let height = (*count as usize * HEIGHT).div_ceil(most as usize);
                        rect x=(i * bar + 1) y=(HEIGHT - height) width=(bar - 2) height=(height) fill=(if i == BINS - 1 { "#D55E00" } else { "#0072B2" }) {}
                    }
                    @for mark in [0usize, 5, 10, 15, 20] {
                        text x=(mark * bar) y=(HEIGHT + 13) font-size="10" { (mark * 5) "%" }
                    }
                }
                details {
                    summary { (lang.t("Angka per kelompok", "Counts per bin")) }
                    table {
                        thead { tr { th scope="col" { (lang.t("Partisipasi", "Turnout")) } th scope="col" { "TPS" } } }
                        tbody {
                            @for (i, count) in bins.iter().enumerate() {
                                tr { th scope="row" { (bin_label(i)) } td data-bin=(i) { (lang.number(i64::from(*count))) } }
                            }
                        }
                    }
                }
            } @else {
                p { (lang.t("Belum ada TPS terhitung dengan DPT di registri.", "No counted TPS with a DPT in the registry yet.")) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_zero_to_a_hundred_and_above() {
        assert_eq!(bin_label(0), "0–5%");
        assert_eq!(bin_label(19), "95–100%");
        assert_eq!(bin_label(BINS - 1), "> 100%");
    }
}
