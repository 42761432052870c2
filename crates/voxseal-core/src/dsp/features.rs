//! ML features: log-mel spectrogram and MFCC, computed like librosa, stored as safetensors.
//!
//! Pipeline (parameters in [`FeatureParams`], defaults shown): resample to 16 kHz; frames of
//! `n_fft` = 512 samples every `hop_length` = 160 (10 ms), centred (`center=True`, zero padding
//! of `n_fft/2` at both ends, so there are `1 + n/hop` frames); a periodic Hann window of
//! `win_length` = 400 (25 ms) centred in the frame; power spectrum of a real FFT (realfft over
//! rustfft); a Slaney-style mel filterbank (`htk=False`, `norm="slaney"`, 80 bands, 0-8 kHz);
//! `10 log10(max(1e-10, S))` with the `top_db` = 80 floor under the take's maximum (librosa's
//! `power_to_db(ref=1.0, amin=1e-10, top_db=80)`); MFCC = the first 13 coefficients of the
//! orthonormal DCT-II of each log-mel frame (librosa's `mfcc(S=log_mel, dct_type=2, norm="ortho")`).
//!
//! [`extract`] does this for audio in memory (benchmarks, tests). [`write_safetensors`] streams
//! a take of any length from a [`PcmReplay`] (the spool) into a writer (the age encryptor) in three
//! passes (find the maximum for `top_db`; write log-mel rows; write MFCC rows), so memory stays flat
//! however long the take is.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::dsp::pcm::PcmReplay;
use crate::dsp::resample;

/// Feature parameters; recorded in the payload metadata and the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureParams {
    /// Rate the audio is resampled to, Hz.
    pub sample_rate: u32,
    /// FFT size (frame length), samples.
    pub n_fft: usize,
    /// Hann window length, samples (centred in the frame).
    pub win_length: usize,
    /// Hop between frames, samples.
    pub hop_length: usize,
    /// Mel bands.
    pub n_mels: usize,
    /// MFCC coefficients kept.
    pub n_mfcc: usize,
    /// Lowest mel band edge, Hz.
    pub fmin: f64,
    /// Highest mel band edge, Hz.
    pub fmax: f64,
    /// Floor of the log-mel below its maximum, dB (`None`: no floor).
    pub top_db: Option<f64>,
}

impl Default for FeatureParams {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            n_fft: 512,
            win_length: 400,
            hop_length: 160,
            n_mels: 80,
            n_mfcc: 13,
            fmin: 0.0,
            fmax: 8_000.0,
            top_db: Some(80.0),
        }
    }
}

/// `amin` of `power_to_db`.
const AMIN: f32 = 1e-10;

impl FeatureParams {
    /// Checks the parameters make sense; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let p = self;
        let checks = [
            (
                (8_000..=48_000).contains(&p.sample_rate),
                "sample_rate must be 8000-48000 Hz",
            ),
            ((16..=8192).contains(&p.n_fft), "n_fft must be 16-8192"),
            (
                p.win_length >= 2 && p.win_length <= p.n_fft,
                "win_length must be 2..=n_fft",
            ),
            (
                p.hop_length >= 1 && p.hop_length <= p.n_fft,
                "hop_length must be 1..=n_fft",
            ),
            ((1..=256).contains(&p.n_mels), "n_mels must be 1-256"),
            (
                p.n_mfcc >= 1 && p.n_mfcc <= p.n_mels,
                "n_mfcc must be 1..=n_mels",
            ),
            (
                p.fmin >= 0.0 && p.fmin < p.fmax && p.fmax <= p.sample_rate as f64 / 2.0,
                "need 0 <= fmin < fmax <= sample_rate/2",
            ),
            (
                p.top_db.is_none_or(|t| t > 0.0 && t.is_finite()),
                "top_db must be positive",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(format!("feature parameters: {why}")),
            None => Ok(()),
        }
    }

    /// Frames for `n` samples at the feature rate (`center=True`).
    pub fn frames_for(&self, n: u64) -> u64 {
        1 + n / self.hop_length as u64
    }

    /// The parameters (and fixed choices) as string metadata, with librosa's names.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), v);
        };
        put("sample_rate", self.sample_rate.to_string());
        put("n_fft", self.n_fft.to_string());
        put("win_length", self.win_length.to_string());
        put("hop_length", self.hop_length.to_string());
        put("window", "hann".into());
        put("center", "true".into());
        put("pad_mode", "constant".into());
        put("power", "2.0".into());
        put("n_mels", self.n_mels.to_string());
        put("fmin", self.fmin.to_string());
        put("fmax", self.fmax.to_string());
        put("htk", "false".into());
        put("mel_norm", "slaney".into());
        put("ref", "1.0".into());
        put("amin", "1e-10".into());
        put(
            "top_db",
            self.top_db
                .map(|t| t.to_string())
                .unwrap_or_else(|| "none".into()),
        );
        put("n_mfcc", self.n_mfcc.to_string());
        put("dct_type", "2".into());
        put("dct_norm", "ortho".into());
        m
    }
}

fn hz_to_mel(f: f64) -> f64 {
    // Slaney's Auditory Toolbox scale, as librosa with htk=False.
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        m * f_sp
    }
}

/// A sparse mel filterbank: per band, the first FFT bin and its weights.
#[derive(Debug, Clone)]
struct MelFilters {
    starts: Vec<usize>,
    offsets: Vec<usize>,
    weights: Vec<f32>,
}

impl MelFilters {
    /// librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney").
    fn new(p: &FeatureParams) -> Self {
        let n_bins = p.n_fft / 2 + 1;
        let fft_freqs: Vec<f64> = (0..n_bins)
            .map(|k| k as f64 * p.sample_rate as f64 / p.n_fft as f64)
            .collect();
        let (lo, hi) = (hz_to_mel(p.fmin), hz_to_mel(p.fmax));
        let mel_f: Vec<f64> = (0..p.n_mels + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (p.n_mels + 1) as f64))
            .collect();
        let mut starts = Vec::with_capacity(p.n_mels);
        let mut offsets = vec![0];
        let mut weights = Vec::new();
        for i in 0..p.n_mels {
            let (f0, f1, f2) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
            let enorm = 2.0 / (f2 - f0);
            let row: Vec<f32> = fft_freqs
                .iter()
                .map(|&f| {
                    let lower = (f - f0) / (f1 - f0);
                    let upper = (f2 - f) / (f2 - f1);
                    (lower.min(upper).max(0.0) * enorm) as f32
                })
                .collect();
            let first = row.iter().position(|&w| w > 0.0).unwrap_or(0);
            let last = row.iter().rposition(|&w| w > 0.0).map_or(first, |l| l + 1);
            starts.push(first);
            weights.extend_from_slice(&row[first..last.max(first)]);
            offsets.push(weights.len());
        }
        Self {
            starts,
            offsets,
            weights,
        }
    }

    /// The same filters with every weight multiplied by `s` (a power of two: exact).
    fn scaled(mut self, s: f32) -> Self {
        for w in &mut self.weights {
            *w *= s;
        }
        self
    }

    /// Mel powers of a block, frame-minor: `power` is `[bin][BLOCK]`, `mel` is `[band][BLOCK]`.
    /// Every lane (frame) sees the same operations in the same order.
    #[inline(always)]
    fn apply_block(&self, power: &[f32], mel: &mut [f32]) {
        for (m, out) in mel.chunks_exact_mut(BLOCK).enumerate() {
            let w = &self.weights[self.offsets[m]..self.offsets[m + 1]];
            let p = &power[self.starts[m] * BLOCK..(self.starts[m] + w.len()) * BLOCK];
            let mut acc = [0f32; BLOCK];
            for (&wj, pj) in w.iter().zip(p.chunks_exact(BLOCK)) {
                for (a, &x) in acc.iter_mut().zip(pj) {
                    *a += wj * x;
                }
            }
            out.copy_from_slice(&acc);
        }
    }
}

/// Frames processed together, frame-minor ("lanes"): every per-frame loop below runs over
/// `BLOCK` frames at once, so it vectorizes whatever the band widths; the buffers stay in cache.
const BLOCK: usize = 16;

