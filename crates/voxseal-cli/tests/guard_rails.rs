//! Guard rails of the `voxseal` binary found missing by an outside evaluation (issue 12): the
//! take length limit (never a silent cut), inputs that cannot be read twice (pipes), `open`
//! never overwriting, every payload's hash checked even when it cannot be decrypted, error texts
//! that say what happened, and the data directory's contractor and existence.

// Some tests here are Unix-only (marked); on Windows what only they use is unused.
#![cfg_attr(windows, allow(unused_imports, dead_code))]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use support::voxseal;

/// The test project's consent text, accepted by `init`.
const CONSENT: &str = "I agree to the guard-rail tests' terms.";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn data(&self) -> PathBuf {
        self.path("data")
    }

    fn run(&self, args: &[&str]) -> Output {
        voxseal(&self.data()).args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "voxseal {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Runs, expects exit `code`, returns stderr.
    #[track_caller]
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "voxseal {args:?}:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    }

    /// A signed project (optionally with another `max_take_s`) and `voxseal init` for
    /// `alice-01`. The training and archive identities stay in `proj/keys/`.
    fn project(&self, max_take_s: Option<f64>) -> PathBuf {
        let proj = self.path("proj");
        std::fs::write(self.path("prompts.txt"), "Say one.\nSay two.\n").unwrap();
        std::fs::write(self.path("consent.txt"), CONSENT).unwrap();
        self.ok(&[
            "project",
            "init",
            proj.to_str().unwrap(),
            "--name",
            "guard-rails",
            "--no-password",
            "--prompts",
            self.path("prompts.txt").to_str().unwrap(),
            "--consent",
            self.path("consent.txt").to_str().unwrap(),
        ]);
        if let Some(s) = max_take_s {
            let path = proj.join("project.toml");
            let text = std::fs::read_to_string(&path).unwrap().replacen(
                "[capture]\n",
                &format!("[capture]\nmax_take_s = {s:?}\n"),
                1,
            );
            assert!(text.contains("max_take_s"), "{text}");
            std::fs::write(&path, &text).unwrap();
            let sig = voxseal_core::project::signing::sign(
                &proj.join("keys/lead.key"),
                None,
                text.as_bytes(),
                "test",
            )
            .unwrap();
            std::fs::write(proj.join("project.toml.sig"), sig).unwrap();
        }
        self.init("alice-01");
        proj
    }

    fn init_args(&self, contractor: &str) -> Vec<String> {
        let proj = self.path("proj");
        vec![
            "init".into(),
            "--contractor".into(),
            contractor.into(),
            "--project".into(),
            proj.join("project.toml").display().to_string(),
            "--trust-lead-key".into(),
            proj.join("lead.pub").display().to_string(),
            "--accept-consent".into(),
            voxseal_core::project::manifest::Consent::sha256_of(CONSENT)[..16].to_owned(),
        ]
    }

    fn init(&self, contractor: &str) {
        let args = self.init_args(contractor);
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    fn key(&self, name: &str) -> String {
        self.path("proj/keys").join(name).display().to_string()
    }

    fn item(&self, sample: &str) -> PathBuf {
        self.data().join("outbox").join(sample)
    }

    /// Seals `seconds` of synthetic speech at 16 kHz; returns the sample id.
    fn seal_speech(&self, seconds: f32) -> String {
        let wav = self.path(&format!("speech-{seconds}.wav"));
        speech_wav(&wav, 16_000, seconds);
        self.ok(&["seal", "--accept-failed", wav.to_str().unwrap()])
    }

    /// No outbox item, no spool file.
    #[track_caller]
    fn nothing_sealed(&self) {
        let outbox = voxseal_core::store::outbox::Outbox::new(self.data().join("outbox"));
        let (items, _) = outbox.list().unwrap();
        assert!(items.is_empty(), "outbox {items:?}");
        assert!(support::files_under(&self.data().join("spool")).is_empty());
    }
}

fn speech_wav(path: &Path, rate: u32, seconds: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let s = voxseal_core::capture::audio::SyntheticSource::generate(
        voxseal_core::capture::audio::SyntheticKind::Speech,
        rate,
        (seconds * rate as f32) as usize,
    );
    for x in s {
        w.write_sample(voxseal_core::sealing::wav::f32_to_i16(x))
            .unwrap();
    }
    w.finalize().unwrap();
}

fn manifest(item: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(item.join("manifest.json")).unwrap()).unwrap()
}

