//! Times [`voxseal_core::dsp::features::extract`] (log-mel + MFCC) on a mono or stereo WAV file; at
//! rates other than 16 kHz, resampling to 16 kHz ([`voxseal_core::dsp::resample::resample_all`]) is
//! timed with it.
//!
//! ```text
//! cargo run --release -p voxseal-core --example feature_timing -- speech.wav [RUNS]
//! ```
//!
//! The file is read into memory first (not timed); then the work runs once to warm up and
//! `RUNS` (default 5) more times, each timed. Prints one JSON line:
//! `{"median_s": .., "runs": [..], "frames": .., "samples": .., "audio_s": ..}`, plus
//! `"rate"` and `"resample_median_s"` (resampling alone) when the file is not 16 kHz.
//! Compute time only; single-threaded (pin it with `taskset -c 0` to be sure).

use std::error::Error;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use voxseal_core::dsp::features::{FeatureParams, Features, extract};
use voxseal_core::dsp::resample::resample_all;
use voxseal_core::sealing::wav::WavInput;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: feature_timing FILE.wav [RUNS]")?);
    let runs: usize = match args.next() {
        Some(r) => r.to_str().ok_or("RUNS must be a number")?.parse()?,
        None => 5,
    };
    if runs == 0 {
        return Err("RUNS must be at least 1".into());
    }
    let params = FeatureParams::default();
    let mut wav = WavInput::open(&path)?;
    let rate = wav.sample_rate();
    let mut samples = Vec::with_capacity(wav.frames() as usize);
    let mut buf = vec![0f32; 1 << 16];
    loop {
        let n = wav.read_mono(&mut buf)?;
        if n == 0 {
            break;
        }
        samples.extend_from_slice(&buf[..n]);
    }

    let features = |x: &[f32]| -> Result<Features, std::io::Error> {
        if rate == params.sample_rate {
            return Ok(extract(x, &params));
        }
        Ok(extract(
            &resample_all(x, rate, params.sample_rate)?,
            &params,
        ))
    };
    let warm = features(black_box(&samples))?;
    let frames = warm.frames;
    drop(black_box(warm));
    let mut times = Vec::with_capacity(runs);
    let mut resample_times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let f = features(black_box(&samples))?;
        let dt = t.elapsed().as_secs_f64();
        black_box(&f);
        assert_eq!(f.frames, frames);
        times.push(dt);
        if rate != params.sample_rate {
            let t = Instant::now();
            black_box(resample_all(black_box(&samples), rate, params.sample_rate)?);
            resample_times.push(t.elapsed().as_secs_f64());
        }
    }
    let mut out = serde_json::json!({
        "median_s": median(&times),
        "runs": times,
        "frames": frames,
        "samples": samples.len(),
        "audio_s": samples.len() as f64 / rate as f64,
    });
    if rate != params.sample_rate {
        out["rate"] = rate.into();
        out["resample_median_s"] = median(&resample_times).into();
    }
    println!("{out}");
    Ok(())
}

fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}
