//! The recorder thread: owns the audio source, drains it, meters it, analyzes it and writes it to
//! the encrypted spool.
//!
//! [`Recording::start`] opens the source on a new thread (a `cpal::Stream` must stay on the thread
//! that made it) and reports whether it opened. The thread then loops: read what the source has,
//! feed the level meter (a [`Level`] to the caller ~25 times a second), the quality analyzer and
//! the spool writer. [`Recording::stop`] asks it to finish (after an optional post-roll, so the
//! last word is never cut) and returns the [`RecordedTake`].
//!
//! Failures keep their meaning: a device that disappears ends the take as *interrupted* (the audio
//! so far is kept for review); a spool write error (disk full) ends it within one chunk with an
//! error and wipes the partial file.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::audio::levels::LevelMeter;
use crate::audio::{
    AudioSource, Chunk, Level, POLL_INTERVAL, SourceCounters, SourceError, SourceInfo,
};
use crate::ids::TakeId;
use crate::quality::QualityAnalyzer;
use crate::spool::{SpoolError, SpoolTake, SpoolWriter};

/// How a recording runs.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    /// Where spool files go.
    pub spool_dir: PathBuf,
    /// Meter readings per second.
    pub levels_per_second: u32,
    /// Stop by itself after this long.
    pub max_duration: Option<Duration>,
    /// Keep recording this long after a stop request.
    pub post_roll: Duration,
}

impl RecorderOptions {
    /// Defaults: 25 meter readings per second, no limit, no post-roll.
    pub fn new(spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            spool_dir: spool_dir.into(),
            levels_per_second: 25,
            max_duration: None,
            post_roll: Duration::ZERO,
        }
    }
}

/// Why a recording failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The source could not be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The spool could not be written (disk full, permissions); the partial take was wiped.
    #[error("recording stopped: {0}")]
    Spool(#[from] SpoolError),
    /// The recorder thread panicked.
    #[error("the recorder thread failed unexpectedly")]
    Panicked,
}

/// A finished take, in the spool, awaiting review.
#[derive(Debug)]
pub struct RecordedTake {
    /// The take's id.
    pub take_id: TakeId,
    /// The encrypted PCM (readable only by this process).
    pub spool: SpoolTake,
    /// Where the audio came from.
    pub source: SourceInfo,
    /// When recording started (RFC 3339).
    pub started_at: String,
    /// Dropped and clipped sample counts from the source.
    pub counters: SourceCounters,
    /// The analysis of every sample, ready to be judged.
    pub analyzer: QualityAnalyzer,
    /// Set when the source failed mid-take (device unplugged): why.
    pub interrupted: Option<String>,
}

impl RecordedTake {
    /// Length in seconds.
    pub fn duration_s(&self) -> f64 {
        use crate::pcm::PcmReplay;
        self.spool.len() as f64 / self.spool.sample_rate() as f64
    }
}

/// A recording in progress.
pub struct Recording {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<RecordedTake, RecordError>>>,
    take_id: TakeId,
    source: SourceInfo,
}

/// Something that opens a source on the recorder thread.
pub type SourceFactory = Box<dyn FnOnce() -> Result<Box<dyn AudioSource>, SourceError> + Send>;

impl Recording {
    /// Opens the source on a new recorder thread and starts recording into the spool. Returns once
    /// the source is open (or failed to open). `on_level` is called on the recorder thread.
    pub fn start(
        open_source: SourceFactory,
        opts: RecorderOptions,
        mut on_level: impl FnMut(Level) + Send + 'static,
    ) -> Result<Self, RecordError> {
        let stop = Arc::new(AtomicBool::new(false));
        let take_id = TakeId::generate();
        let (ready_tx, ready_rx) =
            std::sync::mpsc::sync_channel::<Result<SourceInfo, RecordError>>(1);
        let thread_stop = stop.clone();
        let thread_take = take_id.clone();
        let handle = std::thread::Builder::new()
            .name("voxseal-recorder".into())
            .spawn(move || {
                let mut source = match open_source() {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return Err(RecordError::Panicked);
                    }
                };
                let writer = match SpoolWriter::create(
                    &opts.spool_dir,
                    &thread_take,
                    source.sample_rate(),
                ) {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return Err(RecordError::Panicked);
                    }
                };
                let _ = ready_tx.send(Ok(source.info()));
                run(
                    &mut *source,
                    writer,
                    thread_take,
                    &opts,
                    &thread_stop,
                    &mut on_level,
                )
            })
            .map_err(|_| RecordError::Panicked)?;
        match ready_rx.recv() {
            Ok(Ok(source)) => Ok(Self {
                stop,
                handle: Some(handle),
                take_id,
                source,
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(RecordError::Panicked)
            }
        }
    }

    /// The take being recorded.
    pub fn take_id(&self) -> &TakeId {
        &self.take_id
    }

    /// The source being recorded.
    pub fn source(&self) -> &SourceInfo {
        &self.source
    }

    /// True once the recorder stopped by itself (end of file, time limit, error).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops (after the post-roll) and returns the take.
    pub fn stop(mut self) -> Result<RecordedTake, RecordError> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits until the source ends or the time limit is reached.
    pub fn wait(mut self) -> Result<RecordedTake, RecordError> {
        self.join()
    }

    fn join(&mut self) -> Result<RecordedTake, RecordError> {
        let handle = self.handle.take().ok_or(RecordError::Panicked)?;
        handle.join().map_err(|_| RecordError::Panicked)?
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join(); // the take (if any) is dropped, which wipes its spool
        }
    }
}