/// Waits for `child` at most `limit`; a child still running then is killed and reported.
fn wait_or_kill(mut child: Child, limit: Duration) -> Output {
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "voxseal hung for {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Finding 2: a file longer than the project's take limit was cut to it silently.
#[test]
fn a_file_longer_than_the_take_limit_is_refused_not_cut() {
    let env = Env::new();
    env.project(None);
    let wav = env.path("long.wav");
    speech_wav(&wav, 8_000, 125.0);
    let err = env.fails(&["seal", "--accept-failed", wav.to_str().unwrap()], 1);
    for want in ["125.0 s", "120 s", "max_take_s", "Split"] {
        assert!(err.contains(want), "wanted {want:?} in:\n{err}");
    }
    env.nothing_sealed();
}

/// Finding 2: a live take that reaches the limit is marked in the manifest and the contractor
/// is told; a take stopped by `--seconds` before it is not.
#[test]
fn a_live_take_that_reaches_the_limit_is_marked_and_reported() {
    let env = Env::new();
    env.project(Some(2.0));
    let rec = |seconds: &str| {
        voxseal(&env.data())
            .args([
                "record",
                "--source",
                "synthetic:speech",
                "--fast",
                "--seconds",
                seconds,
                "--accept-failed",
            ])
            .output()
            .unwrap()
    };
    let out = rec("5");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("max_take_s") && err.contains("2 s"),
        "the contractor is told:\n{err}"
    );
    let sample = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let m = manifest(&env.item(&sample));
    let why = m["audio"]["interrupted"].as_str().unwrap_or_default();
    assert!(why.starts_with("max_take_s"), "{m}");
    assert!((m["audio"]["take_samples"].as_u64().unwrap() as f64 / 48_000.0 - 2.0).abs() < 0.01);

    let out = rec("1");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("max_take_s"), "{err}");
    let sample = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(manifest(&env.item(&sample))["audio"]["interrupted"].is_null());
}

