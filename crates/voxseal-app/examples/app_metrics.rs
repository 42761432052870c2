//! Measures the desktop app's logic the way the app runs it (local mode, real recorder thread,
//! sealing, upload worker): memory idle and while recording, CPU while recording, and the time
//! from Stop to sealed for a 10 s take. Prints one JSON object.
//!
//! ```text
//! eval "$(scripts/pulse.sh)"      # a microphone (or VOXSEAL_SOURCE=synthetic:speech)
//! cargo run --release -p voxseal-app --example app_metrics
//! ```

use std::time::{Duration, Instant};

use voxseal_app::{App, AppOptions};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of this process (all threads).
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0 // utime, stime (fields 14 and 15 of /proc/pid/stat); USER_HZ = 100
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = AppOptions::new(dir.path().to_owned(), Box::new(|_| {}));
    opts.demo = true;
    let app = App::start(opts, rt.handle().clone()).unwrap();
    let code = app.state().unwrap().demo_code.unwrap();
    app.enroll(&code, false).unwrap();
    app.give_consent().unwrap();
    app.start_meter(Box::new(|_| {})).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let rss_idle = rss_kib();

    // CPU while recording: 20 s of a take, sampled between 5 s and 20 s (after start-up work).
    app.stop_meter();
    app.start_take("p001", Box::new(|_| {})).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let (c0, t0) = (cpu_s(), Instant::now());
    let mut rss_rec_max = 0;
    while t0.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(500));
        rss_rec_max = rss_rec_max.max(rss_kib());
    }
    let cpu_pct = 100.0 * (cpu_s() - c0) / t0.elapsed().as_secs_f64();
    let _ = app.stop_take().unwrap();
    app.discard_take().unwrap();

    // Stop to sealed, 10 s take: stop_take (includes the 500 ms post-roll by design) + accept_take.
    app.start_take("p002", Box::new(|_| {})).unwrap();
    std::thread::sleep(Duration::from_secs(10));
    let t_stop = Instant::now();
    let review = app.stop_take().unwrap();
    let stop_ms = t_stop.elapsed().as_secs_f64() * 1000.0;
    let t_accept = Instant::now();
    app.accept_take(true).unwrap();
    let seal_ms = t_accept.elapsed().as_secs_f64() * 1000.0;

    println!(
        "{}",
        serde_json::json!({
            "source": std::env::var("VOXSEAL_SOURCE").unwrap_or_else(|_| "mic".into()),
            "rss_idle_kib": rss_idle,
            "rss_recording_max_kib": rss_rec_max,
            "cpu_recording_percent_of_one_core": (cpu_pct * 10.0).round() / 10.0,
            "take_s": review.duration_s,
            "stop_to_review_ms": stop_ms.round(),
            "post_roll_ms": 500,
            "review_to_sealed_ms": seal_ms.round(),
            "stop_to_sealed_ms": (stop_ms + seal_ms).round(),
            "stop_to_sealed_without_post_roll_ms": (stop_ms - 500.0 + seal_ms).round(),
        })
    );
}
