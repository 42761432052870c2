//! Token buckets: per contractor for credential issuance, per client address for refusals.
//!
//! A bucket holds up to [`RateLimit::burst`] tokens and regains one every
//! [`RateLimit::refill_secs`] seconds.
//! - Per contractor ([`RateLimit::default`]: burst 10, one token per 6 s, 10 a minute sustained):
//!   every *verified* session request takes one, so only the token's holder can spend it. That is
//!   far above what a client needs (one session per 15 minutes, a few retries) and far below what
//!   would let a stolen token mint credentials in bulk.
//! - Per client address ([`RateLimit::client_default`]: burst 20, one token per 5 s): every
//!   *refused* request takes one, and an address with an empty bucket is answered 429 before its
//!   body is read, anything is verified or audited. Honest clients are almost never refused, so
//!   they never notice it; a client that floods gets a few audit lines, then none.
//!
//! Buckets are kept for at most [`MAX_KEYS`] keys; when the map is full, buckets that have
//! refilled completely (they carry no information) are dropped, and if none has, new keys share
//! one overflow bucket.
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use voxseal_core::project::ids::ContractorId;

/// Token-bucket parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed at once (bucket size). Default 10.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Seconds to regain one request. Default 6.
    #[serde(default = "default_refill")]
    pub refill_secs: f64,
}

/// The most keys a [`RateLimiter`] keeps a bucket for.
pub const MAX_KEYS: usize = 65_536;

fn default_burst() -> u32 {
    10
}
fn default_refill() -> f64 {
    6.0
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: default_burst(),
            refill_secs: default_refill(),
        }
    }
}

impl RateLimit {
    /// The per-client-address default for refusals: burst 20, one regained every 5 s.
    pub fn client_default() -> Self {
        Self {
            burst: 20,
            refill_secs: 5.0,
        }
    }

    /// True when both values are usable (burst >= 1, 0 < refill <= 1 day).
    pub fn is_valid(&self) -> bool {
        self.burst >= 1
            && self.refill_secs.is_finite()
            && self.refill_secs > 0.0
            && self.refill_secs <= 86_400.0
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by `K` (a contractor, or a client address), at most [`MAX_KEYS`] of them.
#[derive(Debug)]
pub struct RateLimiter<K = ContractorId> {
    limit: RateLimit,
    buckets: Mutex<Buckets<K>>,
}

#[derive(Debug)]
struct Buckets<K> {
    map: HashMap<K, Bucket>,
    overflow: Option<Bucket>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter with these parameters.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                overflow: None,
            }),
        }
    }

    /// Takes one token for `who`, or says how long until one is available.
    pub fn check(&self, who: &K) -> Result<(), Duration> {
        self.take_at(who, Instant::now(), true)
    }

    /// Says whether `who` has a token left, without taking it (or how long until it has one).
    pub fn peek(&self, who: &K) -> Result<(), Duration> {
        self.take_at(who, Instant::now(), false)
    }

    /// Takes one token for `who` if it has one (a refusal being counted; never fails).
    pub fn charge(&self, who: &K) {
        let _ = self.check(who);
    }

    fn take_at(&self, who: &K, now: Instant, take: bool) -> Result<(), Duration> {
        let burst = f64::from(self.limit.burst);
        let fresh = || Bucket {
            tokens: burst,
            last: now,
        };
        let mut guard = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Buckets { map, overflow } = &mut *guard;
        if !map.contains_key(who) && map.len() >= MAX_KEYS {
            let refill = self.limit.refill_secs;
            map.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() / refill < burst
            });
        }
        let b = if map.len() < MAX_KEYS || map.contains_key(who) {
            map.entry(who.clone()).or_insert_with(fresh)
        } else {
            overflow.get_or_insert_with(fresh)
        };
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed / self.limit.refill_secs).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            if take {
                b.tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - b.tokens) * self.limit.refill_secs,
            ))
        }
    }

    #[cfg(test)]
    fn check_at(&self, who: &K, now: Instant) -> Result<(), Duration> {
        self.take_at(who, now, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let rl: RateLimiter = RateLimiter::new(RateLimit {
            burst: 3,
            refill_secs: 6.0,
        });
        let a: ContractorId = "alice-01".parse().unwrap();
        let b: ContractorId = "bob-02".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            rl.check_at(&a, t0).unwrap();
        }
        let wait = rl.check_at(&a, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 6.0).abs() < 1e-6, "{wait:?}");
        rl.check_at(&b, t0).expect("buckets are per contractor");
        let wait = rl.check_at(&a, t0 + Duration::from_secs(4)).unwrap_err();
        assert!((wait.as_secs_f64() - 2.0).abs() < 1e-6, "{wait:?}");
        rl.check_at(&a, t0 + Duration::from_secs(6)).unwrap();
        rl.check_at(&a, t0 + Duration::from_secs(6)).unwrap_err();
        // A long pause refills to the burst size, no further.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            rl.check_at(&a, later).unwrap();
        }
        rl.check_at(&a, later).unwrap_err();
    }

    #[test]
    fn peek_does_not_take_and_the_map_stays_bounded() {
        let rl = RateLimiter::<u32>::new(RateLimit {
            burst: 1,
            refill_secs: 60.0,
        });
        let t0 = Instant::now();
        rl.take_at(&7, t0, false).unwrap();
        rl.take_at(&7, t0, false).unwrap();
        rl.check_at(&7, t0).unwrap();
        rl.take_at(&7, t0, false).unwrap_err();
        // Fill the map (key 7 is in it) with spent buckets: new keys then share the overflow
        // bucket.
        for k in 0..MAX_KEYS as u32 - 1 {
            let _ = rl.check_at(&(k + 100), t0);
        }
        let len = || rl.buckets.lock().unwrap().map.len();
        assert_eq!(len(), MAX_KEYS);
        rl.check_at(&1, t0)
            .expect("the overflow bucket's first token");
        rl.check_at(&2, t0).expect_err("shared with key 1");
        // Once the buckets have refilled, they are dropped to make room.
        let later = t0 + Duration::from_secs(120);
        rl.check_at(&3, later).unwrap();
        assert_eq!(len(), 1);
    }

    #[test]
    fn validity() {
        assert!(RateLimit::default().is_valid());
        assert!(RateLimit::client_default().is_valid());
        assert!(
            !RateLimit {
                burst: 0,
                refill_secs: 1.0
            }
            .is_valid()
        );
        assert!(
            !RateLimit {
                burst: 1,
                refill_secs: 0.0
            }
            .is_valid()
        );
        assert!(
            !RateLimit {
                burst: 1,
                refill_secs: f64::NAN
            }
            .is_valid()
        );
    }
}
