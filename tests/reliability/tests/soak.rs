//! The recording soak: one take of a synthetic voice, in real time, for many minutes, through the
//! same path as a microphone (the audio callback's ring and atomics, the recorder thread, the
//! level meter, the quality analyzer and the encrypted spool).
//!
//! Run it with `scripts/soak.sh [minutes]` (default 5; the one-hour soak is `scripts/soak.sh 60`).
//! It is `#[ignore]`d so a plain `cargo test` does not wait for it. It asserts zero dropped
//! samples, a spool that holds exactly every sample produced (bit for bit), and flat memory:
//! resident memory after the first fifth of the run may grow by at most
//! [`RSS_GROWTH_MAX_KIB`]. It prints the RSS curve as `SOAK ...` lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use voxseal_core::capture::audio::SourceFactory;
use voxseal_core::capture::audio::capture::{CaptureShared, CaptureSink};
use voxseal_core::capture::audio::{
    AudioSource, Chunk, SourceCounters, SourceError, SourceInfo, SyntheticKind, SyntheticSource,
};
use voxseal_core::capture::recorder::{RecorderOptions, Recording};
use voxseal_core::dsp::pcm::PcmReplay;

/// The rate of the synthetic voice.
const RATE: u32 = 48_000;
/// Samples per callback (10 ms, a common audio buffer).
const BLOCK: usize = 480;
/// Resident memory may grow at most this much after the warm-up (the first fifth of the run).
const RSS_GROWTH_MAX_KIB: u64 = 2048;
/// RSS is sampled this often.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The recorder's side of the ring, as `CpalSource` reads it.
struct RingSource {
    consumer: rtrb::Consumer<f32>,
    shared: Arc<CaptureShared>,
    done: Arc<AtomicBool>,
}

