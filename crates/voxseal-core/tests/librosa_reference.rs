//! Our features against librosa's, on committed fixtures made by
//! `tests/fixtures/features/make_reference.py` (librosa in float64 from the same 16-bit WAVs).
//!
//! Tolerance: we compute in `f32`. The power spectrum's rounding error is relative to the frame's
//! energy, not to each bin, so bins far below the loudest bin of their frame carry the largest
//! error in dB. We therefore bound (a) the error of log-mel values within 60 dB of their frame's
//! maximum tightly, (b) every log-mel value loosely, and (c) MFCCs (which average over all bands).
//! The measured maxima are printed (`cargo test -- --nocapture`) and recorded in
//! docs/performance.md.

use std::path::PathBuf;

use voxseal_core::dsp::features::{FeatureParams, extract};
use voxseal_core::sealing::wav::WavInput;

fn fixtures() -> PathBuf {
    voxseal_testkit::repo_root().join("tests/fixtures/features")
}

fn read_wav(name: &str) -> Vec<f32> {
    let mut r = WavInput::open(&fixtures().join(name)).unwrap();
    assert_eq!(r.sample_rate(), 16_000);
    let mut out = Vec::new();
    let mut buf = [0f32; 4096];
    loop {
        let n = r.read_mono(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn tensor(bytes: &[u8], name: &str) -> (Vec<usize>, Vec<f32>) {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let t = st.tensor(name).unwrap();
    let v = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), v)
}

#[test]
fn features_match_librosa_on_every_fixture() {
    let p = FeatureParams::default();
    for name in ["speechlike", "tone_noise", "short", "tiny"] {
        let x = read_wav(&format!("{name}.wav"));
        let ours = extract(&x, &p);
        let bytes = std::fs::read(fixtures().join(format!("{name}.ref.safetensors"))).unwrap();
        let (mel_shape, mel_ref) = tensor(&bytes, "log_mel");
        let (mfcc_shape, mfcc_ref) = tensor(&bytes, "mfcc");
        assert_eq!(mel_shape, vec![ours.frames, 80], "{name}");
        assert_eq!(mfcc_shape, vec![ours.frames, 13], "{name}");

        let mut max_all = 0f32;
        let mut max_near = 0f32;
        for (row_ours, row_ref) in ours.log_mel.chunks(80).zip(mel_ref.chunks(80)) {
            let row_max = row_ref.iter().copied().fold(f32::MIN, f32::max);
            for (a, b) in row_ours.iter().zip(row_ref) {
                let d = (a - b).abs();
                max_all = max_all.max(d);
                if *b > row_max - 60.0 {
                    max_near = max_near.max(d);
                }
            }
        }
        let max_mfcc = ours
            .mfcc
            .iter()
            .zip(&mfcc_ref)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        println!(
            "{name}: log-mel max |diff| {max_all:.2e} dB (within 60 dB of frame max: {max_near:.2e}), MFCC {max_mfcc:.2e}"
        );
        assert!(
            max_near < 1e-3,
            "{name}: log-mel near frame max differs by {max_near} dB"
        );
        assert!(max_all < 5e-3, "{name}: log-mel differs by {max_all} dB");
        assert!(max_mfcc < 1e-3, "{name}: MFCC differs by {max_mfcc}");
    }
}