/// The real FFT of each frame, reduced to its power spectrum.
enum Spectrum {
    /// Even `n_fft = 2m`: the frame is packed as `m` complex values `x[2n] + i x[2n+1]`, one
    /// `m`-point complex FFT per frame (batched over a block), and the two interleaved halves
    /// are separated while squaring. The power comes out 4x too large; the mel weights carry
    /// the 1/4 (both exact: powers of two).
    Packed {
        fft: Arc<dyn Fft<f32>>,
        /// `W^k = exp(-2 pi i k / n_fft)` for `k` in `0..=m/2`, split into real and imaginary.
        tw_re: Vec<f32>,
        tw_im: Vec<f32>,
        /// `BLOCK` frames of `m` values: the windowed audio, then its spectrum.
        buf: SecretComplex,
        scratch: Vec<Complex<f32>>,
    },
    /// Odd `n_fft` (allowed, never the default): realfft, one frame at a time.
    Real {
        fft: Arc<dyn RealToComplex<f32>>,
        input: Zeroizing<Vec<f32>>,
        spectrum: Vec<Complex<f32>>,
        scratch: Vec<Complex<f32>>,
    },
}

/// Complex samples that are wiped (with volatile writes) when dropped: they hold windowed audio.
struct SecretComplex(Vec<Complex<f32>>);

impl Drop for SecretComplex {
    fn drop(&mut self) {
        for c in &mut self.0 {
            c.re.zeroize();
            c.im.zeroize();
        }
    }
}

/// What [`Frontend::process_block`] computed for a block of frames.
struct BlockOut<'a> {
    /// `[count][n_mels]` log-mel in dB, row-major, before the `top_db` floor.
    log_mel: &'a [f32],
    /// The largest mel power in the block (before dB).
    max_power: f32,
}

/// Turns blocks of frames into log-mel rows: window, real FFT, |X|^2, mel filterbank, dB.
struct Frontend {
    /// The instruction set the block loops are compiled for, detected at run time (see
    /// [`pulp::Arch`]): AVX2 where the CPU has it, else the baseline (SSE2 on x86-64). The
    /// results are the same bit for bit: no fused multiply-adds, no reordered sums.
    arch: pulp::Arch,
    n_fft: usize,
    n_mels: usize,
    /// The periodic Hann window, zero-padded to `n_fft` (centred).
    window: Vec<f32>,
    /// The window is zero outside `[lo, hi)` (for `Packed` widened to multiples of 8 samples).
    lo: usize,
    hi: usize,
    spectrum: Spectrum,
    filters: MelFilters,
    /// Frame-minor work areas: power `[bin][BLOCK]`, mel/dB `[band][BLOCK]`.
    power: Vec<f32>,
    /// The power spectra row-major (`[BLOCK][n_fft/2 + 1, rounded up to a multiple of 4]`).
    power_rows: Vec<f32>,
    mel: Vec<f32>,
    /// Row-major results.
    rows: Vec<f32>,
}

/// The AVX2 token when the block loops run on AVX2, for the paths that move data with explicit
/// shuffles ([`packed_power_avx2`], [`transpose_avx2`]).
#[cfg(target_arch = "x86_64")]
type Avx2Token = Option<pulp::x86::V3>;
#[cfg(not(target_arch = "x86_64"))]
type Avx2Token = Option<std::convert::Infallible>;

/// [`Avx2Token`] for `arch`.
fn avx2_token(arch: pulp::Arch) -> Avx2Token {
    #[cfg(target_arch = "x86_64")]
    if let pulp::Arch::V3(v3) = arch {
        return Some(v3);
    }
    let _ = arch;
    None
}

impl Frontend {
    fn new(p: &FeatureParams) -> Self {
        let n = p.n_fft;
        let offset = (n - p.win_length) / 2;
        // scipy.signal.get_window("hann", win_length, fftbins=True): periodic Hann.
        let mut window = vec![0f32; n];
        for (i, w) in window[offset..offset + p.win_length].iter_mut().enumerate() {
            *w = (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / p.win_length as f64).cos())
                as f32;
        }
        let filters = MelFilters::new(p);
        let (spectrum, filters, lo, hi) = if n.is_multiple_of(2) {
            let m = n / 2;
            let fft = FftPlanner::<f32>::new().plan_fft_forward(m);
            let (tw_re, tw_im) = (0..=m / 2)
                .map(|k| {
                    let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                    (a.cos() as f32, a.sin() as f32)
                })
                .unzip();
            let scratch = vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()];
            let buf = SecretComplex(vec![Complex::new(0.0, 0.0); BLOCK * m]);
            // Only the window's span, widened to whole groups of 8 samples (so to even
            // bounds: whole complex values), is multiplied; the rest of each frame is
            // zero-filled, as the in-place FFT overwrites it. (Windowing the zeros as well
            // measured 1-3% slower overall.)
            let (lo, hi) = (
                offset / 8 * 8,
                (offset + p.win_length).next_multiple_of(8).min(n),
            );
            let spectrum = Spectrum::Packed {
                fft,
                tw_re,
                tw_im,
                buf,
                scratch,
            };
            (spectrum, filters.scaled(0.25), lo, hi)
        } else {
            let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
            let spectrum = Spectrum::Real {
                input: Zeroizing::new(fft.make_input_vec()),
                spectrum: fft.make_output_vec(),
                scratch: fft.make_scratch_vec(),
                fft,
            };
            (spectrum, filters, offset, offset + p.win_length)
        };
        Self {
            arch: pulp::Arch::new(),
            n_fft: n,
            n_mels: p.n_mels,
            window,
            lo,
            hi,
            spectrum,
            filters,
            power: vec![0.0; (n / 2 + 1).next_multiple_of(4) * BLOCK],
            power_rows: vec![0.0; (n / 2 + 1).next_multiple_of(4) * BLOCK],
            mel: vec![0.0; p.n_mels * BLOCK],
            rows: vec![0.0; BLOCK * p.n_mels],
        }
    }

    /// Log-mel of `count` (1 to [`BLOCK`]) frames `src[i * hop..][..n_fft]`. Each frame's
    /// results depend only on its own samples, never on its block or lane.
    fn process_block(&mut self, src: &[f32], hop: usize, count: usize) -> BlockOut<'_> {
        assert!(count > 0 && count <= BLOCK);
        assert!((count - 1) * hop + self.n_fft <= src.len());
        let arch = self.arch;
        let max_power = arch.dispatch(BlockJob {
            front: self,
            src,
            hop,
            count,
            to_rows: true,
        });
        BlockOut {
            log_mel: &self.rows[..count * self.n_mels],
            max_power,
        }
    }

    /// [`Frontend::process_block`], leaving the log-mel frame-minor: returns it as
    /// `[n_mels][BLOCK]` (lanes past `count` hold leftovers) and the block's largest mel power.
    fn process_block_lanes(&mut self, src: &[f32], hop: usize, count: usize) -> (&[f32], f32) {
        assert!(count > 0 && count <= BLOCK);
        assert!((count - 1) * hop + self.n_fft <= src.len());
        let arch = self.arch;
        let max_power = arch.dispatch(BlockJob {
            front: self,
            src,
            hop,
            count,
            to_rows: false,
        });
        (&self.mel, max_power)
    }

    /// [`Frontend::process_block`]'s work; returns the block's largest mel power.
    #[inline(always)]
    fn compute_block(&mut self, src: &[f32], hop: usize, count: usize, to_rows: bool) -> f32 {
        self.power_spectra(src, hop, count);
        // Lanes past `count` hold earlier frames' (finite) values: computed, never returned.
        self.filters.apply_block(&self.power, &mut self.mel);
        let mut max = [0f32; BLOCK];
        for band in self.mel.chunks_exact(BLOCK) {
            for (m, &x) in max.iter_mut().zip(band) {
                *m = if x > *m { x } else { *m };
            }
        }
        let max_power = max[..count].iter().fold(0f32, |a, &b| a.max(b));
        power_to_db_in_place(&mut self.mel);
        if to_rows {
            transpose_out(
                avx2_token(self.arch),
                &self.mel,
                self.n_mels,
                count,
                &mut self.rows,
            );
        }
        max_power
    }

    /// Window, FFT and `|X|^2` of each frame into `self.power`, frame-minor.
    #[inline(always)]
    fn power_spectra(&mut self, src: &[f32], hop: usize, count: usize) {
        let (n, lo, hi) = (self.n_fft, self.lo, self.hi);
        match &mut self.spectrum {
            Spectrum::Packed {
                fft,
                tw_re,
                tw_im,
                buf,
                scratch,
            } => {
                let m = n / 2;
                let buf = &mut buf.0[..count * m];
                let (zl, zh) = (lo / 2, hi / 2);
                for (f, z) in buf.chunks_exact_mut(m).enumerate() {
                    z[..zl].fill(Complex::new(0.0, 0.0));
                    z[zh..].fill(Complex::new(0.0, 0.0));
                    let frame = &src[f * hop..f * hop + n];
                    window_packed(&frame[lo..hi], &self.window[lo..hi], &mut z[zl..zh]);
                }
                fft.process_with_scratch(buf, scratch);
                let w = self.power_rows.len() / BLOCK;
                let avx2 = avx2_token(self.arch);
                for (z, row) in buf.chunks_exact(m).zip(self.power_rows.chunks_exact_mut(w)) {
                    match avx2 {
                        #[cfg(target_arch = "x86_64")]
                        Some(v3) => packed_power_avx2(v3, z, tw_re, tw_im, row),
                        _ => packed_power(z, tw_re, tw_im, row),
                    }
                }
                transpose_in(avx2, &self.power_rows, w, count, &mut self.power);
            }
            Spectrum::Real {
                fft,
                input,
                spectrum,
                scratch,
            } => {
                for f in 0..count {
                    let frame = &src[f * hop..f * hop + n];
                    input[..lo].fill(0.0);
                    input[hi..].fill(0.0);
                    for ((x, &s), &w) in input[lo..hi]
                        .iter_mut()
                        .zip(&frame[lo..hi])
                        .zip(&self.window[lo..hi])
                    {
                        *x = s * w;
                    }
                    fft.process_with_scratch(input, spectrum, scratch)
                        .expect("buffers are sized by the plan");
                    for (k, c) in spectrum.iter().enumerate() {
                        self.power[k * BLOCK + f] = c.re * c.re + c.im * c.im;
                    }
                }
            }
        }
    }
}

