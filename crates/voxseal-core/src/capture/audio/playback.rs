//! Playing a take back for review, through the default output device.
//!
//! The take is decrypted from the spool chunk by chunk on a feeder thread (resampled to the
//! device's rate when it differs) into a pre-allocated lock-free ring; the output callback only
//! copies from the ring to every output channel, like the capture side, so plaintext audio exists
//! only in memory and the callback neither allocates nor locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use super::SourceError;
use crate::dsp::pcm::{MemoryPcm, PcmReplay};

/// Playback in progress; stops when dropped.
pub struct Playback {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    played: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Playback {
    /// True once every sample was played (or playback failed).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    /// Samples handed to the device so far.
    pub fn played(&self) -> u64 {
        self.played.load(Ordering::Relaxed)
    }

    /// Stops playing.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Playback {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The output callback's job: copy mono samples from the ring into every channel; silence when
/// the ring is empty. No allocation, no lock.
fn fill_output<T: SizedSample + FromSample<f32>>(
    out: &mut [T],
    channels: usize,
    ring: &mut rtrb::Consumer<f32>,
    played: &AtomicU64,
) {
    let mut n = 0u64;
    for frame in out.chunks_exact_mut(channels) {
        let v = match ring.pop() {
            Ok(v) => {
                n += 1;
                v
            }
            Err(_) => 0.0,
        };
        for s in frame {
            *s = T::from_sample(v);
        }
    }
    played.fetch_add(n, Ordering::Relaxed);
}

/// Starts playing `audio` (which must outlive the playback: the feeder thread borrows a copy of
/// what it needs by reading it now into a resampled stream).
pub fn play(audio: &dyn PcmReplay) -> Result<Playback, SourceError> {
    let host = cpal::default_host();
    let device = host
        .default_output_device()
        .ok_or_else(|| SourceError::Backend("no audio output device".into()))?;
    let cfg = device
        .default_output_config()
        .map_err(|e| SourceError::Backend(e.to_string()))?;
    let pcm = read_at_rate(audio, cfg.sample_rate())?;
    let (mut producer, consumer) = rtrb::RingBuffer::new(pcm.sample_rate() as usize * 2);
    // Fill the ring before the stream starts, so the device never waits on the feeder.
    let (_, rest) = producer.push_partial_slice(pcm.samples());
    let prefilled = pcm.samples().len() - rest.len();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let played = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), SourceError>>(1);
    let (t_stop, t_done, t_played) = (stop.clone(), done.clone(), played.clone());
    let thread = std::thread::Builder::new()
        .name("voxseal-playback".into())
        .spawn(move || {
            match output_stream(&device, &cfg, consumer, t_played.clone()) {
                Ok(stream) => {
                    let _ = ready_tx.send(Ok(()));
                    feed(producer, &pcm, prefilled, &t_stop, &t_played);
                    drop(stream);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
            t_done.store(true, Ordering::Relaxed);
        })
        .map_err(|e| SourceError::Backend(e.to_string()))?;
    ready_rx
        .recv()
        .map_err(|_| SourceError::Backend("the playback thread failed".into()))??;
    Ok(Playback {
        stop,
        done,
        played,
        thread: Some(thread),
    })
}

/// Decrypts (and resamples to `rate`) the whole take into memory: a take under review is short
/// (max_take_s), and a zeroizing buffer avoids holding the spool open on another thread.
fn read_at_rate(audio: &dyn PcmReplay, rate: u32) -> Result<MemoryPcm, SourceError> {
    let len = crate::dsp::resample::output_len(audio.len(), audio.sample_rate(), rate);
    let mut samples = Vec::with_capacity(len as usize);
    crate::dsp::resample::resample_stream(audio, rate, &mut |b| {
        samples.extend_from_slice(b);
        Ok(())
    })
    .map_err(|e| SourceError::Backend(format!("cannot read the take: {e}")))?;
    Ok(MemoryPcm::new(samples, rate))
}

/// Builds and starts the output stream whose callback copies from `ring`.
fn output_stream(
    device: &cpal::Device,
    cfg: &cpal::SupportedStreamConfig,
    ring: rtrb::Consumer<f32>,
    played: Arc<AtomicU64>,
) -> Result<cpal::Stream, SourceError> {
    let mut config = cfg.config();
    // A generous device buffer: review playback has no latency needs, and small buffers
    // underrun on sound servers that render in large blocks.
    if let cpal::SupportedBufferSize::Range { min, max } = cfg.buffer_size() {
        config.buffer_size = cpal::BufferSize::Fixed((cfg.sample_rate() / 5).clamp(*min, *max));
    }
    let stream = match cfg.sample_format() {
        SampleFormat::F32 => build::<f32>(device, &config, ring, played),
        SampleFormat::I16 => build::<i16>(device, &config, ring, played),
        SampleFormat::U16 => build::<u16>(device, &config, ring, played),
        SampleFormat::I32 => build::<i32>(device, &config, ring, played),
        other => return Err(SourceError::UnsupportedFormat(other.to_string())),
    };
    let stream = stream.map_err(|e| SourceError::Backend(e.to_string()))?;
    stream
        .play()
        .map_err(|e| SourceError::Backend(e.to_string()))?;
    Ok(stream)
}

/// An output stream of sample type `T` whose callback is [`fill_output`].
fn build<T: SizedSample + FromSample<f32>>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut ring: rtrb::Consumer<f32>,
    played: Arc<AtomicU64>,
) -> Result<cpal::Stream, cpal::Error> {
    let channels = config.channels as usize;
    device.build_output_stream::<T, _, _>(
        *config,
        move |o, _| fill_output(o, channels, &mut ring, &played),
        |e: cpal::Error| ignore_stream_error(&e.to_string()),
        None,
    )
}

/// The feeder: tops up the ring from `pcm` (from `pos` on) until everything was played or
/// playback is stopped.
fn feed(
    mut ring: rtrb::Producer<f32>,
    pcm: &MemoryPcm,
    mut pos: usize,
    stop: &AtomicBool,
    played: &AtomicU64,
) {
    let data = pcm.samples();
    while !stop.load(Ordering::Relaxed) {
        if pos < data.len() {
            let (_, rest) = ring.push_partial_slice(&data[pos..]);
            pos = data.len() - rest.len();
        } else if played.load(Ordering::Relaxed) >= pcm.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Output-stream errors happen on the audio thread; there is nowhere useful to send them, so
/// they are dropped (the feeder notices the stream stalling and playback ends).
fn ignore_stream_error(_msg: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_callback_duplicates_mono_and_pads_with_silence() {
        let (mut p, mut c) = rtrb::RingBuffer::new(8);
        p.push(0.5).unwrap();
        p.push(-0.25).unwrap();
        let played = AtomicU64::new(0);
        let mut out = [1.0f32; 6];
        fill_output(&mut out, 2, &mut c, &played);
        assert_eq!(out, [0.5, 0.5, -0.25, -0.25, 0.0, 0.0]);
        assert_eq!(played.load(Ordering::Relaxed), 2, "only real samples count");
        let mut out16 = [7i16; 2];
        fill_output(&mut out16, 2, &mut c, &played);
        assert_eq!(out16, [0, 0]);
    }
}
