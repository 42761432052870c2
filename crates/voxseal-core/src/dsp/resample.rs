//! Sample-rate conversion to the feature rate (16 kHz), streamed so memory does not grow with the
//! take: a polyphase windowed-sinc (Kaiser) filter shaped like libsoxr's "HQ" filter, which
//! `librosa.load(sr=16000)` uses (`res_type="soxr_hq"`), so the features of 44.1 or 48 kHz audio
//! match librosa's pipeline up to its top mel band (rubato's FFT resampler, used before, rolled
//! off from 6 kHz and lagged by a fraction of a sample).
//!
//! - Band limit: the lower of the two Nyquist frequencies. Flat to 91.6% of it, -6 dB at 95.7%,
//!   about [`ATTENUATION_DB`] down from 99.8% on: the transition fitted to soxr HQ's measured
//!   response (passband end 0.913, stopband begin 1.0); docs/performance.md has the figures.
//! - No delay: output sample `j` is the band-limited input evaluated at time `j / out_rate`
//!   exactly (the filter is linear-phase and centred on that instant; rational phase from integer
//!   arithmetic). Samples before the start and after the end count as zeros.
//! - The output has exactly [`output_len`] samples, like librosa (`fix_length` to
//!   `ceil(n * out_rate / in_rate)`).
//!
//! Rate pairs whose reduced ratio `out/in = L/M` has `L` up to [`MAX_EXACT_PHASES`] (every common
//! audio rate: 44.1 kHz -> 16 kHz is 160/441) get one filter row per phase; other pairs
//! interpolate linearly between [`INTERPOLATED_PHASES`] rows.

use std::io;

use zeroize::Zeroizing;

use crate::dsp::pcm::{PcmRead, PcmReplay};

/// -6 dB point of the anti-aliasing filter, as a fraction of the lower Nyquist frequency.
const CUTOFF: f64 = 0.957;
/// Width of the transition band, as a fraction of the lower Nyquist frequency.
const TRANSITION: f64 = 0.0825;
/// Stopband attenuation of the Kaiser design, dB.
pub const ATTENUATION_DB: f64 = 120.0;
/// Largest `L` (output rate / gcd) that gets one exact filter row per phase.
pub const MAX_EXACT_PHASES: u64 = 1024;
/// Filter rows interpolated between when `L` is larger.
pub const INTERPOLATED_PHASES: usize = 1024;
/// Input samples read per step.
const CHUNK: usize = 4096;

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
    resample_with(src, out_rate, sink, pulp::Arch::new())
}

/// [`resample_stream`] with the instruction set given (tests compare the paths).
fn resample_with(
    src: &dyn PcmReplay,
    out_rate: u32,
    sink: &mut dyn FnMut(&[f32]) -> io::Result<()>,
    arch: pulp::Arch,
) -> io::Result<u64> {
    let in_rate = src.sample_rate();
    let expected = output_len(src.len(), in_rate, out_rate);
    let mut input = src.open()?;
    if in_rate == out_rate {
        return copy_through(&mut *input, expected, sink);
    }
    if in_rate == 0 || out_rate == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot resample {in_rate} Hz to {out_rate} Hz: rates must be positive"),
        ));
    }
    let filter = Polyphase::new(in_rate, out_rate);
    Converter::new(&filter).run(&mut *input, expected, sink, arch)
}

/// The filter for one rate pair: rows of `taps` coefficients, one per phase (plus one more to
/// interpolate towards when the phases are not exact).
struct Polyphase {
    /// Output step in input samples is `m / l` (the reduced ratio in/out).
    l: u64,
    m: u64,
    /// Row `p` is for the fractional position `p / phases` between two input samples.
    phases: usize,
    exact: bool,
    /// Taps per row (a multiple of [`LANES`]); tap `i` weighs input sample `base + i + 1 - half`.
    taps: usize,
    half: usize,
    rows: Vec<f32>,
}

