//! The microphone disappearing mid-take, through to the outbox: with an error from the device
//! (unplugged: the audio backend reports it) and without one (the device just stops delivering,
//! as some backends do when a source vanishes). Either way the take ends as interrupted, keeps
//! the audio it has, seals with `interrupted` in its manifest, and nothing hangs.
//! (The recorder's unit tests cover the error case at the recorder's level.)

use std::sync::mpsc;
use std::time::{Duration, Instant};

use voxseal_core::capture::audio::SourceFactory;
use voxseal_core::capture::audio::{AudioSource, Chunk, SourceError, SourceInfo};
use voxseal_core::capture::recorder::{Recorder, RecorderEvent, RecorderOptions, Recording};
use voxseal_core::dsp::pcm::PcmReplay;
use voxseal_reliability::Stack;

/// Ways of disappearing tried: an error and a silent stall mid-take
/// (`a_microphone_that_disappears_mid_take_*`), a device that never delivers
/// (`a_microphone_that_never_delivers_*`), and a stall while only metering
/// (`a_microphone_that_goes_silent_during_the_mic_check_*`).
const CASES_DEVICE_LOST: usize = 4;
const _: () = assert!(CASES_DEVICE_LOST == 2 + 1 + 1);

/// Delivers `audio` seconds of a tone in real time, then fails (`error`) or stalls.
struct Vanishing {
    rate: u32,
    left: u64,
    error: bool,
    started: Option<Instant>,
    delivered: u64,
}

impl Vanishing {
    fn factory(audio: f64, error: bool) -> SourceFactory {
        Box::new(move || {
            Ok(Box::new(Vanishing {
                rate: 48_000,
                left: (audio * 48_000.0) as u64,
                error,
                started: None,
                delivered: 0,
            }) as Box<dyn AudioSource>)
        })
    }
}

impl AudioSource for Vanishing {
    fn sample_rate(&self) -> u32 {
        self.rate
    }
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "microphone".into(),
            name: "vanishing".into(),
            sample_rate: self.rate,
            channels: 1,
            format: "f32".into(),
        }
    }
    fn read(&mut self, buf: &mut [f32]) -> Result<Chunk, SourceError> {
        if self.left == 0 {
            return if self.error {
                Err(SourceError::DeviceLost {
                    detail: "the device was unplugged".into(),
                })
            } else {
                Ok(Chunk::Pending) // gone quiet, for good
            };
        }
        let start = *self.started.get_or_insert_with(Instant::now);
        let due = (start.elapsed().as_secs_f64() * self.rate as f64) as u64;
        let n = due
            .saturating_sub(self.delivered)
            .min(buf.len() as u64)
            .min(self.left) as usize;
        if n == 0 {
            return Ok(Chunk::Pending);
        }
        for (i, x) in buf[..n].iter_mut().enumerate() {
            let t = (self.delivered + i as u64) as f32 / self.rate as f32;
            *x = 0.3 * (2.0 * std::f32::consts::PI * 220.0 * t).sin();
        }
        self.delivered += n as u64;
        self.left -= n as u64;
        Ok(Chunk::Samples(n))
    }
}

/// `Recording::wait` on another thread, failing the test instead of hanging it.
fn wait_bounded(rec: Recording, limit: Duration) -> voxseal_core::capture::recorder::RecordedTake {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(rec.wait());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the take did not end within {limit:?}: the recorder hangs"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_that_disappears_mid_take_ends_it_as_interrupted_and_it_seals() {
    let s = Stack::new().await;
    let mut ran = 0;
    for (error, limit) in [
        (true, Duration::from_secs(2)),
        (false, Duration::from_secs(8)),
    ] {
        let t0 = Instant::now();
        let rec = Recording::start(
            Vanishing::factory(1.0, error),
            RecorderOptions::new(s.ws.spool_dir()),
            |_| {},
        )
        .unwrap();
        let take = wait_bounded(rec, limit);
        eprintln!(
            "device {} after 1 s of audio: the take ended after {:?}",
            if error { "error" } else { "stall" },
            t0.elapsed()
        );
        let why = take.interrupted.clone().expect("marked interrupted");
        assert!(
            why.contains(if error { "unplugged" } else { "no audio" }),
            "{why}"
        );
        let samples = take.spool.len();
        assert!(
            (47_000..=48_000).contains(&samples),
            "the audio so far is kept: {samples}"
        );
        let item = s.accept(s.review(take)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            item.manifest.audio.interrupted.as_deref(),
            Some(why.as_str())
        );
        assert_eq!(item.manifest.audio.take_samples, samples);
        ran += 1;
    }
    assert_eq!(s.ws.raw_on_machine().unwrap().spool_takes, 0);
    assert_eq!(ran, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_that_never_delivers_ends_the_take_too() {
    let s = Stack::new().await;
    let t0 = Instant::now();
    let rec = Recording::start(
        Vanishing::factory(0.0, false),
        RecorderOptions::new(s.ws.spool_dir()),
        |_| {},
    )
    .unwrap();
    let take = wait_bounded(rec, Duration::from_secs(20));
    assert!(take.interrupted.is_some());
    assert_eq!(take.spool.len(), 0);
    eprintln!(
        "a device that never delivers: ended after {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_that_goes_silent_during_the_mic_check_is_reported() {
    // While only metering, the owner hears about it, and a new take is refused with the reason
    // instead of recording silence.
    let s = Stack::new().await;
    let (tx, rx) = mpsc::channel();
    let rec = Recorder::start(
        Vanishing::factory(0.5, false),
        RecorderOptions::new(s.ws.spool_dir()),
        |_| {},
        move |e| {
            let _ = tx.send(e);
        },
    )
    .unwrap();
    let event = rx.recv_timeout(Duration::from_secs(8)).expect("reported");
    assert!(
        matches!(event, RecorderEvent::SourceFailed(ref why) if why.contains("no audio")),
        "{event:?}"
    );
    let err = rec.begin_take().unwrap_err();
    assert!(err.to_string().contains("no audio"), "{err}");
}
