//! Requests per client address: a token bucket each, in constant time per check and bounded memory.
//!
//! Buckets live in two generations per shard: `current` and `previous`. A check looks in `current`,
//! then moves the bucket up from `previous`; when `current` is full or old, `previous` is dropped and
//! `current` becomes it. A bucket untouched for a whole generation is forgotten, which loses nothing:
//! the generation is longer than a bucket takes to refill. No check ever scans a table.
//!
//! The client address is the peer's, unless the peer is a configured reverse proxy: then it is the
//! rightmost address in `X-Forwarded-For` that is not itself a trusted proxy (the leftmost entries
//! are whatever the client claimed, so they are never believed).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Independent locks, so concurrent requests from different addresses rarely wait on each other.
const SHARDS: usize = 16;
/// Buckets per shard per generation: at most 2 x 16 x 16,384 = 524,288 buckets, each an address and
/// 24 bytes of state in a hash map (tens of MiB at most; the bound is on entries, tested).
const BUCKETS_PER_GENERATION: usize = 16_384;
/// The shortest a generation lasts (longer if a bucket takes longer to refill).
const MIN_GENERATION: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Shard {
    current: HashMap<IpAddr, Bucket>,
    previous: HashMap<IpAddr, Bucket>,
    since: Instant,
}

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    generation: Duration,
    shards: Vec<Mutex<Shard>>,
}

impl RateLimiter {
    /// `per_second` requests sustained, `burst` at once; `per_second == 0` means no limit.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter::with_rate(per_second as f64, burst)
    }

    /// `per_hour` sustained (e.g. reports per reporter key), `burst` at once.
    pub fn per_hour(per_hour: u32, burst: u32) -> RateLimiter {
        RateLimiter::with_rate(per_hour as f64 / 3600.0, burst)
    }

    fn with_rate(per_second: f64, burst: u32) -> RateLimiter {
        let burst = (burst as f64).max(1.0);
        let refill = if per_second > 0.0 {
            Duration::from_secs_f64(burst / per_second)
        } else {
            Duration::ZERO
        };
        let now = Instant::now();
        RateLimiter {
            per_second,
            burst,
            generation: MIN_GENERATION.max(refill),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        current: HashMap::new(),
                        previous: HashMap::new(),
                        since: now,
                    })
                })
                .collect(),
        }
    }

    /// Takes a token for `client`; `Err(wait)` when it has none (retry after `wait`).
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let key = bucket_key(client);
        let shard = &self.shards[shard_of(key)];
        let mut shard = shard.lock().expect("not poisoned");
        if shard.current.len() >= BUCKETS_PER_GENERATION
            || now.duration_since(shard.since) >= self.generation
        {
            shard.previous = std::mem::take(&mut shard.current);
            shard.since = now;
        }
        let bucket = match shard.current.get(&key) {
            Some(bucket) => *bucket,
            None => shard.previous.remove(&key).unwrap_or(Bucket {
                tokens: self.burst,
                at: now,
            }),
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        let tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        let (tokens, result) = if tokens >= 1.0 {
            (tokens - 1.0, Ok(()))
        } else {
            let wait = Duration::from_secs_f64((1.0 - tokens) / self.per_second);
            (tokens, Err(wait))
        };
        shard.current.insert(key, Bucket { tokens, at: now });
        result
    }
}

/// Reports a key (or, for the form without script, an address) may file at once before the hourly
/// rate applies: a report and a handful of follow-ups (fewer if the hourly allowance is smaller).
const HOURLY_BURST: u32 = 10;

/// An hourly allowance whose rate is the operator's logged setting: the limiter is made anew (its
/// buckets full) when the setting changes, and shared until then.
#[derive(Default)]
pub struct HourlyAllowance {
    current: Mutex<Option<(u32, std::sync::Arc<RateLimiter>)>>,
}

