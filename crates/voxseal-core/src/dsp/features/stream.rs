//! Frames of a take streamed block by block, and extraction of features from audio in memory.

use super::dct::*;
use super::mel::*;
use super::params::*;
use super::stft::*;
use crate::dsp::pcm::PcmReplay;
use crate::dsp::resample;
use serde::{Deserialize, Serialize};
use std::io::{self};
use zeroize::Zeroizing;

/// Frames a stream of samples the way librosa does with `center=True, pad_mode="constant"`,
/// emitting the features of a block of frames at a time.
pub(super) struct FrameStream {
    front: Frontend,
    n_fft: usize,
    hop: usize,
    buf: Zeroizing<Vec<f32>>,
    pos: usize,
}

impl FrameStream {
    pub(super) fn new(p: &FeatureParams) -> Self {
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

    pub(super) fn push(
        &mut self,
        samples: &[f32],
        emit: &mut dyn FnMut(BlockOut<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.buf.extend_from_slice(samples);
        self.drain(emit)
    }

    pub(super) fn drain(
        &mut self,
        emit: &mut dyn FnMut(BlockOut<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
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

    pub(super) fn finish(
        mut self,
        emit: &mut dyn FnMut(BlockOut<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        let pad = self.n_fft / 2;
        self.buf.extend(std::iter::repeat_n(0.0, pad));
        self.drain(emit)
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
pub(super) fn padded_segment(x: &[f32], pad: usize, from: usize, to: usize) -> Zeroizing<Vec<f32>> {
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
pub(super) fn extract_with(samples: &[f32], params: &FeatureParams, arch: pulp::Arch) -> Features {
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
pub(super) fn top_db_floor(max_power: f32, params: &FeatureParams) -> Option<f32> {
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
pub(super) fn for_each_block(
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