fn run(
    source: &mut dyn AudioSource,
    mut writer: SpoolWriter,
    take_id: TakeId,
    opts: &RecorderOptions,
    stop: &AtomicBool,
    on_level: &mut dyn FnMut(Level),
) -> Result<RecordedTake, RecordError> {
    let rate = source.sample_rate();
    let started_at = crate::time::now_rfc3339();
    let mut meter = LevelMeter::new(rate, opts.levels_per_second);
    let mut analyzer = QualityAnalyzer::new(rate);
    let mut buf = zeroize::Zeroizing::new(vec![0f32; (rate as usize / 50).max(256)]);
    let limit = opts
        .max_duration
        .map(|d| (d.as_secs_f64() * rate as f64).round() as u64);
    let mut stop_at: Option<Instant> = None;
    let mut interrupted = None;
    loop {
        if stop_at.is_none() && stop.load(Ordering::Relaxed) {
            stop_at = Some(Instant::now() + opts.post_roll);
        }
        if stop_at.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        let mut want = buf.len();
        if let Some(limit) = limit {
            want = want.min(limit.saturating_sub(writer.samples()) as usize);
            if want == 0 {
                break;
            }
        }
        match source.read(&mut buf[..want]) {
            Ok(Chunk::Samples(n)) => {
                let s = &buf[..n];
                writer.write(s)?;
                analyzer.push(s);
                meter.push(s, &mut *on_level);
            }
            Ok(Chunk::Pending) => std::thread::sleep(POLL_INTERVAL),
            Ok(Chunk::End) => break,
            Err(e) => {
                interrupted = Some(e.to_string());
                break;
            }
        }
    }
    let counters = source.counters();
    let spool = writer.finish()?;
    Ok(RecordedTake {
        take_id,
        spool,
        source: source.info(),
        started_at,
        counters,
        analyzer,
        interrupted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{SyntheticKind, SyntheticSource};
    use crate::pcm::{PcmReplay, read_all};
    use std::sync::Mutex;

    fn synth(seconds: Option<f64>, realtime: bool) -> SourceFactory {
        Box::new(move || {
            Ok(Box::new(
                SyntheticSource::new(SyntheticKind::Speech, 16_000, seconds).realtime(realtime),
            ) as Box<dyn AudioSource>)
        })
    }

    #[test]
    fn records_a_file_like_source_to_the_end_with_levels() {
        let dir = tempfile::tempdir().unwrap();
        let levels = Arc::new(Mutex::new(Vec::new()));
        let l2 = levels.clone();
        let rec = Recording::start(
            synth(Some(2.0), false),
            RecorderOptions::new(dir.path()),
            move |l| l2.lock().unwrap().push(l),
        )
        .unwrap();
        let take = rec.wait().unwrap();
        assert_eq!(take.spool.len(), 32_000);
        assert!(take.interrupted.is_none());
        assert_eq!(levels.lock().unwrap().len(), 50, "25 readings per second");
        let want = SyntheticSource::generate(SyntheticKind::Speech, 16_000, 32_000);
        assert_eq!(read_all(&mut *take.spool.open().unwrap()).unwrap(), want);
        let report = take.analyzer.clone().finish(&Default::default());
        assert!(report.speech_s.is_some());
    }

    #[test]
    fn max_duration_and_stop_with_post_roll() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = RecorderOptions::new(dir.path());
        opts.max_duration = Some(Duration::from_millis(1500));
        let take = Recording::start(synth(None, false), opts, |_| {})
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(take.spool.len(), 24_000);

        let mut opts = RecorderOptions::new(dir.path());
        opts.post_roll = Duration::from_millis(300);
        let rec = Recording::start(synth(None, true), opts, |_| {}).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        let take = rec.stop().unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(300));
        let secs = take.duration_s();
        assert!((0.4..1.0).contains(&secs), "{secs}");
    }

    struct FailingSource(u32);
    impl AudioSource for FailingSource {
        fn sample_rate(&self) -> u32 {
            16_000
        }
        fn info(&self) -> SourceInfo {
            SourceInfo {
                kind: "test".into(),
                name: "dies".into(),
                sample_rate: 16_000,
                channels: 1,
                format: "f32".into(),
            }
        }
        fn read(&mut self, buf: &mut [f32]) -> Result<Chunk, SourceError> {
            if self.0 == 0 {
                return Err(SourceError::DeviceLost {
                    detail: "unplugged".into(),
                });
            }
            self.0 -= 1;
            buf.fill(0.1);
            Ok(Chunk::Samples(buf.len()))
        }
    }

    #[test]
    fn a_device_lost_mid_take_marks_it_interrupted_and_keeps_the_audio() {
        let dir = tempfile::tempdir().unwrap();
        let f: SourceFactory = Box::new(|| Ok(Box::new(FailingSource(10)) as Box<dyn AudioSource>));
        let rec = Recording::start(f, RecorderOptions::new(dir.path()), |_| {}).unwrap();
        let take = rec.wait().unwrap();
        assert!(take.interrupted.as_deref().unwrap().contains("unplugged"));
        assert_eq!(take.spool.len(), 10 * 320);
    }

    #[test]
    fn a_source_that_cannot_open_is_reported_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let f: SourceFactory = Box::new(|| Err(SourceError::NoDevice));
        let err = Recording::start(f, RecorderOptions::new(dir.path()), |_| {})
            .err()
            .unwrap();
        assert!(err.to_string().contains("no microphone"), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path())
                .map(|d| d.count())
                .unwrap_or(0),
            0
        );
    }

    #[test]
    fn dropping_a_recording_leaves_no_spool_file() {
        let dir = tempfile::tempdir().unwrap();
        let rec =
            Recording::start(synth(None, true), RecorderOptions::new(dir.path()), |_| {}).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        drop(rec);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
