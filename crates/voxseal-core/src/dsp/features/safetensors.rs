//! Streaming the features of a take of any length into a safetensors file.

use super::dct::*;
use super::mel::*;
use super::params::*;
use super::stft::*;
use super::stream::*;
use crate::dsp::pcm::PcmReplay;
use crate::dsp::resample;
use std::collections::BTreeMap;
use std::io::{self, Write};
use zeroize::Zeroizing;

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
pub(super) enum Pass {
    LogMel,
    Mfcc,
}

/// The JSON header of a safetensors file, padded with spaces to a multiple of 8 bytes.
pub(super) fn safetensors_header(
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
