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

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::pcm::PcmReplay;
use crate::resample;

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

    fn apply(&self, power: &[f32], out: &mut [f32]) {
        for (m, o) in out.iter_mut().enumerate() {
            let w = &self.weights[self.offsets[m]..self.offsets[m + 1]];
            let p = &power[self.starts[m]..self.starts[m] + w.len()];
            // Four partial sums let the compiler keep several multiply-adds in flight.
            let mut acc = [0f32; 4];
            let mut wc = w.chunks_exact(4);
            let mut pc = p.chunks_exact(4);
            for (w4, p4) in (&mut wc).zip(&mut pc) {
                for j in 0..4 {
                    acc[j] += w4[j] * p4[j];
                }
            }
            let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
            for (a, b) in wc.remainder().iter().zip(pc.remainder()) {
                s += a * b;
            }
            *o = s;
        }
    }
}

/// Turns frames of audio into mel power rows: window, real FFT, |X|^2, mel filterbank.
struct MelFrontend {
    fft: Arc<dyn RealToComplex<f32>>,
    /// The Hann window's non-zero part and where it starts in the frame.
    window: Vec<f32>,
    win_offset: usize,
    input: Zeroizing<Vec<f32>>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
    filters: MelFilters,
}

impl MelFrontend {
    fn new(p: &FeatureParams) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(p.n_fft);
        // scipy.signal.get_window("hann", win_length, fftbins=True): periodic Hann.
        let window = (0..p.win_length)
            .map(|i| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / p.win_length as f64).cos())
                    as f32
            })
            .collect();
        Self {
            input: Zeroizing::new(fft.make_input_vec()),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            power: vec![0.0; p.n_fft / 2 + 1],
            window,
            win_offset: (p.n_fft - p.win_length) / 2,
            fft,
            filters: MelFilters::new(p),
        }
    }

    /// `frame` has `n_fft` samples; writes `n_mels` mel powers.
    fn process(&mut self, frame: &[f32], mel: &mut [f32]) {
        let (o, w) = (self.win_offset, self.window.len());
        self.input[..o].fill(0.0);
        self.input[o + w..].fill(0.0);
        for ((x, &s), &h) in self.input[o..o + w]
            .iter_mut()
            .zip(&frame[o..o + w])
            .zip(&self.window)
        {
            *x = s * h;
        }
        self.fft
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .expect("buffers are sized by the plan");
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.re * c.re + c.im * c.im;
        }
        self.filters.apply(&self.power, mel);
    }
}

/// Frames a stream of samples the way librosa does with `center=True, pad_mode="constant"`.
struct MelStream {
    front: MelFrontend,
    n_fft: usize,
    hop: usize,
    buf: Zeroizing<Vec<f32>>,
    pos: usize,
    row: Vec<f32>,
}

impl MelStream {
    fn new(p: &FeatureParams) -> Self {
        let mut buf = Zeroizing::new(Vec::with_capacity(1 << 17));
        buf.resize(p.n_fft / 2, 0.0);
        Self {
            front: MelFrontend::new(p),
            n_fft: p.n_fft,
            hop: p.hop_length,
            buf,
            pos: 0,
            row: vec![0.0; p.n_mels],
        }
    }

