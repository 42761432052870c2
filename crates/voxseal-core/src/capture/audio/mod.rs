//! Audio sources: a microphone through cpal, a WAV file, or a synthetic signal.
//!
//! Every source delivers mono `f32` samples at its own native rate through [`AudioSource`]. The
//! live source's real-time side ([`capture::CaptureSink`]) only copies into a pre-allocated
//! lock-free ring and updates atomics; the [recorder](crate::capture::recorder) thread drains it.

pub mod capture;
pub mod levels;
pub mod playback;
pub mod spec;
pub mod synthetic;
pub mod wav_file;

use std::time::{Duration, Instant};

pub use capture::{CpalSource, DeviceInfo, DeviceSelector, list_input_devices};
pub use levels::Level;
pub use spec::parse_source;
pub use synthetic::{SyntheticKind, SyntheticSource};
pub use wav_file::WavFileSource;

/// Something that opens a source, called on the recorder thread (a device opens there).
pub type SourceFactory = Box<dyn FnOnce() -> Result<Box<dyn AudioSource>, SourceError> + Send>;

/// What one [`AudioSource::read`] call produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// `n` samples were written to the buffer.
    Samples(usize),
    /// Nothing yet; try again shortly (a live or paced source).
    Pending,
    /// The source has no more samples (end of file, synthetic duration reached).
    End,
}

/// Counters a source keeps about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounters {
    /// Samples lost because the recorder did not drain the ring in time.
    pub dropped: u64,
    /// Samples at or beyond full scale seen by the capture callback.
    pub clipped: u64,
    /// Number of capture callbacks so far (0 until the device delivers audio).
    pub callbacks: u64,
}

/// A description of a source, for the manifest and the UI (no audio, no personal data).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceInfo {
    /// `microphone`, `wav-file` or `synthetic`.
    pub kind: String,
    /// Device name, file name or signal name.
    pub name: String,
    /// Native sample rate in Hz.
    pub sample_rate: u32,
    /// Channels before the downmix to mono.
    pub channels: u16,
    /// Native sample format (`i16`, `u16`, `f32`, ...).
    pub format: String,
}

/// Why a source failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No input device is available.
    #[error(
        "no microphone found: connect one, or use --source synthetic:speech or --source file:<path.wav>"
    )]
    NoDevice,
    /// The named device does not exist.
    #[error("no input device named {name}; run `voxseal devices` to list them")]
    DeviceNotFound {
        /// The name asked for.
        name: String,
    },
    /// The device reported an error or disappeared while recording.
    #[error("the microphone stopped working ({detail}); the take was interrupted")]
    DeviceLost {
        /// What the audio backend said.
        detail: String,
    },
    /// The audio backend could not open or start the device.
    #[error("could not open the microphone: {0}")]
    Backend(String),
    /// The device uses a sample format Voxseal does not read.
    #[error("the microphone's sample format {0} is not supported")]
    UnsupportedFormat(String),
    /// The WAV file could not be read.
    #[error(transparent)]
    Wav(#[from] crate::sealing::wav::WavError),
    /// A synthetic source was specified wrongly.
    #[error("{0}")]
    Invalid(String),
}

/// A producer of mono samples at a fixed native rate.
pub trait AudioSource: Send {
    /// Native sample rate in Hz.
    fn sample_rate(&self) -> u32;
    /// What this source is.
    fn info(&self) -> SourceInfo;
    /// Reads the next samples into `buf` without blocking for long.
    fn read(&mut self, buf: &mut [f32]) -> Result<Chunk, SourceError>;
    /// Drop, clip and callback counters.
    fn counters(&self) -> SourceCounters {
        SourceCounters::default()
    }
}

/// Paces a file or synthetic source at real time (for demos and realistic tests).
#[derive(Debug)]
pub(crate) struct Pacer {
    start: Option<Instant>,
    rate: u32,
    delivered: u64,
    realtime: bool,
}

impl Pacer {
    pub(crate) fn new(rate: u32, realtime: bool) -> Self {
        Self {
            start: None,
            rate,
            delivered: 0,
            realtime,
        }
    }

    /// How many samples may be delivered now, at most `want`.
    pub(crate) fn allowance(&mut self, want: usize) -> usize {
        if !self.realtime {
            return want;
        }
        let start = *self.start.get_or_insert_with(Instant::now);
        let due = (start.elapsed().as_secs_f64() * self.rate as f64) as u64;
        due.saturating_sub(self.delivered).min(want as u64) as usize
    }

    pub(crate) fn delivered(&mut self, n: usize) {
        self.delivered += n as u64;
    }
}

/// How long the recorder sleeps when a source has nothing yet.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);
