//! Mono `f32` PCM readers: the common currency between the spool, WAV files, the resampler and
//! the feature extractor.
//!
//! Long takes are processed as streams, never as one buffer, so memory stays flat with length.
//! A [`PcmReplay`] can be read several times (the spool can: it is a file), which lets the
//! feature extractor make more than one pass without holding the audio in memory.

use std::io;

use zeroize::Zeroizing;

/// A stream of mono samples in `[-1.0, 1.0]`.
pub trait PcmRead {
    /// Fills `buf` with the next samples; returns how many were written (0 only at the end).
    fn read_pcm(&mut self, buf: &mut [f32]) -> io::Result<usize>;
}

/// Audio that can be read from the start as often as needed.
pub trait PcmReplay {
    /// Samples per second.
    fn sample_rate(&self) -> u32;
    /// Total number of samples.
    fn len(&self) -> u64;
    /// True when there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A fresh reader positioned at the first sample.
    fn open(&self) -> io::Result<Box<dyn PcmRead + '_>>;
}

/// Audio held in memory (tests, synthetic sources, short clips). Zeroized on drop; locked out
/// of swap where the OS allows (from when it is wrapped: `samples` came from the caller).
pub struct MemoryPcm {
    // Before `samples`: unlocked before the memory is freed.
    _lock: crate::hardening::MemLock,
    samples: Zeroizing<Vec<f32>>,
    sample_rate: u32,
}

impl MemoryPcm {
    /// Wraps samples at `sample_rate`.
    pub fn new(samples: Vec<f32>, sample_rate: u32) -> Self {
        Self {
            _lock: crate::hardening::MemLock::new(&samples),
            samples: Zeroizing::new(samples),
            sample_rate,
        }
    }

    /// The samples.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }
}

impl PcmReplay for MemoryPcm {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    fn len(&self) -> u64 {
        self.samples.len() as u64
    }
    fn open(&self) -> io::Result<Box<dyn PcmRead + '_>> {
        Ok(Box::new(SliceReader::new(&self.samples)))
    }
}

/// Reads from a slice.
pub struct SliceReader<'a> {
    rest: &'a [f32],
}

impl<'a> SliceReader<'a> {
    /// A reader over `samples`.
    pub fn new(samples: &'a [f32]) -> Self {
        Self { rest: samples }
    }
}

impl PcmRead for SliceReader<'_> {
    fn read_pcm(&mut self, buf: &mut [f32]) -> io::Result<usize> {
        let n = buf.len().min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

/// A window `[start, start + len)` of another replayable stream (used to trim silence).
pub struct Window<'a> {
    inner: &'a dyn PcmReplay,
    start: u64,
    len: u64,
}

impl<'a> Window<'a> {
    /// The samples `[start, start + len)` of `inner`, clamped to its length.
    pub fn new(inner: &'a dyn PcmReplay, start: u64, len: u64) -> Self {
        let start = start.min(inner.len());
        let len = len.min(inner.len() - start);
        Self { inner, start, len }
    }
}

impl PcmReplay for Window<'_> {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn open(&self) -> io::Result<Box<dyn PcmRead + '_>> {
        let mut r = self.inner.open()?;
        let mut skip = self.start;
        let mut scratch = Zeroizing::new(vec![0f32; 4096]);
        while skip > 0 {
            let want = skip.min(scratch.len() as u64) as usize;
            let n = r.read_pcm(&mut scratch[..want])?;
            if n == 0 {
                break;
            }
            skip -= n as u64;
        }
        Ok(Box::new(Take {
            inner: r,
            left: self.len,
        }))
    }
}

struct Take<'a> {
    inner: Box<dyn PcmRead + 'a>,
    left: u64,
}

impl PcmRead for Take<'_> {
    fn read_pcm(&mut self, buf: &mut [f32]) -> io::Result<usize> {
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read_pcm(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Peaks for drawing: `buckets` (min, max) pairs over the whole stream, in one pass.
pub fn waveform(src: &dyn PcmReplay, buckets: usize) -> io::Result<Vec<(f32, f32)>> {
    let n = src.len();
    let buckets = buckets.max(1);
    let mut out = vec![(0f32, 0f32); buckets];
    if n == 0 {
        return Ok(out);
    }
    let mut r = src.open()?;
    let mut buf = Zeroizing::new(vec![0f32; 8192]);
    let mut i = 0u64;
    loop {
        let k = r.read_pcm(&mut buf)?;
        if k == 0 {
            return Ok(out);
        }
        for &s in &buf[..k] {
            let b = ((i * buckets as u64) / n) as usize;
            let (lo, hi) = &mut out[b.min(buckets - 1)];
            *lo = lo.min(s);
            *hi = hi.max(s);
            i += 1;
        }
    }
}

/// Reads a whole stream into memory (short clips and tests only).
pub fn read_all(r: &mut dyn PcmRead) -> io::Result<Vec<f32>> {
    let mut out = Vec::new();
    let mut buf = vec![0f32; 8192];
    loop {
        let n = r.read_pcm(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waveform_buckets_hold_min_and_max() {
        let pcm = MemoryPcm::new(
            (0..1000)
                .map(|i| if i % 2 == 0 { i as f32 / 1000.0 } else { -0.5 })
                .collect(),
            8000,
        );
        let w = waveform(&pcm, 10).unwrap();
        assert_eq!(w.len(), 10);
        assert_eq!(w[0], (-0.5, 0.098));
        assert_eq!(w[9], (-0.5, 0.998));
        assert_eq!(
            waveform(&MemoryPcm::new(vec![], 8000), 4).unwrap(),
            vec![(0.0, 0.0); 4]
        );
    }

    #[test]
    fn window_reads_the_right_samples_repeatedly() {
        let pcm = MemoryPcm::new((0..10_000).map(|i| i as f32).collect(), 8000);
        let w = Window::new(&pcm, 4321, 5000);
        for _ in 0..2 {
            let got = read_all(&mut *w.open().unwrap()).unwrap();
            assert_eq!(got.len(), 5000);
            assert_eq!(got[0], 4321.0);
            assert_eq!(got[4999], 9320.0);
        }
        let clamped = Window::new(&pcm, 9000, 5000);
        assert_eq!(clamped.len(), 1000);
        assert_eq!(Window::new(&pcm, 20_000, 5).len(), 0);
    }
}