/// [`Frontend::compute_block`] as a [`pulp::WithSimd`] job. `with_simd` and everything it calls
/// are `#[inline(always)]`, so that they are compiled into pulp's function for the detected
/// instruction set (a closure would not be inlined there).
struct BlockJob<'a> {
    front: &'a mut Frontend,
    src: &'a [f32],
    hop: usize,
    count: usize,
    to_rows: bool,
}

impl pulp::WithSimd for BlockJob<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> f32 {
        self.front
            .compute_block(self.src, self.hop, self.count, self.to_rows)
    }
}

/// [`DctBlock::apply_rows`] as a [`pulp::WithSimd`] job (see [`BlockJob`]).
struct DctJob<'a> {
    dct: &'a mut DctBlock,
    rows: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for DctJob<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.dct.apply_rows_inner(self.rows, self.out);
    }
}

/// [`DctBlock::finish_lanes`] as a [`pulp::WithSimd`] job (see [`BlockJob`]).
struct LanesJob<'a> {
    dct: &'a mut DctBlock,
    block: &'a mut [f32],
    count: usize,
    floor: Option<f32>,
    out: &'a mut [f32],
}

impl pulp::WithSimd for LanesJob<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.dct
            .finish_lanes_inner(self.block, self.count, self.floor, self.out);
    }
}

/// `rows[f][j] = lanes[j][f]` for the first `count` lanes.
#[inline(always)]
fn transpose_out(avx2: Avx2Token, lanes: &[f32], width: usize, count: usize, rows: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = avx2 {
        return transpose_avx2(v3, lanes, BLOCK, rows, width, width, count);
    }
    let _ = avx2;
    for (f, row) in rows[..count * width].chunks_exact_mut(width).enumerate() {
        for (r, lane) in row.iter_mut().zip(lanes.chunks_exact(BLOCK)) {
            *r = lane[f];
        }
    }
}

/// `z[i] = (x[2i] w[2i], x[2i+1] w[2i+1])`, four complex values at a time.
#[inline(always)]
fn window_packed(x: &[f32], w: &[f32], z: &mut [Complex<f32>]) {
    let mut zc = z.chunks_exact_mut(4);
    let mut xc = x.chunks_exact(8);
    let mut wc = w.chunks_exact(8);
    for ((z4, x8), w8) in (&mut zc).zip(&mut xc).zip(&mut wc) {
        let mut p = [0f32; 8];
        for j in 0..8 {
            p[j] = x8[j] * w8[j];
        }
        for (j, c) in z4.iter_mut().enumerate() {
            *c = Complex::new(p[2 * j], p[2 * j + 1]);
        }
    }
    for ((c, x), w) in zc
        .into_remainder()
        .iter_mut()
        .zip(xc.remainder().chunks_exact(2))
        .zip(wc.remainder().chunks_exact(2))
    {
        *c = Complex::new(x[0] * w[0], x[1] * w[1]);
    }
}

/// `4 |X[k]|^2` for `k` in `0..=m` from `Z`, the `m`-point FFT of `x[2n] + i x[2n+1]`.
///
/// With `A = Z[k]`, `B = conj(Z[m-k])`: `2X[k] = (A + B) - i W^k (A - B)` and
/// `2X[m-k] = conj((A + B) + i W^k (A - B))`, so one pass over `k < m/2` gives both halves.
#[inline(always)]
fn packed_power(z: &[Complex<f32>], tw_re: &[f32], tw_im: &[f32], power: &mut [f32]) {
    let m = z.len();
    power_unpaired(z, power);
    // Pairs (k, m-k) with 0 < k < m-k: k in 1..=pairs, LANES at a time through fixed-size
    // arrays (so that it vectorizes), then one at a time.
    let pairs = (m - 1) / 2;
    let mut k = 1;
    while k + LANES <= pairs + 1 {
        let lo: &[Complex<f32>; LANES] = z[k..k + LANES].try_into().expect("LANES values");
        let hi: &[Complex<f32>; LANES] = z[m + 1 - k - LANES..m + 1 - k]
            .try_into()
            .expect("LANES values");
        let c: &[f32; LANES] = tw_re[k..k + LANES].try_into().expect("LANES values");
        let s: &[f32; LANES] = tw_im[k..k + LANES].try_into().expect("LANES values");
        let (mut ar, mut ai, mut br, mut bi) =
            ([0f32; LANES], [0f32; LANES], [0f32; LANES], [0f32; LANES]);
        for j in 0..LANES {
            ar[j] = lo[j].re;
            ai[j] = lo[j].im;
            br[j] = hi[LANES - 1 - j].re;
            bi[j] = hi[LANES - 1 - j].im;
        }
        let (mut pl, mut ph) = ([0f32; LANES], [0f32; LANES]);
        for j in 0..LANES {
            let (p, q) = split_pair(ar[j], ai[j], br[j], bi[j], c[j], s[j]);
            pl[j] = p;
            ph[LANES - 1 - j] = q;
        }
        power[k..k + LANES].copy_from_slice(&pl);
        power[m + 1 - k - LANES..m + 1 - k].copy_from_slice(&ph);
        k += LANES;
    }
    power_pairs_from(k, z, tw_re, tw_im, power);
}

/// The parts of [`packed_power`] that are not pairs `(k, m-k)` with `0 < k < m-k`: `k = 0`
/// and `k = m` (from `Z[0]`), and `k = m/2` for even `m`.
#[inline(always)]
fn power_unpaired(z: &[Complex<f32>], power: &mut [f32]) {
    let m = z.len();
    let z0 = z[0];
    power[0] = (2.0 * (z0.re + z0.im)) * (2.0 * (z0.re + z0.im));
    power[m] = (2.0 * (z0.re - z0.im)) * (2.0 * (z0.re - z0.im));
    if m.is_multiple_of(2) && m >= 2 {
        // k = m/2 pairs with itself: W^k = -i, so 2X[k] = 2 conj(Z[k]).
        let a = z[m / 2];
        power[m / 2] = 4.0 * (a.re * a.re + a.im * a.im);
    }
}

