//! Framing, windowing and the FFT of blocks of frames into log-mel rows (the front end).

use super::mel::*;
use super::params::*;
use super::simd::*;
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// Frames processed together, frame-minor ("lanes"): every per-frame loop below runs over
/// `BLOCK` frames at once, so it vectorizes whatever the band widths; the buffers stay in cache.
pub(super) const BLOCK: usize = 16;

/// The real FFT of each frame, reduced to its power spectrum.
pub(super) enum Spectrum {
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
pub(super) struct SecretComplex(Vec<Complex<f32>>);

impl Drop for SecretComplex {
    fn drop(&mut self) {
        for c in &mut self.0 {
            c.re.zeroize();
            c.im.zeroize();
        }
    }
}

/// What [`Frontend::process_block`] computed for a block of frames.
pub(super) struct BlockOut<'a> {
    /// `[count][n_mels]` log-mel in dB, row-major, before the `top_db` floor.
    pub(super) log_mel: &'a [f32],
    /// The largest mel power in the block (before dB).
    pub(super) max_power: f32,
}

/// Turns blocks of frames into log-mel rows: window, real FFT, |X|^2, mel filterbank, dB.
pub(super) struct Frontend {
    /// The instruction set the block loops are compiled for, detected at run time (see
    /// [`pulp::Arch`]): AVX2 where the CPU has it, else the baseline (SSE2 on x86-64). The
    /// results are the same bit for bit: no fused multiply-adds, no reordered sums.
    pub(super) arch: pulp::Arch,
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

impl Frontend {
    pub(super) fn new(p: &FeatureParams) -> Self {
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
    pub(super) fn process_block(&mut self, src: &[f32], hop: usize, count: usize) -> BlockOut<'_> {
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
    pub(super) fn process_block_lanes(
        &mut self,
        src: &[f32],
        hop: usize,
        count: usize,
    ) -> (&[f32], f32) {
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
    pub(super) fn compute_block(
        &mut self,
        src: &[f32],
        hop: usize,
        count: usize,
        to_rows: bool,
    ) -> f32 {
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
    pub(super) fn power_spectra(&mut self, src: &[f32], hop: usize, count: usize) {
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
pub(super) struct BlockJob<'a> {
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

/// `z[i] = (x[2i] w[2i], x[2i+1] w[2i+1])`, four complex values at a time.
#[inline(always)]
pub(super) fn window_packed(x: &[f32], w: &[f32], z: &mut [Complex<f32>]) {
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
pub(super) fn packed_power(z: &[Complex<f32>], tw_re: &[f32], tw_im: &[f32], power: &mut [f32]) {
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
pub(super) fn power_unpaired(z: &[Complex<f32>], power: &mut [f32]) {
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
pub(super) fn power_pairs_from(
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

/// `(4|X[k]|^2, 4|X[m-k]|^2)` from `A = Z[k]`, `Z[m-k]` and `W^k = c + i s`.
#[inline(always)]
pub(super) fn split_pair(ar: f32, ai: f32, zr: f32, zi: f32, c: f32, s: f32) -> (f32, f32) {
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
pub(super) const LANES: usize = 8;