/// Finding 3: a FIFO hung `voxseal seal` (opened twice); a pipe on /dev/stdin failed with "no
/// RIFF tag found". Both are refused at once with a clear message.
#[cfg(unix)] // FIFOs and /dev/stdin
#[test]
fn pipes_are_refused_without_hanging() {
    let env = Env::new();
    env.project(None);
    let fifo = env.path("take.fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let child = voxseal(&env.data())
        .args(["seal", "--accept-failed", fifo.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_or_kill(child, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not a regular file") && err.contains("save it to a file first"),
        "{err}"
    );

    let wav = env.path("in.wav");
    speech_wav(&wav, 16_000, 2.0);
    let bytes = std::fs::read(&wav).unwrap();
    let mut child = voxseal(&env.data())
        .args(["seal", "--accept-failed", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The reader may refuse before reading: a broken pipe is expected.
        let _ = stdin.write_all(&bytes);
    });
    let out = wait_or_kill(child, Duration::from_secs(20));
    writer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not a regular file") && !err.contains("RIFF"),
        "{err}"
    );
    env.nothing_sealed();
}

/// Finding 4: `open -o DIR` with several items wrote them all to the same two names.
#[test]
fn open_gives_each_item_its_own_directory_and_never_overwrites() {
    let env = Env::new();
    env.project(None);
    let a = env.seal_speech(2.0);
    let b = env.seal_speech(2.5);
    let out = env.path("opened");
    let (ia, ib) = (env.item(&a), env.item(&b));
    let (training, archive) = (env.key("training.key"), env.key("archive.key"));
    let args = [
        "open",
        ia.to_str().unwrap(),
        ib.to_str().unwrap(),
        "-i",
        &training,
        "-i",
        &archive,
        "-o",
        out.to_str().unwrap(),
    ];
    env.ok(&args);
    for s in [&a, &b] {
        for f in ["raw.wav", "features.safetensors"] {
            assert!(out.join(s).join(f).is_file(), "{s}/{f} missing");
        }
    }
    let before = std::fs::read(out.join(&a).join("raw.wav")).unwrap();
    // Again into the same directory: refused, nothing replaced.
    let err = env.fails(&args, 1);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(out.join(&a).join("raw.wav")).unwrap(), before);

    // Single files with the same name: the second is refused, not written over the first.
    let single = env.path("single");
    let fa = ia.join("features.safetensors.age");
    let fb = ib.join("features.safetensors.age");
    let err = env.fails(
        &[
            "open",
            fa.to_str().unwrap(),
            fb.to_str().unwrap(),
            "-i",
            &training,
            "-o",
            single.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("already exists"), "{err}");
    let first = std::fs::read(single.join("features.safetensors")).unwrap();
    let again = env.path("single-again");
    env.ok(&[
        "open",
        fa.to_str().unwrap(),
        "-i",
        &training,
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(again.join("features.safetensors")).unwrap(),
        first
    );
}

/// Finding 6: with only the training key, a damaged raw payload was "skipped" with exit 0.
#[test]
fn payloads_that_cannot_be_decrypted_are_still_hash_checked() {
    let env = Env::new();
    env.project(None);
    let sample = env.seal_speech(2.0);
    let item = env.item(&sample);
    let raw = item.join("raw.wav.age");
    let good = std::fs::read(&raw).unwrap();
    let training = env.key("training.key");

    // Intact: the raw payload is skipped (other recipients) but verified, exit 0.
    let out = env.run(&["open", item.to_str().unwrap(), "-i", &training]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("skipped"), "{err}");

    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n / 2] ^= 0x10;
    std::fs::write(&raw, &flipped).unwrap();
    let err = env.fails(&["open", item.to_str().unwrap(), "-i", &training], 4);
    assert!(
        err.contains("raw.wav.age") && err.contains("SHA-256"),
        "{err}"
    );
    // The same file on its own, against the manifest.
    let err = env.fails(
        &[
            "open",
            raw.to_str().unwrap(),
            "--manifest",
            item.join("manifest.json").to_str().unwrap(),
            "-i",
            &training,
        ],
        4,
    );
    assert!(err.contains("SHA-256"), "{err}");

    // Truncated: the size is checked too.
    std::fs::write(&raw, &good[..n - 100]).unwrap();
    let err = env.fails(&["open", item.to_str().unwrap(), "-i", &training], 4);
    assert!(err.contains("bytes") && err.contains("manifest"), "{err}");
}

/// Finding 7: library texts ("Unknown age format. Have you tried upgrading...", "failed to fill
/// whole buffer") and doubled OS errors reached the user.
#[test]
fn error_texts_say_what_happened_and_what_to_do() {
    let env = Env::new();
    env.project(None);
    let sample = env.seal_speech(2.0);
    let item = env.item(&sample);
    let features = item.join("features.safetensors.age");
    let good = std::fs::read(&features).unwrap();
    let training = env.key("training.key");
    let open_single = || {
        env.fails(
            &["open", features.to_str().unwrap(), "-i", training.as_str()],
            4,
        )
    };
    let library_texts = [
        "Unknown age format",
        "upgrading",
        "failed to fill whole buffer",
    ];

    // A tampered header: its first byte, and its version line (age: "Unknown age format").
    let mut errs = Vec::new();
    let mut bad = good.clone();
    bad[0] = b'x';
    let version = b"age-encryption.org/v";
    let mut bad_version = good.clone();
    bad_version[version.len()] = b'7';
    assert!(good.starts_with(version));
    for bad in [bad, bad_version] {
        std::fs::write(&features, &bad).unwrap();
        let err = open_single();
        assert!(err.contains("header is damaged"), "{err}");
        errs.push(err);
    }
    // Cut inside the header: truncated. Cut inside the payload: the last chunk does not
    // authenticate, which age cannot tell from an alteration.
    let cuts = [(40, "truncated"), (100, "truncated")];
    let cuts = cuts.into_iter().chain([
        (good.len() / 2, "altered or cut short"),
        (good.len() - 5, "altered or cut short"),
    ]);
    for (cut, want) in cuts {
        std::fs::write(&features, &good[..cut]).unwrap();
        let err = open_single();
        assert!(err.contains(want), "cut at {cut}:\n{err}");
        errs.push(err);
    }
    for err in &errs {
        for t in library_texts {
            assert!(!err.contains(t), "{t:?} reached the user:\n{err}");
        }
        assert!(
            err.contains("copy") || err.contains("again"),
            "no advice:\n{err}"
        );
    }

    // OS errors appear once, not twice (an error's own text plus its chain).
    let missing = env.path("missing.wav");
    let missing_s = missing.to_str().unwrap();
    let source = format!("file:{missing_s}");
    let cases: [Vec<&str>; 4] = [
        vec!["seal", "--accept-failed", missing_s],
        vec!["open", missing_s, "-i", &training],
        vec!["init", "--contractor", "alice-01", "--project", missing_s],
        vec!["record", "--source", &source, "--accept"],
    ];
    for args in cases {
        let out = env.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err.matches("os error 2").count(),
            1,
            "{args:?}: the OS error is not said exactly once:\n{err}"
        );
    }
}

/// Finding 9: `init` switched contractor on a data directory holding another contractor's
/// queued items; `--supersedes` took any well-formed id; commands created a missing data dir.
#[test]
fn the_data_directory_keeps_its_contractor_and_is_not_created_by_accident() {
    let env = Env::new();
    env.project(None);
    let sample = env.seal_speech(2.0);
    let switch = env.init_args("bob-02");
    let switch: Vec<&str> = switch.iter().map(String::as_str).collect();
    let err = env.fails(&switch, 1);
    for want in ["1 sealed item", "alice-01", "voxseal upload", "--data-dir"] {
        assert!(err.contains(want), "wanted {want:?} in:\n{err}");
    }
    let settings = std::fs::read_to_string(env.data().join("settings.toml")).unwrap();
    assert!(settings.contains("alice-01"), "{settings}");
    // The same contractor again is fine (a new project version, say).
    env.init("alice-01");

    // --supersedes must name a sample that exists here.
    let wav = env.path("again.wav");
    speech_wav(&wav, 16_000, 2.0);
    let unknown = voxseal_core::project::ids::SampleId::generate().to_string();
    let err = env.fails(
        &[
            "seal",
            "--accept-failed",
            wav.to_str().unwrap(),
            "--supersedes",
            &unknown,
        ],
        1,
    );
    assert!(
        err.contains(&unknown) && err.contains("voxseal takes"),
        "{err}"
    );
    env.ok(&[
        "seal",
        "--accept-failed",
        wav.to_str().unwrap(),
        "--supersedes",
        &sample,
    ]);

    // A data directory that does not exist is not created, except by init.
    let nowhere = env.path("nowhere");
    let n = nowhere.to_str().unwrap();
    let wav_s = wav.to_str().unwrap();
    let cases: [&[&str]; 7] = [
        &["takes"],
        &["outbox"],
        &["seal", "--accept-failed", wav_s],
        &[
            "record",
            "--source",
            "synthetic:speech",
            "--seconds",
            "1",
            "--accept",
        ],
        &["upload"],
        &["audit", "show"],
        &["audit", "verify"],
    ];
    for args in cases {
        let out = voxseal(&nowhere).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("voxseal init"), "{args:?}: {err}");
        assert!(!nowhere.exists(), "{args:?} created {n}");
    }
    let mut init = env.init_args("carol-03");
    init.splice(0..0, ["--data-dir".to_owned(), n.to_owned()]);
    let out = voxseal(&nowhere).args(&init).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(nowhere.join("settings.toml").exists());
}
