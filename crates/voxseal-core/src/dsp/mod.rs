//! Signal processing: streamed mono PCM, resampling, features (log-mel, MFCC) and the quality
//! checks of a take.

pub mod features;
pub mod pcm;
pub mod quality;
pub mod resample;