impl Polyphase {
    fn new(in_rate: u32, out_rate: u32) -> Self {
        let g = gcd(in_rate as u64, out_rate as u64);
        let (l, m) = (out_rate as u64 / g, in_rate as u64 / g);
        let nyquist = in_rate.min(out_rate) as f64 / 2.0;
        // Kaiser's estimate of the length for the attenuation over the transition band, in
        // input samples; half of it on each side of the output instant.
        let width = 2.0 * std::f64::consts::PI * TRANSITION * nyquist / in_rate as f64;
        let reach = (ATTENUATION_DB - 7.95) / (2.285 * width) / 2.0;
        let half = reach.ceil() as usize;
        let taps = (2 * half).next_multiple_of(LANES);
        let exact = l <= MAX_EXACT_PHASES;
        let phases = if exact {
            l as usize
        } else {
            INTERPOLATED_PHASES
        };
        let n_rows = if exact { phases } else { phases + 1 };
        let kernel = Kernel::new(CUTOFF * nyquist / in_rate as f64, reach);
        let mut rows = vec![0f32; n_rows * taps];
        for (p, row) in rows.chunks_exact_mut(taps).enumerate() {
            let frac = p as f64 / phases as f64;
            let values: Vec<f64> = (0..taps)
                .map(|i| kernel.at(frac - (i as f64 + 1.0 - half as f64)))
                .collect();
            // Unity gain at DC in every phase.
            let sum: f64 = values.iter().sum();
            for (c, v) in row.iter_mut().zip(&values) {
                *c = (v / sum) as f32;
            }
        }
        Self {
            l,
            m,
            phases,
            exact,
            taps,
            half,
            rows,
        }
    }

    /// Input index of the sample at or before output `j`'s instant, and the phase there.
    fn position(&self, j: u64) -> (u64, u64) {
        let at = j as u128 * self.m as u128;
        ((at / self.l as u128) as u64, (at % self.l as u128) as u64)
    }

    /// Input samples needed after output `j`'s base sample (its window's last index - base).
    fn lookahead(&self) -> usize {
        self.taps - self.half
    }
}

/// A Kaiser-windowed sinc low-pass in continuous time (unit: input samples).
struct Kernel {
    /// Cutoff as a fraction of the input rate.
    fc: f64,
    reach: f64,
    beta: f64,
    i0_beta: f64,
}

impl Kernel {
    fn new(fc: f64, reach: f64) -> Self {
        let beta = 0.1102 * (ATTENUATION_DB - 8.7);
        Self {
            fc,
            reach,
            beta,
            i0_beta: bessel_i0(beta),
        }
    }

    fn at(&self, t: f64) -> f64 {
        let r = t / self.reach;
        if r.abs() >= 1.0 {
            return 0.0;
        }
        let x = 2.0 * self.fc * t;
        let sinc = if x == 0.0 {
            1.0
        } else {
            (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
        };
        2.0 * self.fc * sinc * bessel_i0(self.beta * (1.0 - r * r).sqrt()) / self.i0_beta
    }
}

/// The modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0f64, 1.0f64, 1.0f64);
    while term > sum * 1e-17 {
        term *= (x / (2.0 * k)).powi(2);
        sum += term;
        k += 1.0;
    }
    sum
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Streams input through a [`Polyphase`] filter with a fixed-size window of input samples.
struct Converter<'f> {
    filter: &'f Polyphase,
    /// `window[i]` is input sample `start + i` (negative indices: the zeros before the start).
    window: Zeroizing<Vec<f32>>,
    filled: usize,
    start: i64,
    out: Zeroizing<Vec<f32>>,
    /// The interpolated row, when phases are not exact.
    row: Vec<f32>,
}

impl<'f> Converter<'f> {
    fn new(filter: &'f Polyphase) -> Self {
        let lead = filter.half - 1;
        Self {
            filter,
            window: Zeroizing::new(vec![0f32; filter.taps + CHUNK]),
            filled: lead,
            start: -(lead as i64),
            out: Zeroizing::new(vec![0f32; CHUNK]),
            row: vec![0f32; filter.taps],
        }
    }

