//! Microphone capture through cpal.
//!
//! The real-time side is [`CaptureSink::push_interleaved`]: called from the audio callback, it
//! downmixes to mono, converts to `f32`, copies into a pre-allocated [`rtrb`] ring and updates
//! atomics (peak, clipped, dropped, callbacks). It never allocates, locks, logs or does I/O (a test
//! runs it under an allocation detector). Everything else happens on the recorder thread, which
//! owns the `cpal::Stream` and drains the ring through [`CpalSource`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};

use super::levels::CLIP_THRESHOLD;
use super::{AudioSource, Chunk, SourceCounters, SourceError, SourceInfo};

/// Seconds of audio the ring holds; the recorder drains it every few milliseconds.
const RING_SECONDS: usize = 4;

/// State shared between the audio callback and the recorder thread: atomics only.
#[derive(Debug, Default)]
pub struct CaptureShared {
    /// Highest |sample| since the last [`CaptureShared::take_peak`], as `f32` bits.
    peak_bits: AtomicU32,
    clipped: AtomicU64,
    dropped: AtomicU64,
    callbacks: AtomicU64,
    error: AtomicBool,
}

impl CaptureShared {
    /// Returns and resets the peak magnitude seen by the callback.
    pub fn take_peak(&self) -> f32 {
        f32::from_bits(self.peak_bits.swap(0, Ordering::Relaxed))
    }

    /// The counters so far.
    pub fn counters(&self) -> SourceCounters {
        SourceCounters {
            dropped: self.dropped.load(Ordering::Relaxed),
            clipped: self.clipped.load(Ordering::Relaxed),
            callbacks: self.callbacks.load(Ordering::Relaxed),
        }
    }
}

/// The callback side of a capture: owns the ring's producer.
pub struct CaptureSink {
    producer: rtrb::Producer<f32>,
    channels: usize,
    shared: Arc<CaptureShared>,
}

impl CaptureSink {
    /// A sink for `channels`-channel input writing into a ring of `capacity` mono samples.
    pub fn new(
        channels: usize,
        capacity: usize,
    ) -> (Self, rtrb::Consumer<f32>, Arc<CaptureShared>) {
        let (producer, consumer) = rtrb::RingBuffer::new(capacity);
        let shared = Arc::new(CaptureShared::default());
        let sink = Self {
            producer,
            channels: channels.max(1),
            shared: shared.clone(),
        };
        (sink, consumer, shared)
    }

    /// The audio callback's whole job: downmix, convert, copy into the ring, update atomics.
    /// No allocation, no lock, no I/O. Frames that do not fit are counted as dropped.
    pub fn push_interleaved<T>(&mut self, data: &[T])
    where
        T: Sample,
        f32: FromSample<T>,
    {
        let ch = self.channels;
        let frames = data.len() / ch;
        let fit = frames.min(self.producer.slots());
        let mut peak = 0f32;
        let mut clipped = 0u64;
        if let Ok(chunk) = self.producer.write_chunk_uninit(fit) {
            let scale = 1.0 / ch as f32;
            let mono = data.chunks_exact(ch).take(fit).map(|frame| {
                let mut sum = 0f32;
                for &s in frame {
                    let v = f32::from_sample(s);
                    let a = v.abs();
                    peak = peak.max(a);
                    clipped += (a >= CLIP_THRESHOLD) as u64;
                    sum += v;
                }
                sum * scale
            });
            chunk.fill_from_iter(mono);
        }
        let s = &self.shared;
        s.peak_bits.fetch_max(peak.to_bits(), Ordering::Relaxed);
        s.clipped.fetch_add(clipped, Ordering::Relaxed);
        s.dropped
            .fetch_add((frames - fit) as u64, Ordering::Relaxed);
        s.callbacks.fetch_add(1, Ordering::Relaxed);
    }
}

/// How to pick the input device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeviceSelector {
    /// The system's default input device.
    #[default]
    Default,
    /// The device whose name (as listed by `voxseal devices`) or id equals this.
    Named(String),
}

