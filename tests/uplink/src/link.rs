//! One direction of the emulated link: packets read from one TUN device reach the other after
//! the link's serialization time (its rate), a one-way delay with jitter, and random loss; a
//! router queue of bounded depth drops what does not fit, and an outage drops everything.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one direction of a link does to packets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Bits per second.
    pub rate_bps: u64,
    /// One-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `0..jitter`, without reordering packets.
    pub jitter: Duration,
    /// Probability that a packet is lost.
    pub loss: f64,
}

impl Shape {
    /// The router queue: a quarter second at the link's rate (at least 32 KiB), as home routers
    /// buffer generously.
    fn queue_limit(&self) -> Duration {
        let bytes = (self.rate_bps / 8 / 4).max(32 * 1024);
        self.serialization(bytes as usize)
    }

    fn serialization(&self, len: usize) -> Duration {
        Duration::from_nanos(len as u64 * 8 * 1_000_000_000 / self.rate_bps.max(1))
    }
}

/// Counters of one direction, in packets and IP bytes.
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets and bytes the sender put on the link (read from its TUN device).
    pub sent_packets: AtomicU64,
    /// Bytes the sender put on the link.
    pub sent_bytes: AtomicU64,
    /// Bytes delivered to the receiver.
    pub delivered_bytes: AtomicU64,
    /// Packets lost at random.
    pub lost: AtomicU64,
    /// Packets dropped during an outage.
    pub outage: AtomicU64,
    /// Packets dropped because the router queue was full.
    pub queue: AtomicU64,
}

impl Counters {
    /// The counters as JSON.
    pub fn json(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "sent_packets": get(&self.sent_packets),
            "sent_bytes": get(&self.sent_bytes),
            "delivered_bytes": get(&self.delivered_bytes),
            "lost": get(&self.lost),
            "outage": get(&self.outage),
            "queue": get(&self.queue),
        })
    }
}

/// A small xorshift generator: loss and jitter need no cryptographic randomness.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Moves packets from `from` to `to` shaped by `shape` (which may change while it runs) until
/// `from` fails; two threads, one reading and timing, one writing when each packet is due.
pub fn run(
    mut from: File,
    mut to: File,
    shape: Arc<Mutex<Shape>>,
    down: Arc<AtomicBool>,
    counters: Arc<Counters>,
    seed: u64,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let delivered = counters.clone();
    std::thread::spawn(move || {
        for (due, packet) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&packet).is_ok() {
                (delivered.delivered_bytes).fetch_add(packet.len() as u64, Ordering::Relaxed);
            }
        }
    });
    let mut rng = Rng(seed | 1);
    let mut link_free = Instant::now();
    let mut last_due = Instant::now();
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = from.read(&mut buf) {
        let now = Instant::now();
        let shape = *shape.lock().unwrap_or_else(|e| e.into_inner());
        counters.sent_packets.fetch_add(1, Ordering::Relaxed);
        counters.sent_bytes.fetch_add(n as u64, Ordering::Relaxed);
        if down.load(Ordering::Relaxed) {
            counters.outage.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let start = link_free.max(now);
        if start - now > shape.queue_limit() {
            counters.queue.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // A lost packet still used the link up to where it was lost: count its time.
        link_free = start + shape.serialization(n);
        if rng.unit() < shape.loss {
            counters.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let jitter = shape.jitter.mul_f64(rng.unit());
        let due = (link_free + shape.delay + jitter).max(last_due);
        last_due = due;
        if tx.send((due, buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_time_follows_the_rate() {
        let shape = Shape {
            rate_bps: 2_000_000,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
        };
        // 1500 bytes at 2 Mbit/s: 6 ms.
        assert_eq!(shape.serialization(1500), Duration::from_millis(6));
        // A quarter second of queue (62,500 bytes at 2 Mbit/s).
        assert_eq!(shape.queue_limit(), Duration::from_millis(250));
    }

    #[test]
    fn the_generator_is_uniform_enough_for_loss() {
        let mut rng = Rng(42);
        let lost = (0..100_000).filter(|_| rng.unit() < 0.02).count();
        assert!((1_700..2_300).contains(&lost), "{lost}");
    }
}