    fn push(
        &mut self,
        samples: &[f32],
        emit: &mut dyn FnMut(&[f32]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.buf.extend_from_slice(samples);
        self.drain(emit)
    }

    fn drain(&mut self, emit: &mut dyn FnMut(&[f32]) -> io::Result<()>) -> io::Result<()> {
        while self.pos + self.n_fft <= self.buf.len() {
            self.front
                .process(&self.buf[self.pos..self.pos + self.n_fft], &mut self.row);
            emit(&self.row)?;
            self.pos += self.hop;
        }
        if self.pos >= 1 << 16 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        Ok(())
    }

    fn finish(mut self, emit: &mut dyn FnMut(&[f32]) -> io::Result<()>) -> io::Result<()> {
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

/// Orthonormal DCT-II rows, stored coefficient-major per mel band so that each band adds a
/// scaled row into all coefficients at once (vectorizes without reassociating sums).
struct Dct {
    n_mfcc: usize,
    stride: usize,
    basis: Vec<f32>,
}

impl Dct {
    fn new(n_mels: usize, n_mfcc: usize) -> Self {
        let stride = n_mfcc.next_multiple_of(8);
        let mut basis = vec![0f32; n_mels * stride];
        for m in 0..n_mels {
            for k in 0..n_mfcc {
                let scale = if k == 0 {
                    (1.0 / n_mels as f64).sqrt()
                } else {
                    (2.0 / n_mels as f64).sqrt()
                };
                let c = (std::f64::consts::PI * k as f64 * (2 * m + 1) as f64
                    / (2 * n_mels) as f64)
                    .cos();
                basis[m * stride + k] = (scale * c) as f32;
            }
        }
        Self {
            n_mfcc,
            stride,
            basis,
        }
    }

    fn apply(&self, log_mel: &[f32], out: &mut [f32]) {
        let mut acc = [0f32; 64];
        let acc = &mut acc[..self.stride];
        for (&x, row) in log_mel.iter().zip(self.basis.chunks_exact(self.stride)) {
            for (a, &b) in acc.iter_mut().zip(row) {
                *a += x * b;
            }
        }
        out.copy_from_slice(&acc[..self.n_mfcc]);
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

/// Computes log-mel and MFCC for samples already at `params.sample_rate`.
pub fn extract(samples: &[f32], params: &FeatureParams) -> Features {
    let mut stream = MelStream::new(params);
    let frames = params.frames_for(samples.len() as u64) as usize;
    let mut log_mel = Vec::with_capacity(frames * params.n_mels);
    let mut collect = |row: &[f32]| {
        log_mel.extend_from_slice(row);
        Ok(())
    };
    stream
        .push(samples, &mut collect)
        .expect("collecting cannot fail");
    stream.finish(&mut collect).expect("collecting cannot fail");
    power_to_db_in_place(&mut log_mel);
    if let Some(top_db) = params.top_db {
        let floor = log_mel.iter().copied().fold(f32::NEG_INFINITY, f32::max) - top_db as f32;
        for x in &mut log_mel {
            *x = x.max(floor);
        }
    }
    let dct = Dct::new(params.n_mels, params.n_mfcc);
    let mut mfcc = vec![0f32; frames * params.n_mfcc];
    for (row, out) in log_mel
        .chunks_exact(params.n_mels)
        .zip(mfcc.chunks_exact_mut(params.n_mfcc))
    {
        dct.apply(row, out);
    }
    Features {
        frames,
        log_mel,
        mfcc,
    }
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

/// Streams mel power rows for a whole take, resampled to the feature rate.
fn for_each_mel_row(
    src: &dyn PcmReplay,
    params: &FeatureParams,
    emit: &mut dyn FnMut(&[f32]) -> io::Result<()>,
) -> io::Result<()> {
    let mut stream = MelStream::new(params);
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
    let frames = params.frames_for(n);

    // Pass 1: the maximum mel power, for the top_db floor.
    let mut max_power = 0f32;
    let mut counted = 0u64;
    for_each_mel_row(src, params, &mut |row| {
        max_power = row.iter().copied().fold(max_power, f32::max);
        counted += 1;
        if counted.is_multiple_of(256) {
            progress(counted);
        }
        Ok(())
    })?;
    if counted != frames {
        return Err(io::Error::other(format!(
            "expected {frames} frames, computed {counted}"
        )));
    }
    let floor = params.top_db.map(|t| {
        let mut m = [max_power];
        power_to_db_in_place(&mut m);
        m[0] - t as f32
    });

    let header = safetensors_header(frames, params, metadata)?;
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    let mut bytes = 8 + header.len() as u64;

    let mut buf = Zeroizing::new(Vec::<u8>::with_capacity(64 * 1024));
    let mut row_db = vec![0f32; params.n_mels];
    let mut row_mfcc = vec![0f32; params.n_mfcc];
    let dct = Dct::new(params.n_mels, params.n_mfcc);
    let mut done = frames;
    for pass in [Pass::LogMel, Pass::Mfcc] {
        for_each_mel_row(src, params, &mut |row| {
            done += 1;
            if done.is_multiple_of(256) {
                progress(done);
            }
            row_db.copy_from_slice(row);
            power_to_db_in_place(&mut row_db);
            if let Some(floor) = floor {
                for x in &mut row_db {
                    *x = x.max(floor);
                }
            }
            let values: &[f32] = match pass {
                Pass::LogMel => &row_db,
                Pass::Mfcc => {
                    dct.apply(&row_db, &mut row_mfcc);
                    &row_mfcc
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
    use crate::pcm::MemoryPcm;

    fn speech(rate: u32, secs: f32) -> Vec<f32> {
        use crate::audio::{SyntheticKind, SyntheticSource};
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
