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

mod dct;
mod mel;
mod params;
mod safetensors;
mod simd;
mod stft;
mod stream;
#[cfg(test)]
mod tests;

pub use params::FeatureParams;
pub use safetensors::{write_safetensors, write_safetensors_with_progress};
pub use stream::{FeatureSummary, Features, extract};