/// The pairs `(k, m-k)` of [`packed_power`] from `from` on, one at a time.
#[inline(always)]
fn power_pairs_from(
    from: usize,
    z: &[Complex<f32>],
    tw_re: &[f32],
    tw_im: &[f32],
    power: &mut [f32],
) {
    let m = z.len();
    for k in from..=m.saturating_sub(1) / 2 {
        let (a, b) = (z[k], z[m - k]);
        let (p, q) = split_pair(a.re, a.im, b.re, b.im, tw_re[k], tw_im[k]);
        power[k] = p;
        power[m - k] = q;
    }
}

/// [`packed_power`] with its data movement written out in AVX2 shuffles (the compiler built the
/// vectors of [`packed_power`]'s pairs element by element: ~100 instructions per 8 pairs, about
/// a fifth of the whole extraction). The arithmetic is [`split_pair`]'s, operation for
/// operation, so the bits are the same.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn packed_power_avx2(
    simd: pulp::x86::V3,
    z: &[Complex<f32>],
    tw_re: &[f32],
    tw_im: &[f32],
    power: &mut [f32],
) {
    use std::arch::x86_64::{__m256, __m256i};

    let m = z.len();
    let pairs = m.saturating_sub(1) / 2;
    if pairs < LANES {
        return packed_power(z, tw_re, tw_im, power);
    }
    let (avx, avx2) = (simd.avx, simd.avx2);
    let zf: &[f32] = pulp::bytemuck::cast_slice(z);
    let load = |s: &[f32]| -> __m256 {
        let a: [f32; 8] = s[..8].try_into().expect("8 values");
        pulp::cast(a)
    };
    let idx = |i: [i32; 8]| -> __m256i { pulp::cast(i) };
    // After `shuffle_ps` of two loads of 4 complex values, the real (or imaginary) parts sit
    // in the order 0 1 4 5 2 3 6 7; these put them in order, or in reverse order for the
    // upper half, whose loads are swapped.
    let (in_order, reversed, reverse) = (
        idx([0, 1, 4, 5, 2, 3, 6, 7]),
        idx([5, 4, 1, 0, 7, 6, 3, 2]),
        idx([7, 6, 5, 4, 3, 2, 1, 0]),
    );
    power_unpaired(z, power);
    let mut k = 1;
    while k + LANES <= pairs + 1 {
        // A = Z[k + j] and B = Z[m - k - j] for j in 0..8.
        let (l0, l1) = (load(&zf[2 * k..]), load(&zf[2 * k + 8..]));
        let h = 2 * (m + 1 - k - LANES);
        let (h0, h1) = (load(&zf[h..]), load(&zf[h + 8..]));
        let ar = avx2._mm256_permutevar8x32_ps(avx._mm256_shuffle_ps::<0x88>(l0, l1), in_order);
        let ai = avx2._mm256_permutevar8x32_ps(avx._mm256_shuffle_ps::<0xdd>(l0, l1), in_order);
        let br = avx2._mm256_permutevar8x32_ps(avx._mm256_shuffle_ps::<0x88>(h1, h0), reversed);
        let bi = avx2._mm256_permutevar8x32_ps(avx._mm256_shuffle_ps::<0xdd>(h1, h0), reversed);
        let (c, s) = (load(&tw_re[k..]), load(&tw_im[k..]));
        // split_pair, lane by lane.
        let (sr, si) = (avx._mm256_add_ps(ar, br), avx._mm256_sub_ps(ai, bi));
        let (dr, di) = (avx._mm256_sub_ps(ar, br), avx._mm256_add_ps(ai, bi));
        let tr = avx._mm256_add_ps(avx._mm256_mul_ps(c, di), avx._mm256_mul_ps(s, dr));
        let ti = avx._mm256_sub_ps(avx._mm256_mul_ps(s, di), avx._mm256_mul_ps(c, dr));
        let sq = |x: __m256| avx._mm256_mul_ps(x, x);
        let p = avx._mm256_add_ps(sq(avx._mm256_add_ps(sr, tr)), sq(avx._mm256_add_ps(si, ti)));
        let q = avx._mm256_add_ps(sq(avx._mm256_sub_ps(sr, tr)), sq(avx._mm256_sub_ps(si, ti)));
        let q = avx2._mm256_permutevar8x32_ps(q, reverse);
        power[k..k + LANES].copy_from_slice(&pulp::cast::<__m256, [f32; 8]>(p));
        power[m + 1 - k - LANES..m + 1 - k].copy_from_slice(&pulp::cast::<__m256, [f32; 8]>(q));
        k += LANES;
    }
    power_pairs_from(k, z, tw_re, tw_im, power);
}

/// `lanes[k][f] = rows[f][k]` for the first `count` rows: `rows` is `[count][width]`, `lanes`
/// `[width][BLOCK]`. Whole 4x4 tiles go through fixed-size arrays (vector shuffles).
#[inline(always)]
fn transpose_in(avx2: Avx2Token, rows: &[f32], width: usize, count: usize, lanes: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = avx2 {
        return transpose_avx2(v3, rows, width, lanes, BLOCK, count, width);
    }
    let _ = avx2;
    let (w4, c4) = (width / 4 * 4, count / 4 * 4);
    for f0 in (0..c4).step_by(4) {
        let r = |i: usize| &rows[(f0 + i) * width..(f0 + i + 1) * width];
        let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
        for k0 in (0..w4).step_by(4) {
            let q = |r: &[f32]| -> [f32; 4] { r[k0..k0 + 4].try_into().expect("4 values") };
            let (a, b, c, d) = (q(r0), q(r1), q(r2), q(r3));
            for j in 0..4 {
                let at = (k0 + j) * BLOCK + f0;
                lanes[at..at + 4].copy_from_slice(&[a[j], b[j], c[j], d[j]]);
            }
        }
    }
    for (f, r) in rows[..count * width].chunks_exact(width).enumerate() {
        let ks = if f < c4 { w4 } else { 0 };
        for (k, &x) in r.iter().enumerate().skip(ks) {
            lanes[k * BLOCK + f] = x;
        }
    }
}

/// `dst[j * dst_stride + i] = src[i * src_stride + j]` for `i < n_rows`, `j < n_cols`: whole
/// 8x8 tiles in AVX2 registers (8 loads, 24 shuffles, 8 stores; the compiler turned the 4x4
/// tiles of [`transpose_in`] into single-value moves), the edges one value at a time.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transpose_avx2(
    simd: pulp::x86::V3,
    src: &[f32],
    src_stride: usize,
    dst: &mut [f32],
    dst_stride: usize,
    n_rows: usize,
    n_cols: usize,
) {
    use std::arch::x86_64::__m256;

    let avx = simd.avx;
    let (rows8, cols8) = (n_rows / 8 * 8, n_cols / 8 * 8);
    for i0 in (0..rows8).step_by(8) {
        for j0 in (0..cols8).step_by(8) {
            let r = |i: usize| -> __m256 {
                let at = (i0 + i) * src_stride + j0;
                let a: [f32; 8] = src[at..at + 8].try_into().expect("8 values");
                pulp::cast(a)
            };
            let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
            let (r4, r5, r6, r7) = (r(4), r(5), r(6), r(7));
            // Pairs of rows interleaved, then 4-row columns per 128-bit half, then the halves
            // joined: column j of the tile ends up in `out[j]`.
            let interleave = |a, b| (avx._mm256_unpacklo_ps(a, b), avx._mm256_unpackhi_ps(a, b));
            let ((t0, t1), (t2, t3)) = (interleave(r0, r1), interleave(r2, r3));
            let ((t4, t5), (t6, t7)) = (interleave(r4, r5), interleave(r6, r7));
            let lo = |a, b| avx._mm256_shuffle_ps::<0x44>(a, b);
            let hi = |a, b| avx._mm256_shuffle_ps::<0xee>(a, b);
            let (u0, u1, u2, u3) = (lo(t0, t2), hi(t0, t2), lo(t1, t3), hi(t1, t3));
            let (u4, u5, u6, u7) = (lo(t4, t6), hi(t4, t6), lo(t5, t7), hi(t5, t7));
            let first = |a, b| avx._mm256_permute2f128_ps::<0x20>(a, b);
            let second = |a, b| avx._mm256_permute2f128_ps::<0x31>(a, b);
            let out = [
                first(u0, u4),
                first(u1, u5),
                first(u2, u6),
                first(u3, u7),
                second(u0, u4),
                second(u1, u5),
                second(u2, u6),
                second(u3, u7),
            ];
            for (j, v) in out.into_iter().enumerate() {
                let at = (j0 + j) * dst_stride + i0;
                dst[at..at + 8].copy_from_slice(&pulp::cast::<__m256, [f32; 8]>(v));
            }
        }
    }
    for i in 0..n_rows {
        let from = if i < rows8 { cols8 } else { 0 };
        for j in from..n_cols {
            dst[j * dst_stride + i] = src[i * src_stride + j];
        }
    }
}

