//! Deterministic randomness. Every value the generator draws is a function of the seed and a region or
//! TPS code, never of generation order, so a TPS's data is the same however the work is split over threads.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and well mixed enough for synthetic data.
#[derive(Clone)]
pub struct Rng(u64);

pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A stream for one (seed, key, purpose) triple.
    pub fn new(seed: u64, key: u64, purpose: u64) -> Rng {
        Rng(mix(seed ^ mix(key ^ mix(purpose))))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A small count with mean `mean` (Poisson by inversion; fine for small means).
    pub fn poisson(&mut self, mean: f64) -> i64 {
        let limit = (-mean).exp();
        let mut product = self.unit();
        let mut count = 0;
        while product > limit && count < 1000 {
            product *= self.unit();
            count += 1;
        }
        count
    }
}

/// Smooth regional noise in [-1, 1]: the same for every TPS of a region.
pub fn region_noise(seed: u64, region: u64, channel: u64) -> f64 {
    Rng::new(seed, region, 0x5eed_0000 + channel).unit() * 2.0 - 1.0
}
