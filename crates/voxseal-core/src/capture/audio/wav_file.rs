//! A WAV file as an audio source (QA, imports, tests).

use std::path::Path;

use super::{AudioSource, Chunk, Pacer, SourceError, SourceInfo};
use crate::sealing::wav::WavInput;

/// Reads a WAV file as mono samples at the file's own rate.
pub struct WavFileSource {
    input: WavInput,
    info: SourceInfo,
    pacer: Pacer,
}

impl WavFileSource {
    /// Opens and validates `path`.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let input = WavInput::open(path)?;
        let info = SourceInfo {
            kind: "wav-file".into(),
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sample_rate: input.sample_rate(),
            channels: input.channels(),
            format: input.format(),
        };
        let pacer = Pacer::new(input.sample_rate(), false);
        Ok(Self { input, info, pacer })
    }

    /// Deliver samples no faster than real time (as a microphone would).
    pub fn realtime(mut self, yes: bool) -> Self {
        self.pacer = Pacer::new(self.input.sample_rate(), yes);
        self
    }
}

impl AudioSource for WavFileSource {
    fn sample_rate(&self) -> u32 {
        self.info.sample_rate
    }

    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn read(&mut self, buf: &mut [f32]) -> Result<Chunk, SourceError> {
        let want = self.pacer.allowance(buf.len());
        if want == 0 {
            return Ok(Chunk::Pending);
        }
        let n = self.input.read_mono(&mut buf[..want])?;
        self.pacer.delivered(n);
        Ok(if n == 0 {
            Chunk::End
        } else {
            Chunk::Samples(n)
        })
    }
}
