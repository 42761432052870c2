//! The recorder thread: owns the audio source, meters it, and records takes into the spool.
//!
//! One thread per open source ([`Recorder`]): a `cpal::Stream` must stay on the thread that made
//! it, and everything heavy (draining the ring, metering, analysis, encryption, disk writes)
//! happens here, never in the audio callback. The thread always meters (a [`Level`] to the caller
//! ~25 times a second: the live meter of the mic check) and keeps the last `pre_roll` of audio in
//! memory. [`Recorder::begin_take`] starts a take *with* that pre-roll, so the first syllable is
//! never cut; [`Recorder::end_take`] keeps recording for the post-roll before finishing, so the
//! last one is not cut either. [`Recording`] is the one-take convenience used by the CLI.
//!
//! Failures keep their meaning: a device that disappears ends the take as *interrupted* (the
//! audio so far is kept for review) and is reported as a [`RecorderEvent::SourceFailed`], whether
//! the backend says so or the device just stops delivering (no audio for [`STALL_LIMIT`], or
//! none at all within [`START_LIMIT`] of opening it: nothing waits forever); a spool
//! write error (disk full) ends the take within one chunk (at most 0.4 s of audio at 44.1 kHz)
//! with an error and wipes the partial file.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::capture::audio::levels::LevelMeter;
use crate::capture::audio::{
    AudioSource, Chunk, Level, POLL_INTERVAL, SourceCounters, SourceError, SourceFactory,
    SourceInfo,
};
use crate::capture::spool::{SpoolError, SpoolTake, SpoolWriter};
use crate::dsp::quality::QualityAnalyzer;
use crate::project::ids::TakeId;

/// A source that delivered audio and then nothing for this long is taken as gone: some backends
/// report a vanished device as silence rather than as an error.
pub const STALL_LIMIT: Duration = Duration::from_secs(3);
/// How long a newly opened source may take to deliver its first audio (PulseAudio took up to
/// 2 s on the CI machines) before it is taken as gone.
pub const START_LIMIT: Duration = Duration::from_secs(10);

/// How a recorder runs.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    /// Where spool files go.
    pub spool_dir: PathBuf,
    /// Meter readings per second.
    pub levels_per_second: u32,
    /// The longest take allowed (the project's `max_take_s`): a take that reaches it stops
    /// there and is marked as cut ([`RecordedTake::reached_limit`]), so a cut is never silent.
    pub max_duration: Option<Duration>,
    /// A take stops by itself after this long, as a normal end (`voxseal record --seconds`).
    pub stop_after: Option<Duration>,
    /// Keep recording this long after a stop request.
    pub post_roll: Duration,
    /// Audio from before `begin_take` included at the start of a take.
    pub pre_roll: Duration,
}

impl RecorderOptions {
    /// Defaults: 25 meter readings per second, no limit, no pre- or post-roll.
    pub fn new(spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            spool_dir: spool_dir.into(),
            levels_per_second: 25,
            max_duration: None,
            stop_after: None,
            post_roll: Duration::ZERO,
            pre_roll: Duration::ZERO,
        }
    }
}

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The source could not be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The spool could not be written (disk full, permissions); the partial take was wiped.
    #[error("recording stopped: {0}")]
    Spool(#[from] SpoolError),
    /// A take is already being recorded.
    #[error("a take is already being recorded")]
    Busy,
    /// There is no take to stop.
    #[error("no take is being recorded")]
    NoTake,
    /// The recorder thread is gone.
    #[error("the recorder thread stopped unexpectedly")]
    Gone,
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
    /// Set when the take ended early: why. A source that failed mid-take (device unplugged)
    /// says so; a take cut at `max_duration` starts with [`LIMIT_REACHED`].
    pub interrupted: Option<String>,
}

/// How [`RecordedTake::interrupted`] starts for a take cut at the project's longest take.
pub const LIMIT_REACHED: &str = "max_take_s";

/// The `interrupted` text of a take cut at `limit`.
fn limit_reached(limit: Duration) -> String {
    format!(
        "{LIMIT_REACHED}: the take reached the project's limit of {} s and was stopped there",
        limit.as_secs_f64()
    )
}