/// An input device, as listed for the user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    /// Human-readable name.
    pub name: String,
    /// Stable id, when the backend has one.
    pub id: Option<String>,
    /// True for the system default input.
    pub is_default: bool,
    /// Default sample rate, Hz.
    pub sample_rate: u32,
    /// Default channel count.
    pub channels: u16,
    /// Default sample format.
    pub format: String,
}

/// Lists input devices with their default configurations.
pub fn list_input_devices() -> Result<Vec<DeviceInfo>, SourceError> {
    quiet_alsa();
    let host = cpal::default_host();
    // Compare ids, not names: ALSA's default device and the listed `default` PCM have
    // different display names but the same id.
    let default_id = host
        .default_input_device()
        .and_then(|d| d.id().ok())
        .map(|id| id.to_string());
    let devices = host
        .input_devices()
        .map_err(|e| SourceError::Backend(e.to_string()))?;
    let mut out = Vec::new();
    for d in devices {
        let Ok(cfg) = d.default_input_config() else {
            continue;
        };
        let id = d.id().ok().map(|id| id.to_string());
        out.push(DeviceInfo {
            is_default: id.is_some() && id == default_id,
            id,
            name: d.to_string(),
            sample_rate: cfg.sample_rate(),
            channels: cfg.channels(),
            format: cfg.sample_format().to_string(),
        });
    }
    Ok(out)
}

/// Probing devices makes alsa-lib print errors for every plugin it cannot open (JACK, absent
/// cards) straight to stderr. Route this thread's alsa-lib messages into a buffer instead; the
/// errors that matter reach us as cpal errors.
fn quiet_alsa() {
    #[cfg(target_os = "linux")]
    {
        let _ = alsa::Output::local_error_handler();
    }
}

fn find_device(selector: &DeviceSelector) -> Result<cpal::Device, SourceError> {
    quiet_alsa();
    let host = cpal::default_host();
    match selector {
        DeviceSelector::Default => host.default_input_device().ok_or(SourceError::NoDevice),
        DeviceSelector::Named(name) => {
            if let Ok(id) = name.parse::<cpal::DeviceId>()
                && let Some(d) = host.device_by_id(&id)
            {
                return Ok(d);
            }
            let devices = host
                .input_devices()
                .map_err(|e| SourceError::Backend(e.to_string()))?;
            for d in devices {
                if d.to_string() == *name {
                    return Ok(d);
                }
            }
            Err(SourceError::DeviceNotFound {
                name: crate::project::ids::shown(name),
            })
        }
    }
}

/// A live microphone. Create it on the thread that will read it: it owns the `cpal::Stream`.
pub struct CpalSource {
    _stream: cpal::Stream,
    consumer: rtrb::Consumer<f32>,
    shared: Arc<CaptureShared>,
    info: SourceInfo,
    error_detail: Arc<std::sync::Mutex<Option<String>>>,
}

impl CpalSource {
    /// Opens and starts the selected device at its native rate and format.
    pub fn open(selector: &DeviceSelector) -> Result<Self, SourceError> {
        let device = find_device(selector)?;
        let cfg = device
            .default_input_config()
            .map_err(|e| SourceError::Backend(e.to_string()))?;
        let rate = cfg.sample_rate();
        let channels = cfg.channels();
        let format = cfg.sample_format();
        let (sink, consumer, shared) =
            CaptureSink::new(channels as usize, rate as usize * RING_SECONDS);
        let error_detail = Arc::new(std::sync::Mutex::new(None));
        let stream = match format {
            SampleFormat::I8 => build::<i8>(&device, &cfg.config(), sink, &shared, &error_detail),
            SampleFormat::I16 => build::<i16>(&device, &cfg.config(), sink, &shared, &error_detail),
            SampleFormat::I32 => build::<i32>(&device, &cfg.config(), sink, &shared, &error_detail),
            SampleFormat::U8 => build::<u8>(&device, &cfg.config(), sink, &shared, &error_detail),
            SampleFormat::U16 => build::<u16>(&device, &cfg.config(), sink, &shared, &error_detail),
            SampleFormat::U32 => build::<u32>(&device, &cfg.config(), sink, &shared, &error_detail),
            SampleFormat::F32 => build::<f32>(&device, &cfg.config(), sink, &shared, &error_detail),
            SampleFormat::F64 => build::<f64>(&device, &cfg.config(), sink, &shared, &error_detail),
            other => return Err(SourceError::UnsupportedFormat(other.to_string())),
        }?;
        stream
            .play()
            .map_err(|e| SourceError::Backend(e.to_string()))?;
        let info = SourceInfo {
            kind: "microphone".into(),
            name: device.to_string(),
            sample_rate: rate,
            channels,
            format: format.to_string(),
        };
        Ok(Self {
            _stream: stream,
            consumer,
            shared,
            info,
            error_detail,
        })
    }

