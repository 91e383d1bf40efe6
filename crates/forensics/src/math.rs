//! The few distributions the tests need, written out so every p-value can be traced to a formula:
//! log-gamma (Lanczos), the beta-binomial's pmf and tails, the chi-square survival function
//! (regularized incomplete gamma), the normal tail, Fisher's combination, and Benjamini-Hochberg.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error below 1e-13 over the range we use).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    debug_assert!(x > 0.0, "ln_gamma of {x}");
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// A beta-binomial distribution: `n` trials whose success probability is itself Beta(alpha, beta).
/// It is the binomial with the extra spread real TPS show: mean n·p, variance n·p·(1-p)·(1 + (n-1)·rho)
/// with p = alpha / (alpha + beta) and rho = 1 / (alpha + beta + 1).
#[derive(Clone, Copy, Debug)]
pub struct BetaBinomial {
    pub n: u32,
    pub alpha: f64,
    pub beta: f64,
}

/// The smallest and largest probabilities a model may use: a share of exactly 0 or 1 among the peers
/// would make every other value impossible, and one stray vote is not impossible.
const P_FLOOR: f64 = 1e-4;
/// rho is kept inside (0, 1): 0 would be a plain binomial (we always allow some spread), 1 a coin that
/// gives all or nothing.
const RHO_FLOOR: f64 = 1e-5;
const RHO_CEILING: f64 = 0.95;

impl BetaBinomial {
    /// The distribution with mean share `p` and intra-class correlation `rho`.
    pub fn with_mean(n: u32, p: f64, rho: f64) -> BetaBinomial {
        let p = p.clamp(P_FLOOR, 1.0 - P_FLOOR);
        let rho = rho.clamp(RHO_FLOOR, RHO_CEILING);
        let concentration = 1.0 / rho - 1.0;
        BetaBinomial {
            n,
            alpha: p * concentration,
            beta: (1.0 - p) * concentration,
        }
    }

    pub fn ln_pmf(&self, k: u32) -> f64 {
        if k > self.n {
            return f64::NEG_INFINITY;
        }
        let (n, k) = (self.n as f64, k as f64);
        ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
            + ln_beta(k + self.alpha, n - k + self.beta)
            - ln_beta(self.alpha, self.beta)
    }

    pub fn pmf(&self, k: u32) -> f64 {
        self.ln_pmf(k).exp()
    }

    /// The chance that two independent draws are equal, sum over k of pmf(k)^2: the p-value of a tie
    /// between two counts from this distribution, wherever the tie falls.
    pub fn collision(&self) -> f64 {
        (0..=self.n)
            .map(|k| self.pmf(k).powi(2))
            .sum::<f64>()
            .min(1.0)
    }

    /// P(X >= k), summed outward from k with the pmf's ratio recurrence (one log-gamma evaluation per
    /// tail, then one multiplication per term). Terms below 1e-17 of the running sum stop the sum.
    pub fn upper_tail(&self, k: u32) -> f64 {
        if k == 0 {
            return 1.0;
        }
        if k > self.n {
            return 0.0;
        }
        let mut term = self.pmf(k);
        let mut sum = term;
        let n = self.n as f64;
        let mut j = k;
        while j < self.n {
            let jf = j as f64;
            // P(j+1)/P(j) = (n-j)/(j+1) · (j+alpha)/(n-j-1+beta)
            term *= (n - jf) / (jf + 1.0) * (jf + self.alpha) / (n - jf - 1.0 + self.beta);
            sum += term;
            j += 1;
            if term < sum * 1e-17 {
                break;
            }
        }
        sum.min(1.0)
    }

    /// P(X <= k).
    pub fn lower_tail(&self, k: u32) -> f64 {
        if k >= self.n {
            return 1.0;
        }
        let mut term = self.pmf(k);
        let mut sum = term;
        let n = self.n as f64;
        let mut j = k;
        while j > 0 {
            let jf = j as f64;
            // P(j-1)/P(j) = j/(n-j+1) · (n-j+beta)/(j-1+alpha)
            term *= jf / (n - jf + 1.0) * (n - jf + self.beta) / (jf - 1.0 + self.alpha);
            sum += term;
            j -= 1;
            if term < sum * 1e-17 {
                break;
            }
        }
        sum.min(1.0)
    }

    /// Two-sided p-value of observing k: twice the tail on k's side of the mean, at most 1. (The tail
    /// on the mean's side is the larger except within a count of the centre, where both are near 1/2
    /// and the p-value is 1 either way; computing one tail halves the work.)
    pub fn two_sided(&self, k: u32) -> f64 {
        let mean = self.n as f64 * self.alpha / (self.alpha + self.beta);
        let tail = if k as f64 >= mean {
            self.upper_tail(k)
        } else {
            self.lower_tail(k)
        };
        (2.0 * tail).min(1.0)
    }
}

/// The regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a): series below a + 1, Lentz's
/// continued fraction above.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let ln_prefix = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let mut term = 1.0 / a;
        let mut sum = term;
        let mut ap = a;
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * ln_prefix.exp()).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (ln_prefix.exp() * h).clamp(0.0, 1.0)
    }
}

/// P(chi-square with `df` degrees of freedom >= x).
pub fn chi_square_sf(x: f64, df: f64) -> f64 {
    gamma_q(df / 2.0, x / 2.0)
}

/// P(Z >= z) for a standard normal Z (via the chi-square with one degree of freedom, whose tail is
/// accurate far into the tail where 1 - Φ would cancel).
pub fn normal_sf(z: f64) -> f64 {
    if z >= 0.0 {
        0.5 * chi_square_sf(z * z, 1.0)
    } else {
        1.0 - 0.5 * chi_square_sf(z * z, 1.0)
    }
}