impl RecordedTake {
    /// True when the take was cut at the project's longest take (not a device failure).
    pub fn reached_limit(&self) -> bool {
        self.interrupted
            .as_deref()
            .is_some_and(|w| w.starts_with(LIMIT_REACHED))
    }

    /// Length in seconds.
    pub fn duration_s(&self) -> f64 {
        use crate::dsp::pcm::PcmReplay;
        self.spool.len() as f64 / self.spool.sample_rate() as f64
    }
}

/// Things the recorder tells its owner about, from its thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecorderEvent {
    /// A take ended by itself (time limit, end of file, device lost); collect it with `end_take`.
    TakeEnded,
    /// The source failed (device unplugged); the recorder no longer delivers audio.
    SourceFailed(String),
}

enum Cmd {
    Begin(SyncSender<Result<TakeId, RecordError>>),
    End(SyncSender<Result<RecordedTake, RecordError>>),
}

/// A source under a recorder thread: metering always, recording takes on request.
pub struct Recorder {
    cmds: Option<Sender<Cmd>>,
    handle: Option<JoinHandle<()>>,
    source: SourceInfo,
}

impl Recorder {
    /// Opens the source on a new recorder thread and starts metering. Returns once the source is
    /// open (or failed to open). Callbacks run on the recorder thread.
    pub fn start(
        open_source: SourceFactory,
        opts: RecorderOptions,
        on_level: impl FnMut(Level) + Send + 'static,
        on_event: impl FnMut(RecorderEvent) + Send + 'static,
    ) -> Result<Self, RecordError> {
        Self::spawn(
            open_source,
            opts,
            Box::new(on_level),
            Box::new(on_event),
            false,
        )
        .map(|(r, _)| r)
    }

    /// Like [`Recorder::start`], but the first take begins before the first sample is read
    /// (nothing of a file or synthetic source is consumed by metering alone).
    fn start_with_take(
        open_source: SourceFactory,
        opts: RecorderOptions,
        on_level: Box<dyn FnMut(Level) + Send>,
        on_event: Box<dyn FnMut(RecorderEvent) + Send>,
    ) -> Result<(Self, TakeId), RecordError> {
        let (r, id) = Self::spawn(open_source, opts, on_level, on_event, true)?;
        Ok((r, id.expect("a take was begun")))
    }

    fn spawn(
        open_source: SourceFactory,
        opts: RecorderOptions,
        on_level: Box<dyn FnMut(Level) + Send>,
        on_event: Box<dyn FnMut(RecorderEvent) + Send>,
        begin: bool,
    ) -> Result<(Self, Option<TakeId>), RecordError> {
        let (cmd_tx, cmd_rx) = mpsc::channel::<Cmd>();
        let (ready_tx, ready_rx) =
            mpsc::sync_channel::<Result<(SourceInfo, Option<TakeId>), RecordError>>(1);
        let handle = std::thread::Builder::new()
            .name("voxseal-recorder".into())
            .spawn(move || {
                let source = match open_source() {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let info = source.info();
                let mut worker = Worker::new(source, opts, on_level, on_event);
                let take = if begin {
                    match worker.begin() {
                        Ok(id) => Some(id),
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    }
                } else {
                    None
                };
                let _ = ready_tx.send(Ok((info, take)));
                worker.run(cmd_rx);
            })
            .map_err(|_| RecordError::Gone)?;
        match ready_rx.recv() {
            Ok(Ok((source, take))) => Ok((
                Self {
                    cmds: Some(cmd_tx),
                    handle: Some(handle),
                    source,
                },
                take,
            )),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(RecordError::Gone)
            }
        }
    }

    /// The source being recorded.
    pub fn source(&self) -> &SourceInfo {
        &self.source
    }

