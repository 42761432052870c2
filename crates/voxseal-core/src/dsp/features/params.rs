//! The feature parameters and their checks.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
pub(super) const AMIN: f32 = 1e-10;

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
