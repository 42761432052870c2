//! Per-contractor token buckets for credential issuance.
//!
//! Each contractor has a bucket of [`RateLimit::burst`] tokens that refills by one token every
//! [`RateLimit::refill_secs`] seconds; every enrollment or session request that names the
//! contractor takes one. The defaults (burst 10, one token per 6 s: 10 requests a minute
//! sustained) are far above what a client needs (one session per 15 minutes, a few retries) and
//! far below what would let a stolen token mint credentials in bulk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use voxseal_core::ids::ContractorId;

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

/// Token buckets keyed by contractor (only contractors in the registry ever get one, so the map
/// is bounded by the registry's size).
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<ContractorId, Bucket>>,
}

impl RateLimiter {
    /// A limiter with these parameters.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `who`, or says how long until one is available.
    pub fn check(&self, who: &ContractorId) -> Result<(), Duration> {
        self.check_at(who, Instant::now())
    }

    fn check_at(&self, who: &ContractorId, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.limit.burst);
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = map.entry(who.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed / self.limit.refill_secs).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - b.tokens) * self.limit.refill_secs,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(RateLimit {
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
    fn validity() {
        assert!(RateLimit::default().is_valid());
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