/// `(4|X[k]|^2, 4|X[m-k]|^2)` from `A = Z[k]`, `Z[m-k]` and `W^k = c + i s`.
#[inline(always)]
fn split_pair(ar: f32, ai: f32, zr: f32, zi: f32, c: f32, s: f32) -> (f32, f32) {
    let (sr, si) = (ar + zr, ai - zi);
    let (dr, di) = (ar - zr, ai + zi);
    let tr = c * di + s * dr;
    let ti = s * di - c * dr;
    (
        (sr + tr) * (sr + tr) + (si + ti) * (si + ti),
        (sr - tr) * (sr - tr) + (si - ti) * (si - ti),
    )
}

/// Width of the fixed-size loops in [`packed_power`] that the compiler vectorizes.
const LANES: usize = 8;

/// Frames a stream of samples the way librosa does with `center=True, pad_mode="constant"`,
/// emitting the features of a block of frames at a time.
struct FrameStream {
    front: Frontend,
    n_fft: usize,
    hop: usize,
    buf: Zeroizing<Vec<f32>>,
    pos: usize,
}

impl FrameStream {
    fn new(p: &FeatureParams) -> Self {
        let mut buf = Zeroizing::new(Vec::with_capacity(1 << 17));
        buf.resize(p.n_fft / 2, 0.0);
        Self {
            front: Frontend::new(p),
            n_fft: p.n_fft,
            hop: p.hop_length,
            buf,
            pos: 0,
        }
    }

    fn push(
        &mut self,
        samples: &[f32],
        emit: &mut dyn FnMut(BlockOut<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.buf.extend_from_slice(samples);
        self.drain(emit)
    }

    fn drain(&mut self, emit: &mut dyn FnMut(BlockOut<'_>) -> io::Result<()>) -> io::Result<()> {
        while self.pos + self.n_fft <= self.buf.len() {
            let ready = (self.buf.len() - self.pos - self.n_fft) / self.hop + 1;
            let count = ready.min(BLOCK);
            emit(
                self.front
                    .process_block(&self.buf[self.pos..], self.hop, count),
            )?;
            self.pos += count * self.hop;
        }
        if self.pos >= 1 << 16 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        Ok(())
    }

    fn finish(mut self, emit: &mut dyn FnMut(BlockOut<'_>) -> io::Result<()>) -> io::Result<()> {
        let pad = self.n_fft / 2;
        self.buf.extend(std::iter::repeat_n(0.0, pad));
        self.drain(emit)
    }
}

/// `10 log10(max(amin, x))` for every value, fast and accurate to ~1e-6 dB.
///
/// `ln x = e ln 2 + ln m` with `m` in `[sqrt(1/2), sqrt(2))` and `ln m = 2 atanh(s)`,
/// `s = (m-1)/(m+1)`, `|s| < 0.172`, summed to `s^9`: truncation error below 1e-9, so the result
/// is as good as `f32` allows. Branch-free so the compiler vectorizes it.
#[inline(always)]
fn power_to_db_in_place(v: &mut [f32]) {
    const DB_PER_LN: f32 = 10.0 / std::f32::consts::LN_10;
    for x in v.iter_mut() {
        let a = x.max(AMIN);
        let bits = a.to_bits();
        let mut e = ((bits >> 23) & 0xff) as i32 - 127;
        let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
        let big = (m > std::f32::consts::SQRT_2) as i32;
        m *= 1.0 - 0.5 * big as f32;
        e += big;
        let s = (m - 1.0) / (m + 1.0);
        let s2 = s * s;
        let ln_m = 2.0
            * s
            * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0)))));
        *x = (ln_m + e as f32 * std::f32::consts::LN_2) * DB_PER_LN;
    }
}

/// `max(x, floor)` for every value.
#[inline(always)]
fn clamp_below(v: &mut [f32], floor: f32) {
    for x in v {
        *x = x.max(floor);
    }
}

/// The orthonormal DCT-II (first `n_mfcc` coefficients) of rows of `n_mels` values.
///
/// Uses the basis' symmetry `b[k][n-1-j] = (-1)^k b[k][j]`: even coefficients are sums over
/// `s[j] = x[j] + x[n-1-j]`, odd ones over `d[j] = x[j] - x[n-1-j]` (`j < n/2`), plus the middle
/// value for odd `n` and even `k`, halving the multiply-adds. Frames are the vector lanes.
struct Dct {
    n_mels: usize,
    n_mfcc: usize,
    /// Per coefficient `k`: `b[k][j]` for `j < n_mels/2`, then (even `k`, odd `n_mels`) the
    /// middle value's `b[k][n_mels/2]`.
    basis: Vec<Vec<f32>>,
}

impl Dct {
    fn new(n_mels: usize, n_mfcc: usize) -> Self {
        let basis = (0..n_mfcc)
            .map(|k| {
                let scale = if k == 0 {
                    (1.0 / n_mels as f64).sqrt()
                } else {
                    (2.0 / n_mels as f64).sqrt()
                };
                let len = if k % 2 == 0 {
                    n_mels.div_ceil(2)
                } else {
                    n_mels / 2
                };
                (0..len)
                    .map(|j| {
                        let c = (std::f64::consts::PI * k as f64 * (2 * j + 1) as f64
                            / (2 * n_mels) as f64)
                            .cos();
                        (scale * c) as f32
                    })
                    .collect()
            })
            .collect();
        Self {
            n_mels,
            n_mfcc,
            basis,
        }
    }

    /// `coefs` (`[n_mfcc][BLOCK]`) = the DCT of `mel` (`[n_mels][BLOCK]`); `sums` and `diffs`
    /// are work areas (`[ceil(n_mels/2)][BLOCK]`, `[n_mels/2][BLOCK]`). The middle value (odd
    /// `n_mels`) is the last "sum".
    #[inline(always)]
    fn apply_block(&self, mel: &[f32], sums: &mut [f32], diffs: &mut [f32], coefs: &mut [f32]) {
        let n = self.n_mels;
        let h = n / 2;
        let (lo, rest) = mel[..n * BLOCK].split_at(h * BLOCK);
        let (mid, hi) = rest.split_at(n % 2 * BLOCK);
        for (((a, b), s), d) in lo
            .chunks_exact(BLOCK)
            .zip(hi.chunks_exact(BLOCK).rev())
            .zip(sums.chunks_exact_mut(BLOCK))
            .zip(diffs.chunks_exact_mut(BLOCK))
        {
            for i in 0..BLOCK {
                s[i] = a[i] + b[i];
                d[i] = a[i] - b[i];
            }
        }
        sums[h * BLOCK..].copy_from_slice(mid);
        for ((k, out), basis) in coefs[..self.n_mfcc * BLOCK]
            .chunks_exact_mut(BLOCK)
            .enumerate()
            .zip(&self.basis)
        {
            let src = if k % 2 == 0 { &*sums } else { &*diffs };
            let mut acc = [0f32; BLOCK];
            for (&b, x) in basis.iter().zip(src.chunks_exact(BLOCK)) {
                for i in 0..BLOCK {
                    acc[i] += b * x[i];
                }
            }
            out.copy_from_slice(&acc);
        }
    }
}

/// Work areas for [`Dct::apply_rows`].
struct DctBlock {
    dct: Dct,
    arch: pulp::Arch,
    /// Frame-minor: input `[n_mels][BLOCK]`, folded input `[pair][BLOCK]`, output
    /// `[n_mfcc][BLOCK]`.
    lanes: Vec<f32>,
    sums: Vec<f32>,
    diffs: Vec<f32>,
    coefs: Vec<f32>,
}

