//! Runs the streaming feature path ([`voxseal_core::dsp::features::write_safetensors`]) over a WAV
//! file into `io::sink()`, to show that its memory does not grow with the length of the audio.
//!
//! ```text
//! cargo run --release -p voxseal-core --example feature_stream_rss -- speech.wav
//! ```
//!
//! The WAV file stands in for the spool: each pass reopens it, as the spool is re-read. Prints
//! one JSON line: `{"seconds": .., "audio_s": .., "frames": .., "bytes": .., "vm_hwm_kib": ..}`
//! where `vm_hwm_kib` is the process's peak resident set size from `/proc/self/status` (null
//! where that file does not exist). Measure from outside too (`/usr/bin/time -v`).

use std::collections::BTreeMap;
use std::error::Error;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use voxseal_core::dsp::features::{FeatureParams, write_safetensors};
use voxseal_core::dsp::pcm::{PcmRead, PcmReplay};
use voxseal_core::sealing::wav::WavInput;

/// A WAV file as a replayable PCM source.
struct WavReplay {
    path: PathBuf,
    sample_rate: u32,
    len: u64,
}

impl WavReplay {
    fn open(path: &Path) -> Result<Self, Box<dyn Error>> {
        let wav = WavInput::open(path)?;
        Ok(Self {
            path: path.to_owned(),
            sample_rate: wav.sample_rate(),
            len: wav.frames(),
        })
    }
}

struct WavReader(WavInput);

impl PcmRead for WavReader {
    fn read_pcm(&mut self, buf: &mut [f32]) -> io::Result<usize> {
        self.0.read_mono(buf).map_err(io::Error::other)
    }
}

impl PcmReplay for WavReplay {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn open(&self) -> io::Result<Box<dyn PcmRead + '_>> {
        let wav = WavInput::open(&self.path).map_err(io::Error::other)?;
        Ok(Box::new(WavReader(wav)))
    }
}

/// Peak resident set size of this process, KiB (Linux).
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .ok_or("usage: feature_stream_rss FILE.wav")?,
    );
    let src = WavReplay::open(&path)?;
    let params = FeatureParams::default();
    let t = Instant::now();
    let summary = write_safetensors(&src, &params, &BTreeMap::new(), &mut io::sink())?;
    let seconds = t.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "seconds": seconds,
        "audio_s": src.len() as f64 / src.sample_rate() as f64,
        "frames": summary.frames,
        "bytes": summary.bytes,
        "vm_hwm_kib": vm_hwm_kib(),
    });
    println!("{out}");
    Ok(())
}
