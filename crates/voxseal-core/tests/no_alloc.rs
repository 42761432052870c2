//! The audio callback's path does not allocate.
//!
//! This binary's global allocator is [`assert_no_alloc::AllocDisabler`]; with the `warn_debug`
//! feature (see the workspace `Cargo.toml`) an allocation or deallocation inside
//! [`assert_no_alloc`] increments a per-thread violation count instead of aborting. Each test
//! reads the count on the thread that ran the code. A positive control shows the detector does
//! count, so these tests can fail.
//!
//! The cpal data callback in `capture.rs` (`build`) is exactly
//! `move |data: &[T], _info| sink.push_interleaved(data)`, so checking
//! [`CaptureSink::push_interleaved`] checks the whole callback. The last test also runs it from a
//! real cpal capture thread (with the PulseAudio env of `scripts/pulse.sh`; skipped without it).
//!
//! Only debug builds check: the crate's default `disable_release` feature turns
//! `assert_no_alloc` into a no-op under `--release`, so this file compiles to nothing there.
#![cfg(debug_assertions)]

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use assert_no_alloc::{AllocDisabler, assert_no_alloc, violation_count};
use cpal::{FromSample, Sample, SizedSample};
use voxseal_core::capture::audio::capture::CaptureSink;

#[global_allocator]
static A: AllocDisabler = AllocDisabler;

/// Runs `f` under the detector; returns how many (de)allocations it made on this thread.
fn violations_in(f: impl FnOnce()) -> u32 {
    let before = violation_count();
    assert_no_alloc(f);
    violation_count() - before
}

/// `frames` frames of `channels` channels: a 440 Hz sine at 48 kHz, half scale, in format `T`.
fn sine<T>(frames: usize, channels: usize) -> Vec<T>
where
    T: Sample + FromSample<f32>,
{
    (0..frames * channels)
        .map(|i| {
            let t = (i / channels) as f32 / 48_000.0;
            T::from_sample(0.5 * (std::f32::consts::TAU * 440.0 * t).sin())
        })
        .collect()
}

/// Pushes a period of every shape a callback sees (normal, odd sizes, empty, a partial frame)
/// into a roomy ring, and then into a full one (the drop path); all under the detector.
fn check_format<T>(channels: usize)
where
    T: Sample + FromSample<f32> + std::fmt::Debug,
    f32: FromSample<T>,
{
    let name = std::any::type_name::<T>();
    let period = sine::<T>(480, channels);
    let odd = sine::<T>(37, channels);
    let empty: Vec<T> = Vec::new();
    let partial = sine::<T>(1, channels + 1); // not a whole number of frames when stereo

    // Roomy ring: everything fits.
    let (mut sink, cons, shared) = CaptureSink::new(channels, 48_000);
    let v = violations_in(|| {
        for _ in 0..10 {
            sink.push_interleaved(&period);
        }
        sink.push_interleaved(&odd);
        sink.push_interleaved(&empty);
        sink.push_interleaved(&partial);
    });
    assert_eq!(v, 0, "{name} x{channels}: push_interleaved allocated");
    let c = shared.counters();
    assert_eq!(c.callbacks, 13);
    assert_eq!(c.dropped, 0);
    let got = cons.slots();
    let want = 10 * 480 + 37 + partial.len() / channels;
    assert_eq!(got, want, "{name} x{channels}");
    let peak = shared.take_peak();
    assert!(
        (0.45..=0.51).contains(&peak),
        "{name} x{channels}: peak {peak}"
    );

    // Full ring: the drop path (partly fits, then nothing fits).
    let (mut sink, cons, shared) = CaptureSink::new(channels, 1000);
    let v = violations_in(|| {
        for _ in 0..5 {
            sink.push_interleaved(&period);
        }
    });
    assert_eq!(v, 0, "{name} x{channels}: the drop path allocated");
    assert_eq!(cons.slots(), 1000);
    assert_eq!(shared.counters().dropped, 5 * 480 - 1000);
    assert_eq!(shared.counters().callbacks, 5);
}