impl AudioSource for RingSource {
    fn sample_rate(&self) -> u32 {
        RATE
    }
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "microphone".into(),
            name: "soak callback".into(),
            sample_rate: RATE,
            channels: 1,
            format: "f32".into(),
        }
    }
    fn read(&mut self, buf: &mut [f32]) -> Result<Chunk, SourceError> {
        let n = buf.len().min(self.consumer.slots());
        if n > 0 {
            let chunk = self.consumer.read_chunk(n).expect("slots checked");
            let (a, b) = chunk.as_slices();
            buf[..a.len()].copy_from_slice(a);
            buf[a.len()..a.len() + b.len()].copy_from_slice(b);
            chunk.commit_all();
            return Ok(Chunk::Samples(n));
        }
        if self.done.load(Ordering::SeqCst) && self.consumer.slots() == 0 {
            return Ok(Chunk::End);
        }
        Ok(Chunk::Pending)
    }
    fn counters(&self) -> SourceCounters {
        self.shared.counters()
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "real time, minutes long: run with scripts/soak.sh [minutes]"]
fn soak_recording_in_real_time() {
    let minutes: f64 = std::env::var("VOXSEAL_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(5.0);
    let total = (minutes * 60.0 * RATE as f64) as u64;
    let dir = tempfile::tempdir().unwrap();

    let (mut sink, consumer, shared) = CaptureSink::new(1, RATE as usize * 4);
    let done = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicU64::new(0));
    let source = RingSource {
        consumer,
        shared: shared.clone(),
        done: done.clone(),
    };
    let factory: SourceFactory = Box::new(move || Ok(Box::new(source) as Box<dyn AudioSource>));
    let levels = Arc::new(AtomicU64::new(0));
    let l2 = levels.clone();
    let rec = Recording::start(factory, RecorderOptions::new(dir.path()), move |_| {
        l2.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();

    // The "audio callback": every 10 ms of wall clock, the next 10 ms of the voice.
    let callback = {
        let (done, produced) = (done.clone(), produced.clone());
        std::thread::spawn(move || {
            let mut voice = SyntheticSource::new(SyntheticKind::Speech, RATE, None);
            let mut buf = vec![0f32; BLOCK];
            let t0 = Instant::now();
            let mut sent = 0u64;
            while sent < total {
                let due = t0 + Duration::from_secs_f64(sent as f64 / RATE as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let n = (BLOCK as u64).min(total - sent) as usize;
                let mut got = 0;
                while got < n {
                    match voice.read(&mut buf[got..n]).unwrap() {
                        Chunk::Samples(k) => got += k,
                        other => panic!("{other:?}"),
                    }
                }
                sink.push_interleaved::<f32>(&buf[..n]);
                sent += n as u64;
                produced.store(sent, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let t0 = Instant::now();
    let mut curve: Vec<(u64, u64)> = vec![(0, rss_kib())];
    while !callback.is_finished() {
        std::thread::sleep(SAMPLE_EVERY.min(Duration::from_millis(500)));
        let at = t0.elapsed().as_secs();
        if at >= curve.last().unwrap().0 + SAMPLE_EVERY.as_secs() {
            curve.push((at, rss_kib()));
            eprintln!(
                "SOAK t={at:>5} s  rss={:>7} KiB  produced={} dropped={}",
                curve.last().unwrap().1,
                produced.load(Ordering::SeqCst),
                shared.counters().dropped
            );
        }
    }
    callback.join().unwrap();
    let take = rec.wait().unwrap();
    let wall = t0.elapsed();
    curve.push((wall.as_secs(), rss_kib()));

    // Zero dropped samples, and every sample produced is in the spool, bit for bit.
    let dropped = take.counters.dropped;
    assert_eq!(dropped, 0, "samples dropped");
    assert!(take.interrupted.is_none(), "{:?}", take.interrupted);
    assert_eq!(take.spool.len(), total, "samples in the spool");
    let mut reader = take.spool.open().unwrap();
    let mut voice = SyntheticSource::new(SyntheticKind::Speech, RATE, None);
    let (mut got, mut want) = (vec![0f32; 65_536], vec![0f32; 65_536]);
    let mut checked = 0u64;
    loop {
        let n = reader.read_pcm(&mut got).unwrap();
        if n == 0 {
            break;
        }
        let mut k = 0;
        while k < n {
            match voice.read(&mut want[k..n]).unwrap() {
                Chunk::Samples(m) => k += m,
                other => panic!("{other:?}"),
            }
        }
        assert!(
            got[..n]
                .iter()
                .zip(&want[..n])
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "the spool differs from the voice near sample {checked}"
        );
        checked += n as u64;
    }
    assert_eq!(checked, total);

    // Flat memory after the warm-up.
    // While recording (the last point is after the take was collected and verified).
    let recording = &curve[..curve.len() - 1];
    let warm_at = recording
        .iter()
        .position(|(t, _)| *t as f64 >= wall.as_secs_f64() / 5.0)
        .unwrap_or(0);
    let warm = recording[warm_at].1;
    let peak_after = recording[warm_at..].iter().map(|c| c.1).max().unwrap();
    let growth = peak_after.saturating_sub(warm);
    let levels = levels.load(Ordering::Relaxed);
    eprintln!(
        "SOAK result: {minutes} min of audio ({total} samples) in {:.1} s wall; dropped {dropped}; spool {} MiB verified; level readings {levels}; RSS at start {} KiB, after warm-up {warm} KiB, peak after warm-up {peak_after} KiB, after the take {} KiB; growth after warm-up {growth} KiB (bound {RSS_GROWTH_MAX_KIB} KiB)",
        wall.as_secs_f64(),
        std::fs::metadata(take.spool.path())
            .map(|m| m.len() >> 20)
            .unwrap_or(0),
        curve[0].1,
        curve.last().unwrap().1,
    );
    assert!(growth <= RSS_GROWTH_MAX_KIB, "memory grows: {curve:?}");
    assert!(
        levels >= (minutes * 60.0 * 24.0) as u64,
        "the meter ran all along: {levels}"
    );
}
