//! Real capture through cpal, end to end, on a machine without a sound card.
//!
//! Needs the private PulseAudio server of `scripts/pulse.sh`:
//!
//! ```sh
//! eval "$(scripts/pulse.sh)"
//! cargo test -p voxseal-core --test pulse_capture -- --nocapture
//! ```
//!
//! Its env makes ALSA's `default` PCM (what cpal opens as the default input) the monitor of a
//! null sink, `voxseal_null`. The speech test records that input while `espeak-ng | paplay` plays
//! into the sink, then checks the take (native rate, no drops), the quality analyzer and the
//! features. The silence test records with nothing playing and expects "no speech detected".
//!
//! Without `PULSE_SERVER` the tests print a "skipped" line and pass, unless
//! `VOXSEAL_REQUIRE_PULSE=1` (CI), where they fail. The tests hold an exclusive lock on a file in
//! the server's runtime directory while they record, so they never hear each other (nor another
//! test process using the same server).
//!
//! As Windows executables under Wine (`scripts/windows.sh test`), cpal's WASAPI host reaches the
//! same server through Wine's PulseAudio driver: the silence and playback tests run there too. The
//! speech test plays with `espeak-ng | paplay`, Linux programs a Windows process cannot start, so
//! it is Unix only.
#![cfg_attr(windows, allow(dead_code, unused_imports))]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait};

use voxseal_core::capture::audio::SourceFactory;
use voxseal_core::capture::audio::capture::CaptureShared;
use voxseal_core::capture::audio::{AudioSource, CpalSource, DeviceSelector, list_input_devices};
use voxseal_core::capture::recorder::{RecordedTake, RecorderOptions, Recording};
use voxseal_core::dsp::features::{FeatureParams, write_safetensors};
use voxseal_core::dsp::pcm::PcmReplay;
use voxseal_core::dsp::quality::{QualityReport, Verdict};

/// The sink `scripts/pulse.sh` creates; its monitor is the default source.
const SINK: &str = "voxseal_null";
const SPEECH: &str = "Hello, this is a Voxseal capture test.";
/// Silence recorded after the first callback, before the speech starts.
const LEAD_IN: Duration = Duration::from_millis(1000);
/// Recording kept going after the player finished.
const TAIL: Duration = Duration::from_millis(400);
/// The first callback comes up to 2 s after the stream starts: with no low-latency client, module-null-sink renders in 2 s blocks, and the monitor only delivers once
/// the block in progress ends. Allow plenty on a busy machine.
const FIRST_CALLBACK_TIMEOUT: Duration = Duration::from_secs(15);

const HINT: &str = "run `eval \"$(scripts/pulse.sh)\"` first (a private PulseAudio server)";

/// The server's address, or `None` (after printing why) when the test should be skipped.
fn pulse_server(test: &str) -> Option<String> {
    match std::env::var("PULSE_SERVER") {
        Ok(s) if !s.is_empty() => {
            let up = server_answers();
            assert!(
                up,
                "{test}: no PulseAudio server answers at PULSE_SERVER={s}: {HINT}"
            );
            Some(s)
        }
        _ => {
            if std::env::var("VOXSEAL_REQUIRE_PULSE").as_deref() == Ok("1") {
                panic!("{test}: PULSE_SERVER is not set and VOXSEAL_REQUIRE_PULSE=1: {HINT}");
            }
            // Straight to stderr, not eprintln!: the test harness would hide it.
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: PULSE_SERVER is not set; {HINT}"
            );
            None
        }
    }
}