    fn run(
        &mut self,
        input: &mut dyn PcmRead,
        expected: u64,
        sink: &mut dyn FnMut(&[f32]) -> io::Result<()>,
        arch: pulp::Arch,
    ) -> io::Result<u64> {
        let mut produced = 0u64;
        let mut ended = false;
        while produced < expected {
            if !ended {
                let n = input.read_pcm(&mut self.window[self.filled..])?;
                ended = n == 0;
                self.filled += n;
            }
            if ended {
                // Past the end the input is zeros.
                self.window[self.filled..].fill(0.0);
                self.filled = self.window.len();
            }
            let k = arch.dispatch(Block {
                conv: self,
                avx2: avx2_token(arch),
                first: produced,
                limit: expected,
            });
            sink(&self.out[..k])?;
            produced += k as u64;
            self.discard_before(produced);
        }
        Ok(produced)
    }

    /// Drops the samples output `j` and later no longer need.
    fn discard_before(&mut self, j: u64) {
        let (base, _) = self.filter.position(j);
        let first = base as i64 + 1 - self.filter.half as i64;
        let drop = (first - self.start).clamp(0, self.filled as i64) as usize;
        self.window.copy_within(drop..self.filled, 0);
        self.filled -= drop;
        self.start += drop as i64;
    }
}

/// The AVX2 token when running on AVX2, for [`dot_avx2`].
#[cfg(target_arch = "x86_64")]
type Avx2Token = Option<pulp::x86::V3>;
#[cfg(not(target_arch = "x86_64"))]
type Avx2Token = Option<std::convert::Infallible>;

fn avx2_token(arch: pulp::Arch) -> Avx2Token {
    #[cfg(target_arch = "x86_64")]
    if let pulp::Arch::V3(v3) = arch {
        return Some(v3);
    }
    let _ = arch;
    None
}

/// One block of outputs as a [`pulp::WithSimd`] job: `with_simd` and what it calls are
/// `#[inline(always)]`, so they are compiled for the detected instruction set (AVX2 where
/// present). Same operations in the same order on every path: results are bit-identical.
struct Block<'c, 'f> {
    conv: &'c mut Converter<'f>,
    avx2: Avx2Token,
    first: u64,
    limit: u64,
}

impl pulp::WithSimd for Block<'_, '_> {
    type Output = usize;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> usize {
        let simd = self.avx2;
        let Converter {
            filter,
            window,
            filled,
            start,
            out,
            row,
        } = self.conv;
        let end = *start + *filled as i64;
        let mut k = 0;
        while k < out.len() && self.first + (k as u64) < self.limit {
            let (base, phase) = filter.position(self.first + k as u64);
            if base as i64 + filter.lookahead() as i64 >= end {
                break;
            }
            let from = (base as i64 + 1 - filter.half as i64 - *start) as usize;
            let x = &window[from..from + filter.taps];
            let coefs = if filter.exact {
                let p = phase as usize;
                &filter.rows[p * filter.taps..(p + 1) * filter.taps]
            } else {
                interpolate_row(filter, phase, row);
                &row[..]
            };
            out[k] = match simd {
                #[cfg(target_arch = "x86_64")]
                Some(v3) => dot_avx2(v3, x, coefs),
                _ => dot(x, coefs),
            };
            k += 1;
        }
        k
    }
}

/// The filter row for `phase` (of `filter.l`) interpolated between the two nearest rows.
#[inline(always)]
fn interpolate_row(filter: &Polyphase, phase: u64, row: &mut [f32]) {
    let pos = phase as f64 * filter.phases as f64 / filter.l as f64;
    let p = (pos as usize).min(filter.phases - 1);
    let w = (pos - p as f64) as f32;
    let t = filter.taps;
    let (a, b) = (
        &filter.rows[p * t..(p + 1) * t],
        &filter.rows[(p + 1) * t..(p + 2) * t],
    );
    for ((r, x), y) in row.iter_mut().zip(a).zip(b) {
        *r = x + w * (y - x);
    }
}