#[test]
fn positive_control_an_allocation_inside_is_counted() {
    // Without this, a broken detector (wrong allocator, feature off) would pass every test.
    let v = violations_in(|| {
        let v = std::hint::black_box(vec![0u8; 64]);
        drop(std::hint::black_box(v));
    });
    assert_eq!(
        v, 2,
        "one allocation and one deallocation inside assert_no_alloc"
    );
    // And nothing is counted outside it.
    let before = violation_count();
    drop(std::hint::black_box(vec![0u8; 64]));
    assert_eq!(violation_count(), before);
    // A capture sink is allocated when it is made (off the audio thread): that counts too.
    let v = violations_in(|| drop(CaptureSink::new(2, 1024)));
    assert!(v > 0, "making a CaptureSink must allocate its ring");
}

#[test]
fn push_interleaved_does_not_allocate_for_any_format_or_channel_count() {
    for channels in [1, 2] {
        check_format::<i16>(channels);
        check_format::<u16>(channels);
        check_format::<f32>(channels);
        // The other formats CpalSource accepts.
        check_format::<i8>(channels);
        check_format::<u8>(channels);
        check_format::<i32>(channels);
        check_format::<u32>(channels);
        check_format::<f64>(channels);
    }
}

#[test]
fn push_interleaved_does_not_allocate_while_another_thread_drains() {
    const BLOCKS: u64 = 3_000;
    const FRAMES: u64 = 480;
    const CAPACITY: u64 = 4 * FRAMES;
    let (mut sink, mut cons, shared) = CaptureSink::new(2, CAPACITY as usize);
    let period = sine::<i16>(FRAMES as usize, 2);
    let done = Arc::new(AtomicBool::new(false));
    // While set, the drainer stops reading (a recorder thread that fell behind) and says so.
    let stall = Arc::new(AtomicBool::new(false));
    let stalled = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));

    let (d_done, d_stall, d_stalled, d_received) = (
        done.clone(),
        stall.clone(),
        stalled.clone(),
        received.clone(),
    );
    let drainer = std::thread::spawn(move || {
        // What CpalSource::read does, into a buffer made before the detector is on.
        let mut buf = vec![0f32; 1024];
        let mut violations = 0;
        loop {
            if d_stall.load(Ordering::Acquire) {
                d_stalled.store(true, Ordering::Release);
                std::thread::yield_now();
                continue;
            }
            d_stalled.store(false, Ordering::Release);
            let finished = d_done.load(Ordering::Acquire);
            violations += violations_in(|| {
                let n = buf.len().min(cons.slots());
                if n > 0 {
                    let chunk = cons.read_chunk(n).unwrap();
                    let (a, b) = chunk.as_slices();
                    buf[..a.len()].copy_from_slice(a);
                    buf[a.len()..a.len() + b.len()].copy_from_slice(b);
                    chunk.commit_all();
                    d_received.fetch_add(n as u64, Ordering::Release);
                }
            });
            if finished && cons.is_empty() {
                return violations;
            }
            std::thread::yield_now();
        }
    });

    let wait_until = |what: &str, cond: &dyn Fn() -> bool| {
        let t0 = Instant::now();
        while !cond() {
            assert!(t0.elapsed() < Duration::from_secs(10), "timed out: {what}");
            std::thread::yield_now();
        }
    };
    // Mostly paced like a device (push when a period fits, while the drainer reads), and every
    // 250 periods a burst of 8 while the drainer is stalled, so the ring overflows: both the
    // normal and the drop path run with the consumer on another thread.
    let mut violations = 0;
    let mut pushed = 0u64;
    let mut bursts = 0;
    for i in 0..BLOCKS {
        let burst = i % 250 < 8;
        if burst && i % 250 == 0 {
            stall.store(true, Ordering::Release);
            wait_until("the drainer stalls", &|| stalled.load(Ordering::Acquire));
            bursts += 1;
        }
        if !burst {
            stall.store(false, Ordering::Release);
            wait_until("room for a period", &|| {
                pushed - shared.counters().dropped - received.load(Ordering::Acquire)
                    <= CAPACITY - FRAMES
            });
        }
        violations += violations_in(|| sink.push_interleaved(&period));
        pushed += FRAMES;
    }
    stall.store(false, Ordering::Release);
    done.store(true, Ordering::Release);
    let drainer_violations = drainer.join().unwrap();
    let c = shared.counters();
    let received = received.load(Ordering::Acquire);
    eprintln!(
        "concurrent drain: {BLOCKS} callbacks of {FRAMES} stereo frames ({bursts} bursts): \
         {received} frames received, {} dropped",
        c.dropped
    );
    assert_eq!(violations, 0, "push_interleaved allocated");
    assert_eq!(drainer_violations, 0, "draining the ring allocated");
    assert_eq!(c.callbacks, BLOCKS);
    assert_eq!(received + c.dropped, BLOCKS * FRAMES);
    // Each burst finds the ring at most 1 period full: at least 8 - 4 + 1 = 5 periods overflow.
    assert!(
        c.dropped >= bursts * 4 * FRAMES,
        "the bursts overflow the ring ({} dropped)",
        c.dropped
    );
}