    /// The atomics the callback updates.
    pub fn shared(&self) -> &Arc<CaptureShared> {
        &self.shared
    }
}

fn build<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut sink: CaptureSink,
    shared: &Arc<CaptureShared>,
    error_detail: &Arc<std::sync::Mutex<Option<String>>>,
) -> Result<cpal::Stream, SourceError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let shared = shared.clone();
    let error_detail = error_detail.clone();
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _info| sink.push_interleaved(data),
            // The error callback is not the real-time data path; it may lock.
            move |err| {
                shared.error.store(true, Ordering::Relaxed);
                if let Ok(mut d) = error_detail.lock() {
                    d.get_or_insert_with(|| err.to_string());
                }
            },
            Some(std::time::Duration::from_secs(5)),
        )
        .map_err(|e| SourceError::Backend(e.to_string()))
}

impl AudioSource for CpalSource {
    fn sample_rate(&self) -> u32 {
        self.info.sample_rate
    }

    fn info(&self) -> SourceInfo {
        self.info.clone()
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
        if self.shared.error.load(Ordering::Relaxed) {
            let detail = self
                .error_detail
                .lock()
                .ok()
                .and_then(|d| d.clone())
                .unwrap_or_else(|| "device error".into());
            return Err(SourceError::DeviceLost { detail });
        }
        Ok(Chunk::Pending)
    }

    fn counters(&self) -> SourceCounters {
        self.shared.counters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmixes_and_converts_every_supported_format() {
        let (mut sink, mut cons, shared) = CaptureSink::new(2, 64);
        sink.push_interleaved::<i16>(&[i16::MAX, i16::MAX, 0, -16384]);
        sink.push_interleaved::<u16>(&[32768, 32768, 65535, 0]);
        sink.push_interleaved::<f32>(&[0.5, -0.5, 0.25, 0.25]);
        let got: Vec<f32> = std::iter::from_fn(|| cons.pop().ok()).collect();
        let want = [1.0, -0.25, 0.0, 0.0, 0.0, 0.25];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "{got:?}");
        }
        let c = shared.counters();
        assert_eq!(c.callbacks, 3);
        assert_eq!(c.dropped, 0);
        assert_eq!(c.clipped, 4, "i16::MAX twice, u16 65535 and u16 0");
        assert!((shared.take_peak() - 1.0).abs() < 1e-3);
        assert_eq!(shared.take_peak(), 0.0, "take_peak resets");
    }

    #[test]
    fn a_full_ring_counts_drops_instead_of_blocking() {
        let (mut sink, mut cons, shared) = CaptureSink::new(1, 10);
        sink.push_interleaved::<f32>(&[0.1; 25]);
        assert_eq!(shared.counters().dropped, 15);
        assert_eq!(std::iter::from_fn(|| cons.pop().ok()).count(), 10);
    }

    #[test]
    fn partial_frames_are_ignored() {
        let (mut sink, mut cons, _) = CaptureSink::new(2, 10);
        sink.push_interleaved::<f32>(&[0.1, 0.1, 0.2]);
        assert_eq!(std::iter::from_fn(|| cons.pop().ok()).count(), 1);
    }
}