/// Lanes of the dot product: four 8-lane accumulators, so that four independent chains of
/// additions hide the adder's latency.
const LANES: usize = 32;

/// Dot product of two rows whose length is a multiple of [`LANES`]: lane `l` of accumulator `a`
/// sums the products at `32 i + 8 a + l`; the accumulators are added as `(0 + 1) + (2 + 3)`,
/// then the eight lanes as `((0 + 4) + (2 + 6)) + ((1 + 5) + (3 + 7))`.
#[inline(always)]
fn dot(x: &[f32], c: &[f32]) -> f32 {
    let mut acc = [[0f32; 8]; 4];
    let (xs, cs) = (x.as_chunks::<LANES>().0, c.as_chunks::<LANES>().0);
    for (xs, cs) in xs.iter().zip(cs) {
        for (a, acc) in acc.iter_mut().enumerate() {
            for l in 0..8 {
                acc[l] += xs[8 * a + l] * cs[8 * a + l];
            }
        }
    }
    let mut s = [0f32; 8];
    for l in 0..8 {
        s[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
    lane_sum(s)
}

#[inline(always)]
fn lane_sum(s: [f32; 8]) -> f32 {
    ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

/// [`dot`] in AVX2 registers, operation for operation (no fused multiply-add), so the bits are
/// the same. The compiler did not vectorise [`dot`] well (pairs of lanes).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dot_avx2(simd: pulp::x86::V3, x: &[f32], c: &[f32]) -> f32 {
    use std::arch::x86_64::__m256;
    let avx = simd.avx;
    let load = |s: &[f32]| -> __m256 {
        let a: [f32; 8] = s.try_into().expect("8 values");
        pulp::cast(a)
    };
    let mut acc = [avx._mm256_setzero_ps(); 4];
    let (xs, cs) = (x.as_chunks::<LANES>().0, c.as_chunks::<LANES>().0);
    for (xs, cs) in xs.iter().zip(cs) {
        for (a, acc) in acc.iter_mut().enumerate() {
            let r = 8 * a..8 * a + 8;
            let p = avx._mm256_mul_ps(load(&xs[r.clone()]), load(&cs[r]));
            *acc = avx._mm256_add_ps(*acc, p);
        }
    }
    let s = avx._mm256_add_ps(
        avx._mm256_add_ps(acc[0], acc[1]),
        avx._mm256_add_ps(acc[2], acc[3]),
    );
    lane_sum(pulp::cast(s))
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

/// Resamples an in-memory clip (tests, benchmarks).
pub fn resample_all(samples: &[f32], in_rate: u32, out_rate: u32) -> io::Result<Vec<f32>> {
    let pcm = crate::dsp::pcm::MemoryPcm::new(samples.to_vec(), in_rate);
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

    /// A tone of amplitude 0.5 (computed in f64: an f32 phase would add noise at -70 dB).
    fn tone(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| sine(freq, i as f64 / rate as f64)).collect()
    }

    fn sine(freq: f32, t: f64) -> f32 {
        (0.5 * (2.0 * std::f64::consts::PI * freq as f64 * t).sin()) as f32
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
        // No delay: the output is the tone itself at the output instants (edges aside).
        for rate in [44_100, 48_000, 22_050, 8_000, 96_000, 11_025, 44_056] {
            let x = tone(1000.0, rate, rate as usize);
            let y = resample_all(&x, rate, 16_000).unwrap();
            let err = (800..y.len() - 800)
                .map(|i| (y[i] - sine(1000.0, i as f64 / 16_000.0)).abs())
                .fold(0f32, f32::max);
            assert!(err < 2e-4, "{rate}: max error {err}");
        }
    }

    #[test]
    fn an_impulse_lands_on_its_own_instant() {
        // 48 kHz sample 24_000 is 16 kHz sample 8_000; 44.1 kHz sample 44_100 is 16_000.
        for (rate, at, want) in [(48_000, 24_000, 8_000), (44_100, 44_100, 16_000)] {
            let mut x = vec![0f32; 2 * rate as usize];
            x[at] = 1.0;
            let y = resample_all(&x, rate, 16_000).unwrap();
            let peak = (0..y.len()).max_by(|&a, &b| y[a].total_cmp(&y[b])).unwrap();
            assert_eq!(peak, want, "{rate}");
            assert!(
                (y[want - 3] - y[want + 3]).abs() < 1e-6,
                "{rate}: not symmetric"
            );
        }
    }

    /// Level in dB of a resampled full-scale tone (middle half of the output).
    fn level_db(freq: f32, rate: u32) -> f32 {
        let y = resample_all(&tone(freq, rate, rate as usize), rate, 16_000).unwrap();
        let mid = &y[y.len() / 4..3 * y.len() / 4];
        let rms = (mid.iter().map(|v| v * v).sum::<f32>() / mid.len() as f32).sqrt();
        20.0 * (rms * 2f32.sqrt() / 0.5).max(1e-12).log10()
    }

    #[test]
    fn the_passband_reaches_up_to_the_output_nyquist_like_soxr_hq() {
        // soxr HQ (librosa's default) measured at 48 kHz -> 16 kHz: -0.02 dB at 7.4 kHz,
        // -2.9 dB at 7.6 kHz, -24 dB at 7.8 kHz, -108 dB at 7.99 kHz.
        for rate in [44_100, 48_000, 96_000] {
            for f in [1000.0, 4000.0, 6600.0, 7000.0, 7300.0] {
                let db = level_db(f, rate);
                assert!(db.abs() < 0.02, "{rate}: {f} Hz at {db} dB");
            }
            let db = level_db(7600.0, rate);
            assert!((-3.5..-2.5).contains(&db), "{rate}: 7600 Hz at {db} dB");
            let db = level_db(7800.0, rate);
            assert!((-27.0..-21.0).contains(&db), "{rate}: 7800 Hz at {db} dB");
            let db = level_db(7990.0, rate);
            assert!(db < -90.0, "{rate}: 7990 Hz at {db} dB");
        }
    }

    #[test]
    fn content_above_nyquist_is_removed() {
        for (f, rate) in [(12_000.0, 48_000), (8_100.0, 44_100), (30_000.0, 96_000)] {
            let x = tone(f, rate, rate as usize);
            let y = resample_all(&x, rate, 16_000).unwrap();
            let rms = (y[800..y.len() - 800].iter().map(|v| v * v).sum::<f32>()
                / (y.len() - 1600) as f32)
                .sqrt();
            assert!(rms < 1e-6, "{f} Hz from {rate} Hz: aliased energy {rms}");
        }
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

    #[test]
    fn upsampling_keeps_the_band_and_the_length() {
        for (from, to) in [(8_000, 16_000), (16_000, 48_000), (16_000, 44_100)] {
            let x = tone(1000.0, from, from as usize);
            let y = resample_all(&x, from, to).unwrap();
            assert_eq!(y.len(), to as usize);
            let err = (to as usize / 20..y.len() - to as usize / 20)
                .map(|i| (y[i] - sine(1000.0, i as f64 / to as f64)).abs())
                .fold(0f32, f32::max);
            assert!(err < 2e-4, "{from} -> {to}: max error {err}");
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        for rate in [44_100, 48_000, 44_056, 8_000] {
            let pcm = crate::dsp::pcm::MemoryPcm::new(tone(440.0, rate, 20_000), rate);
            let run = |arch| {
                let mut y = Vec::new();
                let mut sink = |b: &[f32]| {
                    y.extend_from_slice(b);
                    Ok(())
                };
                resample_with(&pcm, 16_000, &mut sink, arch).unwrap();
                y
            };
            let (best, baseline) = (run(pulp::Arch::new()), run(pulp::Arch::Scalar));
            assert!(
                best.iter()
                    .zip(&baseline)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{rate}"
            );
        }
    }
}