/// Whether the server answers: `pactl info` on Unix; under Wine, whether WASAPI lists the null
/// sink's monitor (Wine's PulseAudio driver names devices after the server's).
fn server_answers() -> bool {
    #[cfg(unix)]
    {
        Command::new("pactl")
            .arg("info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
    }
    #[cfg(windows)]
    {
        list_input_devices()
            .unwrap_or_default()
            .iter()
            .any(|d| d.name.contains("null"))
    }
}

/// Exclusive use of the server's null sink for this test (across threads and processes).
fn lock_sink() -> File {
    let dir = std::env::var_os("PULSE_RUNTIME_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let f = File::create(dir.join("voxseal-capture-test.lock")).expect("create the lock file");
    f.lock().expect("lock the null sink");
    f
}

/// What a running recording exposes to the test.
struct Live {
    rec: Recording,
    shared: Arc<CaptureShared>,
    started: Instant,
    first_callback: Duration,
    _dir: tempfile::TempDir,
}

/// Starts recording the default input through [`Recording`] with a [`CpalSource`], and waits for
/// the device's first capture callback.
fn start_recording() -> Live {
    let dir = tempfile::tempdir().unwrap();
    let shared_slot: Arc<Mutex<Option<Arc<CaptureShared>>>> = Arc::default();
    let slot = shared_slot.clone();
    let factory: SourceFactory = Box::new(move || {
        let src = CpalSource::open(&DeviceSelector::Default)?;
        *slot.lock().unwrap() = Some(src.shared().clone());
        Ok(Box::new(src) as Box<dyn AudioSource>)
    });
    let started = Instant::now();
    let rec = Recording::start(factory, RecorderOptions::new(dir.path()), |_| {})
        .expect("open the default input through cpal");
    let opened = started.elapsed();
    let shared = shared_slot.lock().unwrap().take().expect("the factory ran");
    while shared.counters().callbacks == 0 {
        assert!(
            started.elapsed() < FIRST_CALLBACK_TIMEOUT,
            "no capture callback within {FIRST_CALLBACK_TIMEOUT:?}; is the server up? (scripts/pulse.sh status)"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let first_callback = started.elapsed();
    eprintln!(
        "opened {:?} in {opened:.2?}; first capture callback after {first_callback:.2?}",
        rec.source()
    );
    Live {
        rec,
        shared,
        started,
        first_callback,
        _dir: dir,
    }
}

/// Plays `text` into the null sink with `espeak-ng --stdout | paplay`, waiting until it ends.
fn play_speech(text: &str) -> Duration {
    let t0 = Instant::now();
    let mut speak = Command::new("espeak-ng")
        .args(["--stdout", text])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run espeak-ng (apt-get install espeak-ng)");
    let play = Command::new("paplay")
        .arg(format!("--device={SINK}"))
        .stdin(speak.stdout.take().unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run paplay (apt-get install pulseaudio-utils)")
        .wait_with_output()
        .unwrap();
    assert!(speak.wait().unwrap().success(), "espeak-ng failed");
    assert!(
        play.status.success(),
        "paplay --device={SINK} failed: {}",
        String::from_utf8_lossy(&play.stderr)
    );
    t0.elapsed()
}

fn report(take: &RecordedTake) -> QualityReport {
    take.analyzer.clone().finish(&Default::default())
}

/// The default input device as listed, checked to be there.
fn default_device() -> voxseal_core::capture::audio::DeviceInfo {
    let devices = list_input_devices().expect("list input devices");
    for d in &devices {
        eprintln!("input device: {d:?}");
    }
    assert!(!devices.is_empty(), "no input devices listed");
    if let Some(d) = devices.iter().find(|d| d.is_default) {
        return d.clone();
    }
    // `list_input_devices` flags the default by comparing names, but cpal's ALSA host names its
    // default device "Default Audio Device" while the enumerated `default` PCM carries its hint
    // description, so nothing is flagged. Match by id instead.
    let id = cpal::default_host()
        .default_input_device()
        .and_then(|d| d.id().ok())
        .map(|id| id.to_string())
        .expect("cpal has a default input device");
    eprintln!("note: no listed device is flagged is_default; matching the default by id {id}");
    devices
        .into_iter()
        .find(|d| d.id.as_deref() == Some(id.as_str()))
        .expect("the default input device (ALSA `default` through PulseAudio) is listed")
}

/// `log_mel` `[frames, n_mels]` of the take, through the safetensors writer.
fn log_mel(take: &RecordedTake, p: &FeatureParams) -> (usize, Vec<f32>) {
    let mut bytes = Vec::new();
    let summary = write_safetensors(&take.spool, p, &BTreeMap::new(), &mut bytes).unwrap();
    assert_eq!(summary.bytes, bytes.len() as u64);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("log_mel").unwrap();
    assert_eq!(t.shape(), [summary.frames as usize, p.n_mels]);
    let v = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (summary.frames as usize, v)
}

/// Over the frames whose centre lies in `[from_s, to_s)`: the mean log-mel (dB, all bands) and
/// the mean of each frame's loudest band (dB).
fn mel_stats(mel: &[f32], p: &FeatureParams, from_s: f64, to_s: f64) -> (f64, f64) {
    let hop_s = p.hop_length as f64 / p.sample_rate as f64;
    let rows: Vec<&[f32]> = mel
        .chunks_exact(p.n_mels)
        .enumerate()
        .filter(|(i, _)| (from_s..to_s).contains(&(*i as f64 * hop_s)))
        .map(|(_, r)| r)
        .collect();
    assert!(!rows.is_empty(), "no frames in {from_s}..{to_s} s");
    let n = rows.len() as f64;
    let mean = rows
        .iter()
        .flat_map(|r| r.iter())
        .map(|&x| x as f64)
        .sum::<f64>()
        / (n * p.n_mels as f64);
    let mean_max = rows
        .iter()
        .map(|r| r.iter().copied().fold(f32::MIN, f32::max) as f64)
        .sum::<f64>()
        / n;
    (mean, mean_max)
}

#[cfg(unix)]
#[test]
fn records_speech_played_into_the_null_sink() {
    let t_test = Instant::now();
    if pulse_server("records_speech_played_into_the_null_sink").is_none() {
        return;
    }
    let _lock = lock_sink();
    let device = default_device();

    let live = start_recording();
    std::thread::sleep(LEAD_IN);
    let lead_in = live.started.elapsed() - live.first_callback;
    let played = play_speech(SPEECH);
    std::thread::sleep(TAIL);
    let callbacks = live.shared.counters().callbacks;
    let take = live.rec.stop().expect("stop the recording");
    let wall = live.started.elapsed() - live.first_callback;

    let rate = take.source.sample_rate;
    let secs = take.duration_s();
    eprintln!(
        "speech take: {secs:.2} s at {rate} Hz ({} ch {}), {callbacks} callbacks, {:?}; \
         lead-in {lead_in:.2?}, espeak|paplay {played:.2?}, wall {wall:.2?}",
        take.source.channels, take.source.format, take.counters
    );
    assert_eq!(take.source.kind, "microphone");
    assert_eq!(
        rate, device.sample_rate,
        "the take is at the device's native rate"
    );
    assert_eq!(take.spool.sample_rate(), rate);
    assert!(take.interrupted.is_none(), "{:?}", take.interrupted);
    assert_eq!(take.counters.dropped, 0, "no samples dropped");
    assert_eq!(take.counters.clipped, 0, "espeak-ng does not clip");
    // Samples arrive in real time: the take is as long as the time recorded (give or take the
    // device's buffering).
    assert!(
        (secs - wall.as_secs_f64()).abs() < 0.75,
        "{secs:.2} s of audio in {wall:.2?}"
    );
    assert!((3.0..8.0).contains(&secs), "{secs:.2} s");

    let q = report(&take);
    eprintln!(
        "quality: speech {:?} s, speech level {:.1} dBFS, noise floor {:.1} dBFS, SNR {:.1} dB, \
         peak {:.1} dBFS, rms {:.1} dBFS, overall {}",
        q.speech_s, q.speech_dbfs, q.noise_floor_dbfs, q.snr_db, q.peak_dbfs, q.rms_dbfs, q.overall
    );
    for c in &q.checks {
        eprintln!("  {} {}: {}", c.verdict, c.name, c.reason);
    }
    let (s0, s1) = q.speech_s.expect("speech detected");
    assert!(
        q.speech_dbfs - q.noise_floor_dbfs > 40.0,
        "speech {:.1} dBFS vs noise floor {:.1} dBFS",
        q.speech_dbfs,
        q.noise_floor_dbfs
    );
    assert!(
        (-35.0..-3.0).contains(&q.speech_dbfs),
        "speech level {:.1} dBFS",
        q.speech_dbfs
    );
    // The speech starts after the lead-in and lasts about as long as espeak-ng's output.
    assert!(
        s0 > 0.5 * LEAD_IN.as_secs_f64(),
        "speech starts at {s0:.2} s, inside the silent lead-in"
    );
    assert!((1.0..4.0).contains(&(s1 - s0)), "speech {s0:.2}..{s1:.2} s");
    let speech_check = q.checks.iter().find(|c| c.name == "speech").unwrap();
    assert_eq!(
        speech_check.verdict,
        Verdict::Pass,
        "{}",
        speech_check.reason
    );

    let p = FeatureParams::default();
    let t_feat = Instant::now();
    let (frames, mel) = log_mel(&take, &p);
    let feat_time = t_feat.elapsed();
    let floor = mel.iter().copied().fold(f32::MAX, f32::min) as f64;
    let (quiet, quiet_max) = mel_stats(&mel, &p, 0.0, s0 - 0.2);
    let (speech, speech_max) = mel_stats(&mel, &p, s0, s1);
    eprintln!(
        "features: {frames} frames in {feat_time:.2?}; log-mel floor {floor:.1} dB; lead-in: mean \
         {quiet:.1} dB, loudest band {quiet_max:.1} dB; speech: mean {speech:.1} dB, loudest band \
         {speech_max:.1} dB"
    );
    let resampled = voxseal_core::dsp::resample::output_len(take.spool.len(), rate, p.sample_rate);
    assert_eq!(frames as u64, p.frames_for(resampled));
    // The lead-in is the null sink's digital silence: every band sits on the top_db floor.
    assert!(
        quiet_max - floor < 1.0,
        "lead-in frames rise {:.1} dB above the floor",
        quiet_max - floor
    );
    assert!(
        speech_max - quiet_max > 50.0,
        "speech frames' loudest band ({speech_max:.1} dB) is not well above the lead-in's ({quiet_max:.1} dB)"
    );
    assert!(
        speech - quiet > 20.0,
        "log-mel during speech ({speech:.1} dB) is not well above the lead-in ({quiet:.1} dB)"
    );
    eprintln!(
        "records_speech_played_into_the_null_sink: {:.2?}",
        t_test.elapsed()
    );
}

#[test]
fn silence_from_the_null_sink_is_no_speech() {
    let t_test = Instant::now();
    if pulse_server("silence_from_the_null_sink_is_no_speech").is_none() {
        return;
    }
    let _lock = lock_sink();
    let device = default_device();

    let live = start_recording();
    std::thread::sleep(Duration::from_secs(2));
    let take = live.rec.stop().expect("stop the recording");
    let secs = take.duration_s();
    eprintln!(
        "silent take: {secs:.2} s at {} Hz, {:?}",
        take.source.sample_rate, take.counters
    );
    assert_eq!(take.source.sample_rate, device.sample_rate);
    assert_eq!(take.counters.dropped, 0);
    assert!(secs > 1.0, "{secs:.2} s");

    let q = report(&take);
    eprintln!(
        "quality: speech {:?}, speech level {:.1} dBFS, noise floor {:.1} dBFS, peak {:.1} dBFS, overall {}",
        q.speech_s, q.speech_dbfs, q.noise_floor_dbfs, q.peak_dbfs, q.overall
    );
    assert!(
        q.speech_s.is_none(),
        "speech found in silence: {:?}",
        q.speech_s
    );
    let speech_check = q.checks.iter().find(|c| c.name == "speech").unwrap();
    assert_eq!(speech_check.verdict, Verdict::Fail);
    assert!(
        speech_check.reason.contains("no speech detected"),
        "{}",
        speech_check.reason
    );
    assert_eq!(q.overall, Verdict::Fail);
    eprintln!(
        "silence_from_the_null_sink_is_no_speech: {:.2?}",
        t_test.elapsed()
    );
}

#[test]
fn playback_of_a_take_is_heard_on_the_sink_monitor() {
    use voxseal_core::capture::audio::{SyntheticKind, SyntheticSource, playback};
    let test = "playback_of_a_take_is_heard_on_the_sink_monitor";
    if pulse_server(test).is_none() {
        return;
    }
    let _lock = lock_sink();
    // A 16 kHz take, so playback also resamples to the device's 48 kHz.
    let take = voxseal_core::dsp::pcm::MemoryPcm::new(
        SyntheticSource::generate(SyntheticKind::Speech, 16_000, 3 * 16_000),
        16_000,
    );
    let live = start_recording();
    let player = playback::play(&take).expect("play through the default output");
    let t0 = Instant::now();
    while !player.is_done() {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "playback never finished: {} played",
            player.played()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The null sink renders in 2 s blocks: keep recording until the monitor delivered them.
    std::thread::sleep(Duration::from_millis(2500));
    let played = player.played();
    drop(player);
    let recorded = live.rec.stop().expect("stop the recording");
    let q = report(&recorded);
    eprintln!(
        "{test}: played {played} frames; heard speech {:?} at {:.1} dBFS over {:.1} dBFS",
        q.speech_s, q.speech_dbfs, q.noise_floor_dbfs
    );
    assert!(played >= 3 * 48_000, "all 3 s reached the device: {played}");
    let (a, b) = q.speech_s.expect("the played take is heard on the monitor");
    assert!(b - a > 2.0, "{a}..{b}");
    assert!(q.speech_dbfs > -30.0, "{}", q.speech_dbfs);
}