    fn ask<T>(
        &self,
        make: impl FnOnce(SyncSender<Result<T, RecordError>>) -> Cmd,
    ) -> Result<T, RecordError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.cmds
            .as_ref()
            .ok_or(RecordError::Gone)?
            .send(make(tx))
            .map_err(|_| RecordError::Gone)?;
        rx.recv().map_err(|_| RecordError::Gone)?
    }

    /// Starts a take (including the pre-roll); returns its id.
    pub fn begin_take(&self) -> Result<TakeId, RecordError> {
        self.ask(Cmd::Begin)
    }

    /// Stops the take after the post-roll (or collects one that ended by itself).
    pub fn end_take(&self) -> Result<RecordedTake, RecordError> {
        self.ask(Cmd::End)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.cmds = None; // the thread sees the channel close and exits; a take in flight is wiped
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The last `capacity` samples, overwritten in a circle; zeroized on drop; locked out of swap
/// where the OS allows.
struct PreRoll {
    // Before `buf`: unlocked before the memory is freed.
    _lock: crate::hardening::MemLock,
    buf: Zeroizing<Vec<f32>>,
    next: usize,
    full: bool,
}

impl PreRoll {
    fn new(capacity: usize) -> Self {
        let buf = Zeroizing::new(vec![0.0; capacity]);
        Self {
            _lock: crate::hardening::MemLock::new(&buf[..]),
            buf,
            next: 0,
            full: false,
        }
    }
    fn push(&mut self, s: &[f32]) {
        let cap = self.buf.len();
        if cap == 0 {
            return;
        }
        for &x in s {
            self.buf[self.next] = x;
            self.next = (self.next + 1) % cap;
            self.full |= self.next == 0;
        }
    }
    /// The stored samples in order, then forgets them.
    fn drain(
        &mut self,
        mut out: impl FnMut(&[f32]) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        let (a, b) = self.buf.split_at(self.next);
        if self.full {
            out(b)?;
        }
        out(a)?;
        self.buf.iter_mut().for_each(|x| *x = 0.0);
        self.next = 0;
        self.full = false;
        Ok(())
    }
}

struct Take {
    id: TakeId,
    writer: SpoolWriter,
    analyzer: QualityAnalyzer,
    started_at: String,
    limit: Option<u64>,
    stop_after: Option<u64>,
    stop_at: Option<Instant>,
    reply: Option<SyncSender<Result<RecordedTake, RecordError>>>,
}

enum State {
    Monitoring,
    Recording(Box<Take>),
    /// A take ended by itself and waits to be collected.
    Ended(Box<Result<RecordedTake, RecordError>>),
}

struct Worker {
    source: Box<dyn AudioSource>,
    opts: RecorderOptions,
    on_level: Box<dyn FnMut(Level) + Send>,
    on_event: Box<dyn FnMut(RecorderEvent) + Send>,
    meter: LevelMeter,
    pre_roll: PreRoll,
    // Before `buf`: unlocked before the memory is freed.
    _buf_lock: crate::hardening::MemLock,
    buf: Zeroizing<Vec<f32>>,
    state: State,
    source_done: bool,
    failure: Option<String>,
    /// When the source last delivered audio (or was opened), and whether it ever did.
    last_audio: Instant,
    heard: bool,
}

impl Worker {
    fn new(
        source: Box<dyn AudioSource>,
        opts: RecorderOptions,
        on_level: Box<dyn FnMut(Level) + Send>,
        on_event: Box<dyn FnMut(RecorderEvent) + Send>,
    ) -> Self {
        let rate = source.sample_rate();
        let buf = Zeroizing::new(vec![0f32; (rate as usize / 50).max(256)]);
        Self {
            meter: LevelMeter::new(rate, opts.levels_per_second),
            pre_roll: PreRoll::new((opts.pre_roll.as_secs_f64() * rate as f64) as usize),
            _buf_lock: crate::hardening::MemLock::new(&buf[..]),
            buf,
            source,
            opts,
            on_level,
            on_event,
            state: State::Monitoring,
            source_done: false,
            failure: None,
            last_audio: Instant::now(),
            heard: false,
        }
    }

    fn run(mut self, cmds: Receiver<Cmd>) {
        loop {
            // Commands first, without waiting when there is audio to drain.
            let wait = if self.source_done {
                Duration::from_millis(50)
            } else {
                Duration::ZERO
            };
            match cmds.recv_timeout(wait) {
                Ok(cmd) => self.handle(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return, // owner gone: drop any take (wiped)
            }
            if self.source_done {
                continue;
            }
            if let State::Recording(take) = &self.state
                && take.stop_at.is_some_and(|t| Instant::now() >= t)
            {
                self.finish(None);
                continue;
            }
            if let Err(e) = self.pump() {
                self.fail_take(e);
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Begin(reply) => {
                let _ = reply.send(self.begin());
            }
            Cmd::End(reply) => match std::mem::replace(&mut self.state, State::Monitoring) {
                State::Recording(mut take) => {
                    if self.source_done || self.opts.post_roll.is_zero() {
                        self.state = State::Recording(take);
                        self.finish_with(reply);
                    } else {
                        take.stop_at = Some(Instant::now() + self.opts.post_roll);
                        take.reply = Some(reply);
                        self.state = State::Recording(take);
                    }
                }
                State::Ended(result) => {
                    let _ = reply.send(*result);
                }
                State::Monitoring => {
                    let _ = reply.send(Err(RecordError::NoTake));
                }
            },
        }
    }

    fn begin(&mut self) -> Result<TakeId, RecordError> {
        match &self.state {
            State::Recording(_) | State::Ended(_) => return Err(RecordError::Busy),
            State::Monitoring => {}
        }
        if let Some(why) = &self.failure {
            return Err(SourceError::DeviceLost {
                detail: why.clone(),
            }
            .into());
        }
        let id = TakeId::generate();
        let rate = self.source.sample_rate();
        let mut take = Box::new(Take {
            writer: SpoolWriter::create(&self.opts.spool_dir, &id, rate)?,
            analyzer: QualityAnalyzer::new(rate),
            started_at: crate::time::now_rfc3339(),
            limit: self
                .opts
                .max_duration
                .map(|d| (d.as_secs_f64() * rate as f64).round() as u64),
            stop_after: self
                .opts
                .stop_after
                .map(|d| (d.as_secs_f64() * rate as f64).round() as u64),
            stop_at: None,
            reply: None,
            id: id.clone(),
        });
        self.pre_roll.drain(|s| {
            take.writer.write(s)?;
            take.analyzer.push(s);
            Ok(())
        })?;
        self.meter = LevelMeter::new(rate, self.opts.levels_per_second);
        self.state = State::Recording(take);
        Ok(id)
    }

    /// Reads what the source has and routes it.
    fn pump(&mut self) -> Result<(), RecordError> {
        let mut want = self.buf.len();
        if let State::Recording(take) = &self.state {
            let done = take.writer.samples();
            // A requested length ends the take normally, even when it equals the limit.
            if take.stop_after.is_some_and(|n| done >= n) {
                self.finish(None);
                return Ok(());
            }
            if take.limit.is_some_and(|n| done >= n) {
                let why = self.opts.max_duration.map(limit_reached);
                self.finish(why);
                return Ok(());
            }
            for n in [take.stop_after, take.limit].into_iter().flatten() {
                want = want.min((n - done) as usize);
            }
        }
        match self.source.read(&mut self.buf[..want]) {
            Ok(Chunk::Samples(n)) => {
                self.last_audio = Instant::now();
                self.heard = true;
                let s = &self.buf[..n];
                self.meter.push(s, &mut *self.on_level);
                match &mut self.state {
                    State::Recording(take) => {
                        take.writer.write(s)?;
                        take.analyzer.push(s);
                    }
                    _ => self.pre_roll.push(s),
                }
            }
            Ok(Chunk::Pending) => {
                let limit = if self.heard { STALL_LIMIT } else { START_LIMIT };
                if self.last_audio.elapsed() >= limit {
                    let e = SourceError::DeviceLost {
                        detail: format!("no audio from the device for {} s", limit.as_secs()),
                    };
                    self.source_failed(e.to_string());
                } else {
                    std::thread::sleep(POLL_INTERVAL);
                }
            }
            Ok(Chunk::End) => {
                self.source_done = true;
                if matches!(self.state, State::Recording(_)) {
                    self.finish(None);
                }
            }
            Err(e) => self.source_failed(e.to_string()),
        }
        Ok(())
    }

    /// The source is gone: no more audio, the owner is told, a take in progress is interrupted.
    fn source_failed(&mut self, why: String) {
        self.source_done = true;
        self.failure = Some(why.clone());
        (self.on_event)(RecorderEvent::SourceFailed(why.clone()));
        if matches!(self.state, State::Recording(_)) {
            self.finish(Some(why));
        }
    }

    /// Finishes the current take; hands it to a waiting `end_take`, or keeps it until one comes.
    fn finish(&mut self, interrupted: Option<String>) {
        let State::Recording(mut take) = std::mem::replace(&mut self.state, State::Monitoring)
        else {
            return;
        };
        let reply = take.reply.take();
        let result = self.complete(*take, interrupted);
        match reply {
            Some(r) => {
                let _ = r.send(result);
            }
            None => {
                self.state = State::Ended(Box::new(result));
                (self.on_event)(RecorderEvent::TakeEnded);
            }
        }
    }

    fn finish_with(&mut self, reply: SyncSender<Result<RecordedTake, RecordError>>) {
        let State::Recording(take) = std::mem::replace(&mut self.state, State::Monitoring) else {
            return;
        };
        let _ = reply.send(self.complete(*take, self.failure.clone()));
    }

    fn complete(
        &mut self,
        take: Take,
        interrupted: Option<String>,
    ) -> Result<RecordedTake, RecordError> {
        let spool = take.writer.finish()?;
        Ok(RecordedTake {
            take_id: take.id,
            spool,
            source: self.source.info(),
            started_at: take.started_at,
            counters: self.source.counters(),
            analyzer: take.analyzer,
            interrupted,
        })
    }

    /// A spool error: the writer is dropped (wiping its file) and the error delivered.
    fn fail_take(&mut self, e: RecordError) {
        if let State::Recording(mut take) = std::mem::replace(&mut self.state, State::Monitoring) {
            let reply = take.reply.take();
            drop(take);
            match reply {
                Some(r) => {
                    let _ = r.send(Err(e));
                }
                None => {
                    self.state = State::Ended(Box::new(Err(e)));
                    (self.on_event)(RecorderEvent::TakeEnded);
                }
            }
        }
    }
}

/// One take from a source: open, record until stopped (or the source ends, or the time limit),
/// return it. The CLI's way to record.
pub struct Recording {
    recorder: Recorder,
    take_id: TakeId,
    ended: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Recording {
    /// Opens the source on a new recorder thread and starts recording into the spool at once.
    pub fn start(
        open_source: SourceFactory,
        opts: RecorderOptions,
        on_level: impl FnMut(Level) + Send + 'static,
    ) -> Result<Self, RecordError> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let ended = std::sync::Arc::new(AtomicBool::new(false));
        let flag = ended.clone();
        let (recorder, take_id) = Recorder::start_with_take(
            open_source,
            opts,
            Box::new(on_level),
            Box::new(move |e| {
                if e == RecorderEvent::TakeEnded {
                    flag.store(true, Ordering::Relaxed);
                }
            }),
        )?;
        Ok(Self {
            recorder,
            take_id,
            ended,
        })
    }

    /// The take being recorded.
    pub fn take_id(&self) -> &TakeId {
        &self.take_id
    }

    /// The source being recorded.
    pub fn source(&self) -> &SourceInfo {
        self.recorder.source()
    }

    /// True once the take ended by itself (end of file, time limit, device lost, error).
    pub fn is_finished(&self) -> bool {
        self.ended.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops (after the post-roll) and returns the take.
    pub fn stop(self) -> Result<RecordedTake, RecordError> {
        self.recorder.end_take()
    }

    /// Waits until the take ends by itself, then returns it.
    pub fn wait(self) -> Result<RecordedTake, RecordError> {
        while !self.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.recorder.end_take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::audio::{SyntheticKind, SyntheticSource};
    use crate::dsp::pcm::{PcmReplay, read_all};
    use std::sync::{Arc, Mutex};

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
        // Cut at the limit: marked, never silent (issue 12, finding 2).
        assert!(take.reached_limit(), "{:?}", take.interrupted);
        assert!(
            take.interrupted
                .as_deref()
                .unwrap()
                .contains("limit of 1.5 s"),
            "{:?}",
            take.interrupted
        );

        // A requested length ends the take normally, also when it equals the limit.
        for limit in [
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(5)),
            None,
        ] {
            let mut opts = RecorderOptions::new(dir.path());
            opts.max_duration = limit;
            opts.stop_after = Some(Duration::from_secs(1));
            let take = Recording::start(synth(None, false), opts, |_| {})
                .unwrap()
                .wait()
                .unwrap();
            assert_eq!(take.spool.len(), 16_000);
            assert!(take.interrupted.is_none(), "{:?}", take.interrupted);
        }

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

    #[test]
    fn pre_roll_puts_audio_from_before_begin_at_the_start_of_the_take() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = RecorderOptions::new(dir.path());
        opts.pre_roll = Duration::from_millis(200);
        let rec = Recorder::start(synth(None, true), opts, |_| {}, |_| {}).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let id = rec.begin_take().unwrap();
        assert!(matches!(rec.begin_take(), Err(RecordError::Busy)));
        std::thread::sleep(Duration::from_millis(300));
        let take = rec.end_take().unwrap();
        assert_eq!(take.take_id, id);
        let got = read_all(&mut *take.spool.open().unwrap()).unwrap();
        // The take starts 200 ms (3200 samples) before begin_take: it is exactly a stretch of
        // the continuous synthetic signal that began when the recorder did.
        let all = SyntheticSource::generate(SyntheticKind::Speech, 16_000, 16_000 * 3);
        let start = all
            .windows(64)
            .position(|w| w == &got[..64])
            .expect("pre-roll is the real signal");
        // begin_take came ~500 ms (8000 samples) in; minus the 3200-sample pre-roll.
        assert!(
            (4_000..7_000).contains(&start),
            "take starts at sample {start}"
        );
        assert_eq!(&all[start..start + got.len()], &got[..]);
        assert!(got.len() >= 3200 + 4000, "{}", got.len());
        assert!(matches!(rec.end_take(), Err(RecordError::NoTake)));
        // And another take works.
        rec.begin_take().unwrap();
        assert!(rec.end_take().is_ok());
    }

    /// Delivers `.0` blocks of audio, one per millisecond, then reports the device lost.
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
            std::thread::sleep(Duration::from_millis(1));
            let n = buf.len().min(16);
            buf[..n].fill(0.1);
            Ok(Chunk::Samples(n))
        }
    }

    #[test]
    fn a_device_lost_mid_take_marks_it_interrupted_keeps_the_audio_and_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let f: SourceFactory =
            Box::new(|| Ok(Box::new(FailingSource(200)) as Box<dyn AudioSource>));
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let rec = Recorder::start(
            f,
            RecorderOptions::new(dir.path()),
            |_| {},
            move |e| ev.lock().unwrap().push(e),
        )
        .unwrap();
        rec.begin_take().unwrap();
        let t0 = Instant::now();
        while events.lock().unwrap().len() < 2 {
            assert!(t0.elapsed() < Duration::from_secs(5), "no hang");
            std::thread::sleep(Duration::from_millis(5));
        }
        let take = rec.end_take().unwrap();
        assert!(take.interrupted.as_deref().unwrap().contains("unplugged"));
        assert!(take.spool.len() > 0);
        assert!(matches!(
            events.lock().unwrap()[0],
            RecorderEvent::SourceFailed(_)
        ));
        // A new take on a dead device is refused with the reason.
        let err = rec.begin_take().unwrap_err();
        assert!(err.to_string().contains("unplugged"), "{err}");
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
        let left = crate::capture::spool::files(dir.path()).unwrap();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_spool_that_cannot_be_written_fails_the_take_and_keeps_metering() {
        let dir = tempfile::tempdir().unwrap();
        // A spool "directory" that is a file: creating the take fails at once.
        let bad = dir.path().join("not-a-dir");
        std::fs::write(&bad, b"x").unwrap();
        let levels = Arc::new(Mutex::new(0usize));
        let l2 = levels.clone();
        let rec = Recorder::start(
            synth(None, true),
            RecorderOptions::new(&bad),
            move |_| *l2.lock().unwrap() += 1,
            |_| {},
        )
        .unwrap();
        let err = rec.begin_take().unwrap_err();
        assert!(matches!(err, RecordError::Spool(_)), "{err}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(*levels.lock().unwrap() > 0, "the meter keeps running");
    }
}