/// Fisher's combination of two independent p-values: -2 ln(p1 p2) is chi-square with 4 degrees of
/// freedom, whose survival function is e^(-x/2) (1 + x/2).
pub fn fisher2(p1: f64, p2: f64) -> f64 {
    let x = -2.0 * (p1.max(1e-300).ln() + p2.max(1e-300).ln());
    ((-x / 2.0).exp() * (1.0 + x / 2.0)).min(1.0)
}

/// Benjamini-Hochberg q-values, in the order of `p`: q_(i) = min over j >= i of p_(j) · m / j.
pub fn bh_q_values(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    for rank in (0..m).rev() {
        let index = order[rank];
        let candidate = p[index] * m as f64 / (rank + 1) as f64;
        running = running.min(candidate).min(1.0);
        q[index] = running;
    }
    q
}

/// The `q` quantile of a slice (the order statistic at floor(q·(n-1)); reordered in place); `None`
/// when empty.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let at = ((q.clamp(0.0, 1.0) * (values.len() - 1) as f64) as usize).min(values.len() - 1);
    let (_, m, _) = values.select_nth_unstable_by(at, |a, b| a.total_cmp(b));
    Some(*m)
}

/// The median of a slice (reordered in place); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mid = values.len() / 2;
    let (_, m, _) = values.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    Some(*m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!(close(ln_gamma(1.0), 0.0f64.max(1e-300), 1e12) || ln_gamma(1.0).abs() < 1e-13);
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-13));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
        assert!(close(ln_gamma(101.0), 363.739_375_555_563_47, 1e-13));
    }

    #[test]
    fn beta_binomial_sums_to_one_and_tails_agree() {
        for &(n, p, rho) in &[(10u32, 0.3, 0.01), (250, 0.55, 0.03), (300, 0.02, 0.2)] {
            let d = BetaBinomial::with_mean(n, p, rho);
            let total: f64 = (0..=n).map(|k| d.pmf(k)).sum();
            assert!(close(total, 1.0, 1e-10), "sum {total}");
            for k in [0, 1, n / 3, n / 2, n - 1, n] {
                let upper: f64 = (k..=n).map(|j| d.pmf(j)).sum();
                let lower: f64 = (0..=k).map(|j| d.pmf(j)).sum();
                assert!(close(d.upper_tail(k), upper, 1e-9), "upper {k}");
                assert!(close(d.lower_tail(k), lower, 1e-9), "lower {k}");
            }
            let mean: f64 = (0..=n).map(|k| k as f64 * d.pmf(k)).sum();
            assert!(close(mean, n as f64 * p, 1e-9));
            let var: f64 = (0..=n).map(|k| (k as f64 - mean).powi(2) * d.pmf(k)).sum();
            let expected = n as f64 * p * (1.0 - p) * (1.0 + (n as f64 - 1.0) * rho);
            assert!(close(var, expected, 1e-8), "var {var} vs {expected}");
        }
    }

    #[test]
    fn a_ties_chance_is_about_one_over_two_root_pi_sd() {
        // Nearly binomial (rho at its floor): sd = sqrt(n p (1 - p)), and for a bell of that width the
        // chance of a tie is 1 / (2 sqrt(pi) sd).
        let d = BetaBinomial::with_mean(400, 0.3, 0.0);
        let sd = (400.0f64 * 0.3 * 0.7).sqrt();
        let normal = 1.0 / (2.0 * std::f64::consts::PI.sqrt() * sd);
        assert!(close(d.collision(), normal, 0.03), "{}", d.collision());
        // Never more than the likeliest value's chance, and 1 for a single outcome.
        let most = (0..=400).map(|k| d.pmf(k)).fold(0.0, f64::max);
        assert!(d.collision() <= most);
        assert!(close(
            BetaBinomial::with_mean(0, 0.3, 0.1).collision(),
            1.0,
            1e-12
        ));
    }

    #[test]
    fn chi_square_and_normal_tails() {
        // Known quantiles: chi2(9) 95% = 16.919, chi2(1) 95% = 3.841, chi2(4) 99% = 13.277.
        assert!(close(chi_square_sf(16.919, 9.0), 0.05, 1e-3));
        assert!(close(chi_square_sf(3.841_458_8, 1.0), 0.05, 1e-6));
        assert!(close(chi_square_sf(13.276_704, 4.0), 0.01, 1e-6));
        assert!(close(normal_sf(1.959_964), 0.025, 1e-6));
        assert!(close(normal_sf(-1.959_964), 0.975, 1e-6));
        // Far tail: P(Z >= 8) = 6.22e-16.
        assert!(close(normal_sf(8.0), 6.220_960_574_271_78e-16, 1e-6));
        assert!(close(
            fisher2(0.05, 1.0),
            chi_square_sf(-2.0 * 0.05f64.ln(), 4.0),
            1e-9
        ));
    }

    #[test]
    fn benjamini_hochberg_matches_hand_computation() {
        let p = [0.01, 0.04, 0.03, 0.5];
        let q = bh_q_values(&p);
        // Sorted: 0.01 (r1) -> 0.04, 0.03 (r2) -> 0.06, 0.04 (r3) -> 0.0533, 0.5 (r4) -> 0.5;
        // then the running minimum from the top: 0.5, 0.0533, 0.0533, 0.04.
        let expected = [0.04, 0.053_333_333_333, 0.053_333_333_333, 0.5];
        for (a, b) in q.iter().zip(expected) {
            assert!(close(*a, b, 1e-9), "{q:?}");
        }
    }
}