impl DctBlock {
    fn new(n_mels: usize, n_mfcc: usize) -> Self {
        Self {
            dct: Dct::new(n_mels, n_mfcc),
            arch: pulp::Arch::new(),
            lanes: vec![0.0; n_mels * BLOCK],
            sums: vec![0.0; n_mels.div_ceil(2) * BLOCK],
            diffs: vec![0.0; n_mels / 2 * BLOCK],
            coefs: vec![0.0; n_mfcc * BLOCK],
        }
    }

    /// `out` (`[count][n_mfcc]`) = the DCT of each row of `rows` (`[count][n_mels]`), for up to
    /// [`BLOCK`] rows.
    fn apply_rows(&mut self, rows: &[f32], out: &mut [f32]) {
        let arch = self.arch;
        arch.dispatch(DctJob {
            dct: self,
            rows,
            out,
        });
    }

    /// For a block stored frame-minor (`[n_mels][BLOCK]`, `count` frames): applies the floor,
    /// writes the MFCCs of the frames (`[count][n_mfcc]`) to `out`, and rewrites the block in
    /// place as `count` log-mel rows (`[count][n_mels]`, at the start of `block`).
    fn finish_lanes(
        &mut self,
        block: &mut [f32],
        count: usize,
        floor: Option<f32>,
        out: &mut [f32],
    ) {
        let arch = self.arch;
        arch.dispatch(LanesJob {
            dct: self,
            block,
            count,
            floor,
            out,
        });
    }

    #[inline(always)]
    fn finish_lanes_inner(
        &mut self,
        block: &mut [f32],
        count: usize,
        floor: Option<f32>,
        out: &mut [f32],
    ) {
        let (n_mels, n_mfcc) = (self.dct.n_mels, self.dct.n_mfcc);
        assert!(count <= BLOCK && block.len() == n_mels * BLOCK && out.len() == count * n_mfcc);
        if let Some(floor) = floor {
            clamp_below(block, floor);
        }
        self.dct
            .apply_block(block, &mut self.sums, &mut self.diffs, &mut self.coefs);
        let avx2 = avx2_token(self.arch);
        transpose_out(avx2, &self.coefs, n_mfcc, count, out);
        self.lanes.copy_from_slice(block);
        transpose_out(
            avx2,
            &self.lanes,
            n_mels,
            count,
            &mut block[..count * n_mels],
        );
    }

    #[inline(always)]
    fn apply_rows_inner(&mut self, rows: &[f32], out: &mut [f32]) {
        let (n_mels, n_mfcc) = (self.dct.n_mels, self.dct.n_mfcc);
        let count = rows.len() / n_mels;
        assert!(count <= BLOCK && out.len() == count * n_mfcc);
        let avx2 = avx2_token(self.arch);
        transpose_in(avx2, rows, n_mels, count, &mut self.lanes);
        self.dct.apply_block(
            &self.lanes,
            &mut self.sums,
            &mut self.diffs,
            &mut self.coefs,
        );
        transpose_out(avx2, &self.coefs, n_mfcc, count, out);
    }
}

/// Features of a clip, in memory: row-major `[frames, n_mels]` and `[frames, n_mfcc]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Number of frames.
    pub frames: usize,
    /// Log-mel spectrogram, dB.
    pub log_mel: Vec<f32>,
    /// MFCCs.
    pub mfcc: Vec<f32>,
}

/// The padded signal (`pad` zeros, `x`, zeros) between padded positions `[from, to)`.
fn padded_segment(x: &[f32], pad: usize, from: usize, to: usize) -> Zeroizing<Vec<f32>> {
    Zeroizing::new(
        (from..to)
            .map(|p| {
                p.checked_sub(pad)
                    .and_then(|i| x.get(i))
                    .copied()
                    .unwrap_or(0.0)
            })
            .collect(),
    )
}

/// Computes log-mel and MFCC for samples already at `params.sample_rate`.
///
/// Frames are read straight from `samples` (only the blocks that overlap the zero padding at
/// either end are copied) and processed [`BLOCK`] at a time, each block from the FFT to dB
/// while it is in the cache, and stored frame-minor. The `top_db` floor needs the maximum of the
/// whole clip, so the floor, the DCT and the turn of each block into rows follow in a second
/// pass (again a block at a time). Same values as [`write_safetensors`], bit for bit.
pub fn extract(samples: &[f32], params: &FeatureParams) -> Features {
    extract_with(samples, params, pulp::Arch::new())
}

/// [`extract`] with the block loops compiled for `arch`.
fn extract_with(samples: &[f32], params: &FeatureParams, arch: pulp::Arch) -> Features {
    let (n_fft, hop, n_mels, n_mfcc) = (
        params.n_fft,
        params.hop_length,
        params.n_mels,
        params.n_mfcc,
    );
    let n = samples.len();
    let frames = params.frames_for(n as u64) as usize;
    let pad = n_fft / 2;
    let mut front = Frontend::new(params);
    front.arch = arch;
    let blocks = frames.div_ceil(BLOCK);
    // Pass 1: log-mel (dB), stored frame-minor a whole block at a time (the last block's
    // unused lanes included), and the largest mel power.
    let mut log_mel = Vec::with_capacity(blocks * BLOCK * n_mels);
    let mut max_power = 0f32;
    for b in 0..blocks {
        let (t0, count) = (b * BLOCK, BLOCK.min(frames - b * BLOCK));
        // Frame t covers padded positions [t * hop, t * hop + n_fft): samples from t * hop - pad.
        let (from, to) = (t0 * hop, (t0 + count - 1) * hop + n_fft);
        let seg;
        let src = if from >= pad && to - pad <= n {
            &samples[from - pad..to - pad]
        } else {
            seg = padded_segment(samples, pad, from, to);
            &seg[..]
        };
        let (lanes, block_max) = front.process_block_lanes(src, hop, count);
        max_power = max_power.max(block_max);
        log_mel.extend_from_slice(lanes);
    }

    // Pass 2: the floor, the MFCCs, and each block turned into rows in place.
    let floor = top_db_floor(max_power, params);
    let mut dct = DctBlock::new(n_mels, n_mfcc);
    dct.arch = arch;
    let mut mfcc = vec![0f32; frames * n_mfcc];
    for (b, (block, out)) in log_mel
        .chunks_exact_mut(BLOCK * n_mels)
        .zip(mfcc.chunks_mut(BLOCK * n_mfcc))
        .enumerate()
    {
        let count = BLOCK.min(frames - b * BLOCK);
        dct.finish_lanes(block, count, floor, out);
    }
    // Only the last block can be short; its rows are in place, the rest is leftovers.
    log_mel.truncate(frames * n_mels);
    Features {
        frames,
        log_mel,
        mfcc,
    }
}

/// The `top_db` floor in dB, given the largest mel power of the whole clip.
fn top_db_floor(max_power: f32, params: &FeatureParams) -> Option<f32> {
    params.top_db.map(|t| {
        let mut m = [max_power];
        power_to_db_in_place(&mut m);
        m[0] - t as f32
    })
}

/// What [`write_safetensors`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSummary {
    /// Frames (rows of each tensor).
    pub frames: u64,
    /// Columns of `log_mel`.
    pub n_mels: usize,
    /// Columns of `mfcc`.
    pub n_mfcc: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// Streams the (unfloored) log-mel rows of a whole take, resampled to the feature rate, a
