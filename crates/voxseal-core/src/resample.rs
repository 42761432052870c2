//! Sample-rate conversion to the feature rate (16 kHz) with rubato's FFT resampler, streamed in
//! chunks so memory does not grow with the take.
//!
//! The output has exactly `ceil(n * out_rate / in_rate)` samples, aligned with the input (the
//! resampler's delay is trimmed), like `rubato::Resampler::process_all` on a whole clip.

use std::io;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};
use zeroize::Zeroizing;

use crate::pcm::{PcmRead, PcmReplay};

const CHUNK: usize = 1024;

/// Number of output samples for `n` input samples.
pub fn output_len(n: u64, in_rate: u32, out_rate: u32) -> u64 {
    (n * out_rate as u64).div_ceil(in_rate as u64)
}

/// Resamples `src` to `out_rate`, calling `sink` with consecutive output blocks.
/// Returns the number of output samples (always [`output_len`]).
pub fn resample_stream(
    src: &dyn PcmReplay,
    out_rate: u32,
    sink: &mut dyn FnMut(&[f32]) -> io::Result<()>,
) -> io::Result<u64> {
    let in_rate = src.sample_rate();
    let expected = output_len(src.len(), in_rate, out_rate);
    let mut input = src.open()?;
    if in_rate == out_rate {
        return copy_through(&mut *input, expected, sink);
    }
    let mut r = Fft::<f32>::new(
        in_rate as usize,
        out_rate as usize,
        CHUNK,
        1,
        FixedSync::Input,
    )
    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut inbuf = Zeroizing::new(vec![0f32; r.input_frames_max()]);
    let mut outbuf = Zeroizing::new(vec![0f32; r.output_frames_max()]);
    let mut to_trim = r.output_delay();
    let mut produced = 0u64;
    let mut ended = false;
    while produced < expected {
        let need = r.input_frames_next();
        let got = if ended {
            0
        } else {
            fill(&mut *input, &mut inbuf[..need])?
        };
        ended |= got < need;
        let indexing = Indexing {
            partial_len: (got < need).then_some(got),
            ..Default::default()
        };
        let ilen = inbuf.len();
        let olen = outbuf.len();
        let inp = InterleavedSlice::new(&inbuf[..], 1, ilen).map_err(io::Error::other)?;
        let mut out =
            InterleavedSlice::new_mut(&mut outbuf[..], 1, olen).map_err(io::Error::other)?;
        let (_, n_out) = r
            .process_into_buffer(&inp, &mut out, Some(&indexing))
            .map_err(io::Error::other)?;
        let mut block = &outbuf[..n_out];
        let skip = to_trim.min(block.len());
        to_trim -= skip;
        block = &block[skip..];
        let keep = (expected - produced).min(block.len() as u64) as usize;
        if keep > 0 {
            sink(&block[..keep])?;
            produced += keep as u64;
        }
    }
    Ok(produced)
}

fn copy_through(
    input: &mut dyn PcmRead,
    expected: u64,
    sink: &mut dyn FnMut(&[f32]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut buf = Zeroizing::new(vec![0f32; 8192]);
    let mut produced = 0;
    while produced < expected {
        let n = input.read_pcm(&mut buf)?;
        if n == 0 {
            break;
        }
        sink(&buf[..n])?;
        produced += n as u64;
    }
    Ok(produced)
}

/// Reads until `buf` is full or the stream ends.
fn fill(input: &mut dyn PcmRead, buf: &mut [f32]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = input.read_pcm(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// Resamples an in-memory clip (tests, benchmarks).
pub fn resample_all(samples: &[f32], in_rate: u32, out_rate: u32) -> io::Result<Vec<f32>> {
    let pcm = crate::pcm::MemoryPcm::new(samples.to_vec(), in_rate);
    let mut out = Vec::with_capacity(output_len(samples.len() as u64, in_rate, out_rate) as usize);
    resample_stream(&pcm, out_rate, &mut |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    fn tone(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.5 * (2.0 * PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn lengths_are_exact_for_common_rates() {
        for rate in [8000, 11_025, 22_050, 32_000, 44_100, 48_000, 96_000, 16_000] {
            for n in [0usize, 1, 100, 1023, 1024, 48_000, 100_003] {
                let out = resample_all(&vec![0.1; n], rate, 16_000).unwrap();
                assert_eq!(
                    out.len() as u64,
                    output_len(n as u64, rate, 16_000),
                    "{rate} {n}"
                );
            }
        }
    }

    #[test]
    fn a_tone_keeps_its_frequency_level_and_alignment() {
        // rubato's FFT resampler trims a whole number of output samples of delay, so for
        // non-integer ratios the output may lead or lag by a fraction of a sample (measured:
        // 0.18 samples = 11 us for 44.1 kHz). Fit that shift, then demand a near-perfect match.
        for rate in [44_100, 48_000, 22_050, 8_000] {
            let x = tone(1000.0, rate, rate as usize);
            let y = resample_all(&x, rate, 16_000).unwrap();
            let best = (-50..=50)
                .map(|k| {
                    let shift = k as f32 / 100.0;
                    let err = (800..y.len() - 800)
                        .map(|i| {
                            let t = (i as f32 + shift) / 16_000.0;
                            (y[i] - 0.5 * (2.0 * PI * 1000.0 * t).sin()).abs()
                        })
                        .fold(0f32, f32::max);
                    (err, shift)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .unwrap();
            assert!(
                best.0 < 2e-3,
                "{rate}: max error {} at shift {}",
                best.0,
                best.1
            );
            assert!(
                best.1.abs() <= 0.5,
                "{rate}: misaligned by {} samples",
                best.1
            );
        }
    }

    #[test]
    fn content_above_nyquist_is_removed() {
        let x = tone(12_000.0, 48_000, 48_000);
        let y = resample_all(&x, 48_000, 16_000).unwrap();
        let rms = (y[800..y.len() - 800].iter().map(|v| v * v).sum::<f32>()
            / (y.len() - 1600) as f32)
            .sqrt();
        assert!(rms < 1e-3, "aliased energy {rms}");
    }

    #[test]
    fn chunked_reading_does_not_change_the_result() {
        struct Dribble<'a>(&'a [f32]);
        impl PcmRead for Dribble<'_> {
            fn read_pcm(&mut self, buf: &mut [f32]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(37);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        struct Src(Vec<f32>);
        impl PcmReplay for Src {
            fn sample_rate(&self) -> u32 {
                44_100
            }
            fn len(&self) -> u64 {
                self.0.len() as u64
            }
            fn open(&self) -> io::Result<Box<dyn PcmRead + '_>> {
                Ok(Box::new(Dribble(&self.0)))
            }
        }
        let x = tone(440.0, 44_100, 30_000);
        let mut y = Vec::new();
        resample_stream(&Src(x.clone()), 16_000, &mut |b| {
            y.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(y, resample_all(&x, 44_100, 16_000).unwrap());
    }
}
