//! Times [`voxseal_core::features::extract`] (log-mel + MFCC) on a 16 kHz mono WAV file.
//!
//! ```text
//! cargo run --release -p voxseal-core --example feature_timing -- speech.wav [RUNS]
//! ```
//!
//! The file is read into memory first (not timed); then `extract` runs once to warm up and
//! `RUNS` (default 5) more times, each timed. Prints one JSON line:
//! `{"median_s": .., "runs": [..], "frames": .., "samples": .., "audio_s": ..}`.
//! Compute time only; single-threaded (pin it with `taskset -c 0` to be sure).

use std::error::Error;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use voxseal_core::features::{FeatureParams, extract};
use voxseal_core::wav::WavInput;

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
    if wav.sample_rate() != params.sample_rate {
        return Err(format!(
            "{} is {} Hz; this tool times extraction at {} Hz only",
            path.display(),
            wav.sample_rate(),
            params.sample_rate
        )
        .into());
    }
    let mut samples = Vec::with_capacity(wav.frames() as usize);
    let mut buf = vec![0f32; 1 << 16];
    loop {
        let n = wav.read_mono(&mut buf)?;
        if n == 0 {
            break;
        }
        samples.extend_from_slice(&buf[..n]);
    }

    let warm = extract(black_box(&samples), &params);
    let frames = warm.frames;
    drop(black_box(warm));
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let f = extract(black_box(&samples), &params);
        let dt = t.elapsed().as_secs_f64();
        black_box(&f);
        assert_eq!(f.frames, frames);
        times.push(dt);
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = if runs % 2 == 1 {
        sorted[runs / 2]
    } else {
        (sorted[runs / 2 - 1] + sorted[runs / 2]) / 2.0
    };
    let out = serde_json::json!({
        "median_s": median,
        "runs": times,
        "frames": frames,
        "samples": samples.len(),
        "audio_s": samples.len() as f64 / params.sample_rate as f64,
    });
    println!("{out}");
    Ok(())
}