impl HourlyAllowance {
    /// Takes one from `bucket`'s allowance at `per_hour`; `Err(wait)` when it has none.
    pub fn check(&self, per_hour: u32, bucket: IpAddr) -> Result<(), Duration> {
        let limiter = {
            let mut current = self.current.lock().expect("not poisoned");
            match &*current {
                Some((rate, limiter)) if *rate == per_hour => limiter.clone(),
                _ => {
                    let limiter = std::sync::Arc::new(RateLimiter::per_hour(
                        per_hour,
                        HOURLY_BURST.min(per_hour),
                    ));
                    *current = Some((per_hour, limiter.clone()));
                    limiter
                }
            }
        };
        limiter.check(bucket, Instant::now())
    }
}

/// IPv6 clients are limited per /64, the block one subscriber is given: otherwise one host could
/// use 2^64 addresses as 2^64 clients.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match crate::conn::canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

fn shard_of(ip: IpAddr) -> usize {
    // A fixed multiplicative hash is enough: the shard only spreads lock contention, and a client
    // choosing its shard gains nothing (the table bound holds per shard).
    let folded: u64 = match ip {
        IpAddr::V4(v4) => u32::from(v4) as u64,
        IpAddr::V6(v6) => {
            let n = u128::from(v6);
            (n >> 64) as u64 ^ n as u64
        }
    };
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % SHARDS
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost address in
/// `X-Forwarded-For` that is not a trusted proxy. A malformed header counts as the peer's.
pub fn client_address(
    peer: IpAddr,
    forwarded_for: Option<&str>,
    trusted_proxies: &[IpAddr],
) -> IpAddr {
    let peer = crate::conn::canonical_ip(peer);
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut chain = Vec::new();
    // Bounded: a header longer than this many hops is not believed past them.
    for part in header.rsplit(',').take(32) {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) => chain.push(crate::conn::canonical_ip(ip)),
            Err(_) => return peer,
        }
    }
    chain
        .into_iter()
        .find(|ip| !trusted_proxies.contains(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(10, 20);
        let start = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..20 {
            assert!(limiter.check(a, start).is_ok());
        }
        let wait = limiter.check(a, start).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        // Another address is not affected.
        assert!(limiter.check(ip("192.0.2.2"), start).is_ok());
        // A tenth of a second later, one more.
        let later = start + Duration::from_millis(100);
        assert!(limiter.check(a, later).is_ok());
        assert!(limiter.check(a, later).is_err());
    }

    #[test]
    fn no_limit_when_the_rate_is_zero() {
        let limiter = RateLimiter::new(0, 0);
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(limiter.check(ip("192.0.2.1"), now).is_ok());
        }
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let limiter = RateLimiter::new(1, 1);
        let now = Instant::now();
        for n in 0..200_000u32 {
            let _ = limiter.check(IpAddr::V4(n.into()), now);
        }
        for shard in &limiter.shards {
            let shard = shard.lock().unwrap();
            assert!(shard.current.len() <= BUCKETS_PER_GENERATION);
            assert!(shard.previous.len() <= BUCKETS_PER_GENERATION);
        }
        // A recent client survives one rotation: its empty bucket was carried forward.
        let a = ip("198.51.100.7");
        assert!(limiter.check(a, now).is_ok());
        assert!(limiter.check(a, now).is_err());
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let limiter = RateLimiter::new(1, 1);
        let now = Instant::now();
        assert!(limiter.check(ip("2001:db8:1:2::1"), now).is_ok());
        assert!(limiter.check(ip("2001:db8:1:2::ffff"), now).is_err());
        assert!(limiter.check(ip("2001:db8:1:3::1"), now).is_ok());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.5");
        let trusted = [proxy, ip("10.0.0.6")];
        let header = Some("203.0.113.9, 198.51.100.1, 10.0.0.6");
        // From the proxy: the rightmost untrusted hop (the client's claim to the left is ignored).
        assert_eq!(client_address(proxy, header, &trusted), ip("198.51.100.1"));
        // From anyone else: the peer, whatever the header says.
        assert_eq!(
            client_address(ip("198.51.100.77"), header, &trusted),
            ip("198.51.100.77")
        );
        // Garbage or absence: the peer.
        assert_eq!(client_address(proxy, Some("nonsense"), &trusted), proxy);
        assert_eq!(client_address(proxy, None, &trusted), proxy);
    }
}