/// block of frames at a time.
fn for_each_block(
    src: &dyn PcmReplay,
    params: &FeatureParams,
    emit: &mut dyn FnMut(BlockOut<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut stream = FrameStream::new(params);
    resample::resample_stream(src, params.sample_rate, &mut |block| {
        stream.push(block, &mut *emit)
    })?;
    stream.finish(emit)
}

/// Writes the features of `src` as a safetensors file (`log_mel` `[frames, n_mels]` F32, `mfcc`
/// `[frames, n_mfcc]` F32, string metadata = `metadata` plus the parameters), streaming.
pub fn write_safetensors(
    src: &dyn PcmReplay,
    params: &FeatureParams,
    metadata: &BTreeMap<String, String>,
    out: &mut dyn Write,
) -> io::Result<FeatureSummary> {
    write_safetensors_with_progress(src, params, metadata, out, &mut |_| {})
}

/// [`write_safetensors`], calling `progress` with the frames processed so far over all three
/// passes (`3 * frames` in all).
pub fn write_safetensors_with_progress(
    src: &dyn PcmReplay,
    params: &FeatureParams,
    metadata: &BTreeMap<String, String>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> io::Result<FeatureSummary> {
    params
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let n = resample::output_len(src.len(), src.sample_rate(), params.sample_rate);
    // Takes of up to 10 minutes (38 MB at 16 kHz) are resampled once into a zeroized buffer
    // instead of once per pass (the resampler is most of a pass); longer ones stream, so memory
    // stays flat however long the take is.
    if src.sample_rate() != params.sample_rate && n <= 600 * params.sample_rate as u64 {
        let mut samples = Vec::with_capacity(n as usize); // exact: never reallocates plaintext
        resample::resample_stream(src, params.sample_rate, &mut |b| {
            samples.extend_from_slice(b);
            Ok(())
        })?;
        let pcm = crate::dsp::pcm::MemoryPcm::new(samples, params.sample_rate);
        return write_safetensors_with_progress(&pcm, params, metadata, out, progress);
    }
    let frames = params.frames_for(n);
    let (n_mels, n_mfcc) = (params.n_mels, params.n_mfcc);
    // Progress every 256 frames.
    let mut advance = |done: &mut u64, rows: usize| {
        let before = *done;
        *done += rows as u64;
        if *done / 256 != before / 256 {
            progress(*done);
        }
    };

    // Pass 1: the maximum mel power, for the top_db floor.
    let mut max_power = 0f32;
    let mut counted = 0u64;
    for_each_block(src, params, &mut |block| {
        max_power = max_power.max(block.max_power);
        advance(&mut counted, block.log_mel.len() / n_mels);
        Ok(())
    })?;
    if counted != frames {
        return Err(io::Error::other(format!(
            "expected {frames} frames, computed {counted}"
        )));
    }
    let floor = top_db_floor(max_power, params);

    let header = safetensors_header(frames, params, metadata)?;
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    let mut bytes = 8 + header.len() as u64;

    let mut buf = Zeroizing::new(Vec::<u8>::with_capacity(64 * 1024));
    let mut rows_db = vec![0f32; BLOCK * n_mels];
    let mut rows_mfcc = vec![0f32; BLOCK * n_mfcc];
    let mut dct = DctBlock::new(n_mels, n_mfcc);
    let mut done = frames;
    for pass in [Pass::LogMel, Pass::Mfcc] {
        for_each_block(src, params, &mut |block| {
            let count = block.log_mel.len() / n_mels;
            advance(&mut done, count);
            let db = &mut rows_db[..count * n_mels];
            db.copy_from_slice(block.log_mel);
            if let Some(floor) = floor {
                clamp_below(db, floor);
            }
            let values: &[f32] = match pass {
                Pass::LogMel => db,
                Pass::Mfcc => {
                    let mf = &mut rows_mfcc[..count * n_mfcc];
                    dct.apply_rows(db, mf);
                    mf
                }
            };
            for v in values {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            if buf.len() >= 60 * 1024 {
                out.write_all(&buf)?;
                bytes += buf.len() as u64;
                buf.clear();
            }
            Ok(())
        })?;
    }
    out.write_all(&buf)?;
    bytes += buf.len() as u64;
    progress(3 * frames);
    Ok(FeatureSummary {
        frames,
        n_mels: params.n_mels,
        n_mfcc: params.n_mfcc,
        bytes,
    })
}

#[derive(Clone, Copy)]
enum Pass {
    LogMel,
    Mfcc,
}

/// The JSON header of a safetensors file, padded with spaces to a multiple of 8 bytes.
fn safetensors_header(
    frames: u64,
    params: &FeatureParams,
    metadata: &BTreeMap<String, String>,
) -> io::Result<Vec<u8>> {
    let mel_bytes = frames * params.n_mels as u64 * 4;
    let mfcc_bytes = frames * params.n_mfcc as u64 * 4;
    let mut meta = params.metadata();
    meta.extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
    let header = serde_json::json!({
        "__metadata__": meta,
        "log_mel": {"dtype": "F32", "shape": [frames, params.n_mels], "data_offsets": [0, mel_bytes]},
        "mfcc": {"dtype": "F32", "shape": [frames, params.n_mfcc], "data_offsets": [mel_bytes, mel_bytes + mfcc_bytes]},
    });
    let mut bytes = serde_json::to_vec(&header).map_err(io::Error::other)?;
    while bytes.len() % 8 != 0 {
        bytes.push(b' ');
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::pcm::MemoryPcm;

    fn speech(rate: u32, secs: f32) -> Vec<f32> {
        use crate::capture::audio::{SyntheticKind, SyntheticSource};
        SyntheticSource::generate(SyntheticKind::Speech, rate, (secs * rate as f32) as usize)
    }

    #[test]
    fn fast_db_matches_log10() {
        let mut worst = 0f64;
        let mut x = 1e-12f32;
        while x < 1e6 {
            let mut v = [x];
            power_to_db_in_place(&mut v);
            let want = 10.0 * (x.max(AMIN) as f64).log10();
            worst = worst.max((v[0] as f64 - want).abs());
            x *= 1.0007;
        }
        assert!(worst < 2e-5, "max error {worst} dB");
    }

    #[test]
    fn mel_filters_match_librosa_shape() {
        let f = MelFilters::new(&FeatureParams::default());
        assert_eq!(f.starts.len(), 80);
        // Slaney norm: each triangle's area in Hz is ~1 (2/(f2-f0) * (f2-f0)/2).
        let hz_per_bin = 16_000.0 / 512.0;
        for m in [5, 40, 79] {
            let area: f32 = f.weights[f.offsets[m]..f.offsets[m + 1]]
                .iter()
                .sum::<f32>()
                * hz_per_bin;
            assert!((area - 1.0).abs() < 0.25, "band {m}: {area}");
        }
        assert!(f.starts.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn frame_count_and_shapes_follow_center_true() {
        let p = FeatureParams::default();
        for n in [0usize, 1, 159, 160, 300, 16_000] {
            let f = extract(&vec![0.01; n], &p);
            assert_eq!(f.frames, 1 + n / 160, "n={n}");
            assert_eq!(f.log_mel.len(), f.frames * 80);
            assert_eq!(f.mfcc.len(), f.frames * 13);
        }
    }

    #[test]
    fn a_tone_lights_up_its_mel_band() {
        let p = FeatureParams::default();
        let x: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let f = extract(&x, &p);
        let row = &f.log_mel[50 * 80..51 * 80];
        let peak = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(8000.0));
        let centre = mel_to_hz(lo + (hi - lo) * (peak + 1) as f64 / 81.0);
        assert!(
            (centre - 1000.0).abs() < 60.0,
            "peak band centre {centre} Hz"
        );
    }

    #[test]
    fn streaming_safetensors_equals_in_memory_and_loads_with_the_safetensors_crate() {
        let p = FeatureParams::default();
        let x = speech(16_000, 3.0);
        let want = extract(&x, &p);
        let pcm = MemoryPcm::new(x, 16_000);
        let mut meta = BTreeMap::new();
        meta.insert("sample_id".to_owned(), "sample-test".to_owned());
        let mut bytes = Vec::new();
        let summary = write_safetensors(&pcm, &p, &meta, &mut bytes).unwrap();
        assert_eq!(summary.bytes, bytes.len() as u64);
        assert_eq!(summary.frames, want.frames as u64);
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let lm = st.tensor("log_mel").unwrap();
        assert_eq!(lm.shape(), &[want.frames, 80]);
        let got: Vec<f32> = lm
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(got, want.log_mel);
        let mf = st.tensor("mfcc").unwrap();
        let got: Vec<f32> = mf
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(got, want.mfcc);
        let (_, md) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let md = md.metadata().clone().unwrap();
        assert_eq!(md["sample_id"], "sample-test");
        assert_eq!(md["n_mels"], "80");
    }

    #[test]
    fn other_rates_are_resampled_first() {
        let p = FeatureParams::default();
        let x = speech(48_000, 1.0);
        let pcm = MemoryPcm::new(x.clone(), 48_000);
        let mut bytes = Vec::new();
        let s = write_safetensors(&pcm, &p, &BTreeMap::new(), &mut bytes).unwrap();
        assert_eq!(s.frames, 101);
        let y = resample::resample_all(&x, 48_000, 16_000).unwrap();
        let want = extract(&y, &p);
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let got: Vec<f32> = st
            .tensor("mfcc")
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(got, want.mfcc);
    }

    /// librosa's pipeline written out plainly in f64 (direct DFT, dense DCT), for checking the
    /// fast paths on parameters the librosa fixtures do not cover.
    fn naive_reference(x: &[f32], p: &FeatureParams) -> (Vec<f64>, Vec<f64>) {
        use std::f64::consts::PI;
        let (n, hop, pad) = (p.n_fft, p.hop_length, p.n_fft / 2);
        let frames = p.frames_for(x.len() as u64) as usize;
        let off = (n - p.win_length) / 2;
        let win: Vec<f64> = (0..n)
            .map(|i| match i.checked_sub(off) {
                Some(j) if j < p.win_length => {
                    0.5 - 0.5 * (2.0 * PI * j as f64 / p.win_length as f64).cos()
                }
                _ => 0.0,
            })
            .collect();
        let (cos, sin): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|i| {
                let a = -2.0 * PI * i as f64 / n as f64;
                (a.cos(), a.sin())
            })
            .unzip();
        let f = MelFilters::new(p);
        let mut log_mel = Vec::new();
        for t in 0..frames {
            let frame: Vec<f64> = (0..n)
                .map(|i| {
                    let s = (t * hop + i).checked_sub(pad).and_then(|s| x.get(s));
                    s.map_or(0.0, |&v| v as f64) * win[i]
                })
                .collect();
            let power: Vec<f64> = (0..=n / 2)
                .map(|k| {
                    let (mut re, mut im) = (0.0, 0.0);
                    for (i, &v) in frame.iter().enumerate() {
                        re += v * cos[k * i % n];
                        im += v * sin[k * i % n];
                    }
                    re * re + im * im
                })
                .collect();
            for m in 0..p.n_mels {
                let w = &f.weights[f.offsets[m]..f.offsets[m + 1]];
                let e: f64 = w
                    .iter()
                    .zip(&power[f.starts[m]..])
                    .map(|(&w, &p)| w as f64 * p)
                    .sum();
                log_mel.push(10.0 * e.max(1e-10).log10());
            }
        }
        if let Some(t) = p.top_db {
            let floor = log_mel.iter().copied().fold(f64::MIN, f64::max) - t;
            log_mel.iter_mut().for_each(|v| *v = v.max(floor));
        }
        let mut mfcc = Vec::new();
        for row in log_mel.chunks(p.n_mels) {
            for k in 0..p.n_mfcc {
                let scale = if k == 0 { 1.0 } else { 2.0 } / p.n_mels as f64;
                let s: f64 = row
                    .iter()
                    .enumerate()
                    .map(|(m, &v)| {
                        v * (PI * k as f64 * (2 * m + 1) as f64 / (2 * p.n_mels) as f64).cos()
                    })
                    .sum();
                mfcc.push(scale.sqrt() * s);
            }
        }
        (log_mel, mfcc)
    }

    #[test]
    fn unusual_parameters_match_a_plain_reference_and_stream_identically() {
        let x = speech(16_000, 0.8);
        let cases = [
            // Odd n_fft (realfft path), odd n_mels (DCT middle value), every coefficient.
            FeatureParams {
                n_fft: 401,
                win_length: 301,
                hop_length: 97,
                n_mels: 41,
                n_mfcc: 41,
                fmin: 50.0,
                fmax: 7_000.0,
                top_db: Some(60.0),
                ..Default::default()
            },
            // n_fft/2 odd: no self-paired bin in the packed split; no top_db floor.
            FeatureParams {
                n_fft: 510,
                n_mels: 64,
                n_mfcc: 20,
                top_db: None,
                ..Default::default()
            },
            // Tiny frames: the split's scalar tail only; window offset not a multiple of 4.
            FeatureParams {
                n_fft: 64,
                win_length: 42,
                hop_length: 16,
                n_mels: 10,
                n_mfcc: 3,
                ..Default::default()
            },
            FeatureParams::default(),
        ];
        for p in cases {
            p.validate().unwrap();
            let ours = extract(&x, &p);
            let (mel_ref, mfcc_ref) = naive_reference(&x, &p);
            assert_eq!(ours.log_mel.len(), mel_ref.len(), "{p:?}");
            assert_eq!(ours.mfcc.len(), mfcc_ref.len(), "{p:?}");
            let (mut near, mut all) = (0f64, 0f64);
            for (row, row_ref) in ours.log_mel.chunks(p.n_mels).zip(mel_ref.chunks(p.n_mels)) {
                let top = row_ref.iter().copied().fold(f64::MIN, f64::max);
                for (&a, &b) in row.iter().zip(row_ref) {
                    let d = (a as f64 - b).abs();
                    all = all.max(d);
                    if b > top - 60.0 {
                        near = near.max(d);
                    }
                }
            }
            let mf = ours
                .mfcc
                .iter()
                .zip(&mfcc_ref)
                .map(|(&a, &b)| (a as f64 - b).abs())
                .fold(0f64, f64::max);
            assert!(
                near < 1e-3 && all < 5e-3 && mf < 2e-3,
                "{p:?}: {near} {all} {mf}"
            );

            let mut bytes = Vec::new();
            let pcm = MemoryPcm::new(x.clone(), 16_000);
            write_safetensors(&pcm, &p, &BTreeMap::new(), &mut bytes).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            for (name, want) in [("log_mel", &ours.log_mel), ("mfcc", &ours.mfcc)] {
                let got: Vec<f32> = st
                    .tensor(name)
                    .unwrap()
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect();
                assert_eq!(&got, want, "{name} {p:?}");
            }
        }
    }

    #[test]
    fn blocks_under_the_floor_and_above_it_match_the_streaming_path() {
        // Digital silence (floored to max - top_db) between loud speech: some blocks are
        // clamped in the second pass, some are not, and one straddles the boundary.
        let p = FeatureParams::default();
        let mut x = speech(16_000, 1.0);
        x.extend(std::iter::repeat_n(0.0, 5_000));
        x.extend(speech(16_000, 0.7).iter().map(|s| s * 0.001));
        x.extend(std::iter::repeat_n(0.0, 7_777));
        x.extend(speech(16_000, 0.5));
        let want = extract(&x, &p);
        let floor = want.log_mel.iter().fold(f32::INFINITY, |a, &b| a.min(b));
        let max = want
            .log_mel
            .iter()
            .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        assert!((max - floor - 80.0).abs() < 1e-3, "the floor is in use");
        let floored_rows = want
            .log_mel
            .chunks_exact(p.n_mels)
            .filter(|r| r.contains(&floor))
            .count();
        assert!(floored_rows > BLOCK && floored_rows < want.frames - BLOCK);
        let pcm = MemoryPcm::new(x.clone(), 16_000);
        let mut bytes = Vec::new();
        write_safetensors(&pcm, &p, &BTreeMap::new(), &mut bytes).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let floats = |name: &str| -> Vec<f32> {
            st.tensor(name)
                .unwrap()
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        };
        assert_eq!(floats("log_mel"), want.log_mel);
        assert_eq!(floats("mfcc"), want.mfcc);
        assert_eq!(extract_with(&x, &p, pulp::Arch::Scalar), want);
        // Without the floor nothing is clamped.
        let p = FeatureParams { top_db: None, ..p };
        let raw = extract(&x, &p);
        assert!(raw.log_mel.iter().any(|&v| v < floor));
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        // The dispatched loops (AVX2 where the CPU has it) and the baseline ones must agree
        // exactly: no fused multiply-adds, no reordered sums.
        let x = speech(16_000, 2.0);
        let p = FeatureParams::default();
        let best = extract_with(&x, &p, pulp::Arch::new());
        let baseline = extract_with(&x, &p, pulp::Arch::Scalar);
        assert_eq!(best, baseline);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let p = FeatureParams {
            n_mfcc: 100,
            ..Default::default()
        };
        assert!(p.validate().unwrap_err().contains("n_mfcc"));
        let pcm = MemoryPcm::new(vec![0.0; 100], 16_000);
        assert!(write_safetensors(&pcm, &p, &BTreeMap::new(), &mut Vec::new()).is_err());
    }
}