/// The sink's callback, as `capture.rs` builds it, with the detector around it.
fn build_checked<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut sink: CaptureSink,
    violations: Arc<AtomicU32>,
    callbacks: Arc<AtomicU64>,
) -> cpal::Stream
where
    T: SizedSample,
    f32: FromSample<T>,
{
    use cpal::traits::DeviceTrait;
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _info| {
                let before = violation_count();
                assert_no_alloc(|| sink.push_interleaved(data));
                violations.fetch_add(violation_count() - before, Ordering::Relaxed);
                callbacks.fetch_add(1, Ordering::Relaxed);
            },
            |err| eprintln!("stream error: {err}"),
            Some(Duration::from_secs(5)),
        )
        .expect("build the input stream")
}

#[test]
fn the_real_cpal_callback_does_not_allocate() {
    use cpal::SampleFormat as F;
    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

    if std::env::var("PULSE_SERVER").unwrap_or_default().is_empty() {
        let hint = "run `eval \"$(scripts/pulse.sh)\"` first (a private PulseAudio server)";
        if std::env::var("VOXSEAL_REQUIRE_PULSE").as_deref() == Ok("1") {
            panic!("PULSE_SERVER is not set and VOXSEAL_REQUIRE_PULSE=1: {hint}");
        }
        // Straight to stderr, not eprintln!: the test harness would hide it.
        let _ = writeln!(
            std::io::stderr(),
            "the_real_cpal_callback_does_not_allocate: skipped: PULSE_SERVER is not set; {hint}"
        );
        return;
    }
    let device = cpal::default_host()
        .default_input_device()
        .expect("a default input device");
    let cfg = device.default_input_config().unwrap();
    let config = cfg.config();
    let (sink, mut cons, shared) =
        CaptureSink::new(config.channels as usize, cfg.sample_rate() as usize * 4);
    let violations = Arc::new(AtomicU32::new(0));
    let callbacks = Arc::new(AtomicU64::new(0));
    let (v, c) = (violations.clone(), callbacks.clone());
    let stream = match cfg.sample_format() {
        F::I8 => build_checked::<i8>(&device, &config, sink, v, c),
        F::I16 => build_checked::<i16>(&device, &config, sink, v, c),
        F::I32 => build_checked::<i32>(&device, &config, sink, v, c),
        F::U8 => build_checked::<u8>(&device, &config, sink, v, c),
        F::U16 => build_checked::<u16>(&device, &config, sink, v, c),
        F::U32 => build_checked::<u32>(&device, &config, sink, v, c),
        F::F32 => build_checked::<f32>(&device, &config, sink, v, c),
        F::F64 => build_checked::<f64>(&device, &config, sink, v, c),
        other => panic!("unexpected sample format {other}"),
    };
    let t0 = Instant::now();
    stream.play().unwrap();
    while callbacks.load(Ordering::Relaxed) < 50 {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "only {} callbacks in 15 s",
            callbacks.load(Ordering::Relaxed)
        );
        // Keep the ring from filling, like the recorder does.
        while cons.pop().is_ok() {}
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(stream);
    let n = callbacks.load(Ordering::Relaxed);
    eprintln!(
        "real cpal callback: {n} callbacks ({} {} ch {} Hz) in {:.2?}, {} violations, {:?}",
        cfg.sample_format(),
        config.channels,
        cfg.sample_rate(),
        t0.elapsed(),
        violations.load(Ordering::Relaxed),
        shared.counters()
    );
    assert_eq!(violations.load(Ordering::Relaxed), 0);
    assert_eq!(shared.counters().callbacks, n);
}
