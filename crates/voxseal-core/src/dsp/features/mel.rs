//! The Slaney mel scale and filterbank, and power to decibels.

use super::params::*;
use super::stft::*;

pub(super) fn hz_to_mel(f: f64) -> f64 {
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

pub(super) fn mel_to_hz(m: f64) -> f64 {
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
pub(super) struct MelFilters {
    pub(super) starts: Vec<usize>,
    pub(super) offsets: Vec<usize>,
    pub(super) weights: Vec<f32>,
}

impl MelFilters {
    /// librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney").
    pub(super) fn new(p: &FeatureParams) -> Self {
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
    pub(super) fn scaled(mut self, s: f32) -> Self {
        for w in &mut self.weights {
            *w *= s;
        }
        self
    }

    /// Mel powers of a block, frame-minor: `power` is `[bin][BLOCK]`, `mel` is `[band][BLOCK]`.
    /// Every lane (frame) sees the same operations in the same order.
    #[inline(always)]
    pub(super) fn apply_block(&self, power: &[f32], mel: &mut [f32]) {
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

/// `10 log10(max(amin, x))` for every value, fast and accurate to ~1e-6 dB.
///
/// `ln x = e ln 2 + ln m` with `m` in `[sqrt(1/2), sqrt(2))` and `ln m = 2 atanh(s)`,
/// `s = (m-1)/(m+1)`, `|s| < 0.172`, summed to `s^9`: truncation error below 1e-9, so the result
/// is as good as `f32` allows. Branch-free so the compiler vectorizes it.
#[inline(always)]
pub(super) fn power_to_db_in_place(v: &mut [f32]) {
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
pub(super) fn clamp_below(v: &mut [f32], floor: f32) {
    for x in v {
        *x = x.max(floor);
    }
}
