use super::mel::*;
use super::params::*;
use super::safetensors::*;
use super::stft::*;
use super::stream::*;

use std::collections::BTreeMap;

use crate::dsp::pcm::MemoryPcm;
use crate::dsp::resample;

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
    let st = ::safetensors::SafeTensors::deserialize(&bytes).unwrap();
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
    let (_, md) = ::safetensors::SafeTensors::read_metadata(&bytes).unwrap();
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
    let st = ::safetensors::SafeTensors::deserialize(&bytes).unwrap();
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
        let st = ::safetensors::SafeTensors::deserialize(&bytes).unwrap();
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
    let st = ::safetensors::SafeTensors::deserialize(&bytes).unwrap();
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
