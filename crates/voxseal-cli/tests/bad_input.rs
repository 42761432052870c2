//! Bad input through the `voxseal` binary, as tables: damaged or unsupported WAV files, hostile
//! contractor ids at every command that takes one, invalid project configs that carry a valid
//! signature, bad command-line arguments, and a write limit hit while recording. Each case must
//! end with a clear error (exit 1 or 2, a message that names the problem, never a panic) and
//! leave nothing behind: no outbox item, no spool file, nothing lost.
//!
//! The library-level tables are in the crates' unit tests (WAV parsing in `voxseal-core/src/sealing/wav.rs`,
//! ids in `ids.rs`, configs in `config.rs`, every age failure in `tests/seal_open.rs`, spool damage
//! in `spool.rs`, broker requests in `voxseal-broker/tests/api.rs`).

// Some tests here are Unix-only (marked); on Windows what only they use is unused.
#![cfg_attr(windows, allow(unused_imports, dead_code))]

mod support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::voxseal;

/// WAV files tried (`wav_files_that_cannot_be_imported_are_refused_and_leave_nothing`).
const CASES_BAD_WAV: usize = 17;
/// Contractor ids tried, each at `voxseal init` and `voxseal enroll add`.
const CASES_BAD_CONTRACTOR_ID: usize = 14;
/// Validly signed but invalid project configs (`signed_but_invalid_project_configs_are_refused`).
const CASES_BAD_CONFIG: usize = 6;
/// Bad command lines (`bad_arguments_get_usage_errors_not_panics`).
const CASES_BAD_ARGS: usize = 27;
/// Recording into a file-size limit (`a_write_limit_while_recording_*`).
const CASES_WRITE_LIMIT: usize = 1;

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

    fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        voxseal(&self.data()).args(args).output().unwrap()
    }

    /// A signed project and a data directory set up for it (`voxseal project init` + `init`).
    fn project(&self) -> PathBuf {
        let proj = self.path("proj");
        let consent_text = "I agree to the bad-input test's terms.";
        std::fs::write(self.path("prompts.txt"), "Say one.\nSay two.\n").unwrap();
        std::fs::write(self.path("consent.txt"), consent_text).unwrap();
        let out = self.run([
            "project",
            "init",
            proj.to_str().unwrap(),
            "--name",
            "bad-input",
            "--no-password",
            "--prompts",
            self.path("prompts.txt").to_str().unwrap(),
            "--consent",
            self.path("consent.txt").to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = self.run([
            "init",
            "--contractor",
            "alice-01",
            "--project",
            proj.join("project.toml").to_str().unwrap(),
            "--trust-lead-key",
            proj.join("lead.pub").to_str().unwrap(),
            "--accept-consent",
            &voxseal_core::project::manifest::Consent::sha256_of(consent_text)[..16],
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        proj
    }

    /// Nothing was kept: no outbox item, no spool file.
    #[track_caller]
    fn nothing_left(&self, case: &str) {
        let outbox = voxseal_core::store::outbox::Outbox::new(self.data().join("outbox"));
        let (items, damaged) = outbox.list().unwrap();
        assert!(
            items.is_empty() && damaged.is_empty(),
            "{case}: outbox {items:?}"
        );
        let spool = voxseal_core::capture::spool::files(&self.data().join("spool")).unwrap();
        assert!(spool.is_empty(), "{case}: spool {spool:?}");
    }
}

/// A clear refusal: exit 1 (or 2 for usage errors), the expected words, no panic.
#[track_caller]
fn refused(case: &str, out: &Output, codes: &[i32], want: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.code().is_some_and(|c| codes.contains(&c)),
        "{case}: exit {:?}, wanted one of {codes:?}:\n{err}",
        out.status
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{case}: a panic:\n{err}"
    );
    assert!(err.contains("error"), "{case}: no error line:\n{err}");
    assert!(
        err.to_lowercase().contains(&want.to_lowercase()),
        "{case}: wanted {want:?} in:\n{err}"
    );
    err
}

/// A canonical 44-byte PCM header followed by `data`.
fn wav(format: u16, channels: u16, rate: u32, bits: u16, data: &[u8], declared: u32) -> Vec<u8> {
    let block = channels.max(1) * bits.div_ceil(8);
    let mut b = Vec::with_capacity(44 + data.len());
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + declared).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&format.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate.wrapping_mul(block as u32)).to_le_bytes());
    b.extend_from_slice(&block.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&declared.to_le_bytes());
    b.extend_from_slice(data);
    b
}

/// One second of a 16 kHz 16-bit voice.
fn voice_16bit() -> Vec<u8> {
    voxseal_core::capture::audio::SyntheticSource::generate(
        voxseal_core::capture::audio::SyntheticKind::Speech,
        16_000,
        16_000,
    )
    .iter()
    .flat_map(|x| voxseal_core::sealing::wav::f32_to_i16(*x).to_le_bytes())
    .collect()
}

/// A name, the file's bytes (None: a directory or a missing file), and the expected outcome:
/// refused with these words, or sealed.
type WavCase<'a> = (&'a str, Option<Vec<u8>>, Result<(), &'a str>);

#[test]
fn wav_files_that_cannot_be_imported_are_refused_and_leave_nothing() {
    let env = Env::new();
    env.project();
    let pcm = voice_16bit();
    let n = pcm.len() as u32;
    let float_nan: Vec<u8> = (0..16_000u32)
        .flat_map(|i| {
            if i % 100 == 0 {
                f32::NAN
            } else {
                (i as f32 * 0.05).sin() * 0.3
            }
            .to_le_bytes()
        })
        .collect();
    // (case, file bytes; None: a directory or a missing file, expected: Err(words) or Ok)
    let cases: Vec<WavCase<'_>> = vec![
        (
            "truncated data",
            Some(wav(1, 1, 16_000, 16, &pcm[..n as usize / 3], n)),
            Err("is truncated"),
        ),
        (
            "header claims 10x the data",
            Some(wav(1, 1, 16_000, 16, &pcm, n * 10)),
            Err("is truncated"),
        ),
        (
            "header claims 4 GiB",
            Some(wav(1, 1, 16_000, 16, &pcm, u32::MAX - 64)),
            Err("not a valid WAV file"),
        ),
        (
            "cut inside the header",
            Some(wav(1, 1, 16_000, 16, &pcm, n)[..30].to_vec()),
            Err("not a valid WAV file"),
        ),
        (
            "zero-length file",
            Some(Vec::new()),
            Err("not a valid WAV file"),
        ),
        (
            "text, not audio",
            Some(b"this is not audio at all, sorry".to_vec()),
            Err("not a valid WAV file"),
        ),
        (
            "4 MHz sample rate",
            Some(wav(1, 1, 4_000_000, 16, &pcm, n)),
            Err("sample rate 4000000 Hz"),
        ),
        (
            "zero sample rate",
            Some(wav(1, 1, 0, 16, &pcm, n)),
            Err("sample rate"),
        ),
        (
            "A-law",
            Some(wav(6, 1, 8_000, 8, &pcm, n)),
            Err("not supported"),
        ),
        (
            "64-bit float",
            Some(wav(3, 1, 16_000, 64, &pcm, n)),
            Err("not a valid WAV file"),
        ),
        (
            "12-bit samples",
            Some(wav(1, 1, 16_000, 12, &pcm, n)),
            Err("not"),
        ),
        ("no channels", Some(wav(1, 0, 16_000, 16, &pcm, n)), Err("")),
        (
            "9 channels",
            Some(wav(
                1,
                9,
                16_000,
                16,
                &pcm[..n as usize / 18 * 18],
                n / 18 * 18,
            )),
            Err("9 channels"),
        ),
        (
            "valid, no samples",
            Some(wav(1, 1, 16_000, 16, &[], 0)),
            Err("empty"),
        ),
        ("a directory", None, Err("cannot read WAV file")),
        ("a missing file", None, Err("cannot read WAV file")),
        (
            "32-bit float with NaNs: read as silence there",
            Some(wav(3, 1, 16_000, 32, &float_nan, float_nan.len() as u32)),
            Ok(()),
        ),
    ];
    assert_eq!(cases.len(), CASES_BAD_WAV);
    for (i, (case, bytes, want)) in cases.into_iter().enumerate() {
        let path = env.path(&format!("case-{i}.wav"));
        match bytes {
            Some(b) => std::fs::write(&path, b).unwrap(),
            None if case == "a directory" => std::fs::create_dir(&path).unwrap(),
            None => {}
        }
        let out = env.run(["seal", "--accept-failed", path.to_str().unwrap()]);
        match want {
            Err(words) => {
                refused(case, &out, &[1], words);
                env.nothing_left(case);
            }
            Ok(()) => {
                assert!(
                    out.status.success(),
                    "{case}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                // Accepted; clean up so the next case starts from an empty outbox.
                let id = String::from_utf8(out.stdout).unwrap();
                std::fs::remove_dir_all(env.data().join("outbox").join(id.trim())).unwrap();
            }
        }
    }
}

#[test]
fn hostile_contractor_ids_are_refused_wherever_they_enter() {
    let env = Env::new();
    let proj = env.project();
    let registry = env.path("registry.toml");
    let long = "a".repeat(300);
    let ids: [&str; CASES_BAD_CONTRACTOR_ID] = [
        "../x",
        "a/b",
        "*",
        "%2e%2e",
        "аlice-01",        // Cyrillic a
        "alice\u{2010}01", // Unicode hyphen
        "ａlice-01",       // full-width a
        "",
        &long,
        "ab",
        "-abc",
        "Alice-01",
        "alice 01",
        "alice\n01",
    ];
    let settings = std::fs::read(env.data().join("settings.toml")).unwrap();
    for id in ids {
        let shown = format!("{:?}", id.chars().take(20).collect::<String>());
        // `--contractor=<id>` and `--`, so that ids starting with '-' reach the validation.
        let out = env.run([
            "init",
            &format!("--contractor={id}"),
            "--project",
            proj.join("project.toml").to_str().unwrap(),
            "--trust-lead-key",
            proj.join("lead.pub").to_str().unwrap(),
        ]);
        let err = refused(&format!("init {shown}"), &out, &[1, 2], "contractor id");
        assert!(err.len() < 1000, "the error stays short: {}", err.len());
        let out = env.run([
            "enroll",
            "add",
            "--registry",
            registry.to_str().unwrap(),
            "--",
            id,
        ]);
        refused(
            &format!("enroll add {shown}"),
            &out,
            &[1, 2],
            "contractor id",
        );
        assert!(!registry.exists(), "{shown}: the registry was written");
        assert_eq!(
            std::fs::read(env.data().join("settings.toml")).unwrap(),
            settings,
            "{shown}: the settings changed"
        );
    }
    // NUL cannot be passed in an argument at all; the parser refuses it where it could arrive
    // (files, JSON, the broker's registry).
    assert!(
        "abc\0"
            .parse::<voxseal_core::project::ids::ContractorId>()
            .is_err()
    );
    assert!(
        serde_json::from_str::<voxseal_core::project::ids::ContractorId>("\"ab\\u0000c\"").is_err()
    );
}

#[test]
fn signed_but_invalid_project_configs_are_refused() {
    let env = Env::new();
    let proj = env.project();
    let good = std::fs::read_to_string(proj.join("project.toml")).unwrap();
    let swapped = {
        let other = age::x25519::Identity::generate().to_public().to_string();
        let training = voxseal_core::sealing::keys::recipients_of_identity_file(
            &proj.join("keys/training.key"),
        )
        .unwrap()[0]
            .clone();
        good.replace(&training, &other)
    };
    let cases: [(&str, String, &str); CASES_BAD_CONFIG] = [
        (
            "missing [recipients]",
            good.split("[recipients]").next().unwrap().to_owned(),
            "missing field",
        ),
        (
            "unknown key",
            good.replacen("[project]", "[project]\ncolour = \"red\"", 1),
            "unknown field",
        ),
        ("not TOML", "[project\nname = ".to_owned(), "invalid"),
        ("empty", String::new(), "missing field"),
        (
            "not UTF-8",
            "name = \"\u{FFFD}\"".to_owned() + "\u{0}",
            "invalid",
        ),
        // The same edit with the original signature: refused before it is even parsed.
        (
            "swapped recipient, old signature",
            swapped,
            "does not verify",
        ),
    ];
    for (i, (case, text, want)) in cases.into_iter().enumerate() {
        let dir = env.path(&format!("bad-{i}"));
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("project.toml");
        std::fs::write(&path, &text).unwrap();
        let sig = if case.contains("old signature") {
            std::fs::read_to_string(proj.join("project.toml.sig")).unwrap()
        } else {
            voxseal_core::project::signing::sign(
                &proj.join("keys/lead.key"),
                None,
                text.as_bytes(),
                "test",
            )
            .unwrap()
        };
        std::fs::write(dir.join("project.toml.sig"), sig).unwrap();
        let out = env.run([
            "init",
            "--contractor",
            "alice-01",
            "--project",
            path.to_str().unwrap(),
            "--trust-lead-key",
            proj.join("lead.pub").to_str().unwrap(),
        ]);
        refused(case, &out, &[1], want);
        // The installed project is still the good one.
        assert_eq!(
            std::fs::read_to_string(env.data().join("project.toml")).unwrap(),
            good,
            "{case}"
        );
    }
}

/// A device and the words refusing to wipe it: on Windows, `NUL` has no file metadata at all.
#[cfg(unix)]
const DEVICE: (&str, &str) = ("/dev/null", "not a regular file");
#[cfg(windows)]
const DEVICE: (&str, &str) = ("NUL", "cannot wipe NUL");

/// An argument that is not valid Unicode: stray bytes on Unix, an unpaired surrogate on Windows.
fn not_unicode() -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(vec![b'p', 0xff, 0xfe])
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStringExt;
        OsString::from_wide(&[u16::from(b'p'), 0xD800])
    }
}

#[test]
fn bad_arguments_get_usage_errors_not_panics() {
    let env = Env::new();
    env.project();
    let huge = "p".repeat(100_000);
    let not_utf8 = not_unicode();
    let s = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let rec_from = |source: &str, extra: &[&str]| {
        let mut v = s(&["record", "--source", source, "--fast", "--accept"]);
        v.extend(s(extra));
        v
    };
    let rec = |extra: &[&str]| rec_from("synthetic:speech", extra);
    // (case, arguments, accepted exit codes, words the error must hold)
    let cases: Vec<(&str, Vec<OsString>, &[i32], &str)> = vec![
        ("no command", vec![], &[2], "usage"),
        ("unknown command", s(&["frobnicate"]), &[2], "unrecognized"),
        ("negative seconds", rec(&["--seconds", "-1"]), &[1, 2], ""),
        ("zero seconds", rec(&["--seconds", "0"]), &[1], "positive"),
        ("NaN seconds", rec(&["--seconds", "NaN"]), &[1], "positive"),
        (
            "seconds not a number",
            rec(&["--seconds", "ten"]),
            &[2],
            "invalid value",
        ),
        (
            "tone with no number",
            rec_from("synthetic:tone:abc", &["--seconds", "1"]),
            &[1],
            "tone frequency",
        ),
        (
            "tone at -5 Hz",
            rec_from("synthetic:tone:-5", &["--seconds", "1"]),
            &[1],
            "tone frequency",
        ),
        (
            "empty file source",
            rec_from("file:", &["--seconds", "1"]),
            &[1],
            "needs a path",
        ),
        (
            "unknown source",
            rec_from("tape", &["--seconds", "1"]),
            &[1],
            "unknown source",
        ),
        (
            "prompt with a path",
            rec(&["--seconds", "1", "--prompt", "../x"]),
            &[1],
            "prompt",
        ),
        (
            "100 kB prompt id",
            rec(&["--seconds", "1", "--prompt", &huge]),
            &[1],
            "prompt",
        ),
        (
            "supersedes not a sample id",
            rec(&["--seconds", "1", "--supersedes", "x"]),
            &[1],
            "sample id",
        ),
        (
            "accept and discard",
            rec(&["--discard"]),
            &[2],
            "cannot be used with",
        ),
        (
            "prompt not UTF-8",
            {
                let mut v = rec(&["--seconds", "1", "--prompt"]);
                v.push(not_utf8.clone());
                v
            },
            &[2],
            "UTF-8",
        ),
        (
            "part size below S3's 5 MiB",
            s(&["upload", "--part-size-mib", "4"]),
            &[2],
            "5..=512",
        ),
        (
            "part size overflowing",
            s(&["upload", "--part-size-mib", "99999999999999999999999"]),
            &[2],
            "invalid value",
        ),
        (
            "no part in flight",
            s(&["upload", "--parts-in-flight", "0"]),
            &[2],
            "1..=16",
        ),
        (
            "code valid 0 days",
            s(&[
                "enroll",
                "add",
                "bob-02",
                "--registry",
                "r.toml",
                "--days",
                "0",
            ]),
            &[2],
            "1..=90",
        ),
        (
            "grants of 0 s",
            s(&["dev-stack", "--grant-secs", "0"]),
            &[2],
            "1..=900",
        ),
        (
            "port 70000",
            s(&["dev-stack", "--s3-port", "70000"]),
            &[2],
            "invalid value",
        ),
        ("open without a key", s(&["open", "x"]), &[2], "--identity"),
        (
            "open a missing item",
            s(&["open", "/nonexistent/item", "-i", "/nonexistent/key"]),
            &[1],
            "cannot",
        ),
        (
            "broker over plain http",
            s(&[
                "enroll",
                "join",
                "vxe_x_y",
                "--broker",
                "http://broker.example.com",
            ]),
            &[1],
            "https",
        ),
        (
            "link with a bad escape",
            s(&[
                "enroll",
                "join",
                "voxseal://enroll?broker=https%3A%2F%2Fb&code=%zz",
            ]),
            &[1],
            "escape",
        ),
        (
            "keygen into a missing directory",
            s(&["keygen", "--out", "/nonexistent/dir/k.key"]),
            &[1],
            "nonexistent",
        ),
        (
            "wipe a device",
            s(&["wipe", "--yes", DEVICE.0]),
            &[1],
            DEVICE.1,
        ),
    ];
    assert_eq!(cases.len(), CASES_BAD_ARGS);
    for (case, args, codes, want) in cases {
        let out = env.run(&args);
        refused(case, &out, codes, want);
        env.nothing_left(case);
    }
}

#[cfg(unix)] // RLIMIT_FSIZE through bash's ulimit
#[test]
fn a_write_limit_while_recording_stops_it_with_a_clear_error() {
    // Works without root (the tmpfs disk-full tests in tests/reliability need it): a file size
    // limit of 256 KiB (RLIMIT_FSIZE, with SIGXFSZ ignored) makes the spool's writes fail with
    // EFBIG, the way a full disk makes them fail with ENOSPC.
    let env = Env::new();
    env.project();
    let exe = env!("CARGO_BIN_EXE_voxseal");
    let out = Command::new("bash")
        .arg("-c")
        .arg("ulimit -f 256 && trap '' XFSZ && exec \"$0\" \"$@\"")
        .arg(exe)
        .args([
            "record",
            "--source",
            "synthetic:speech",
            "--fast",
            "--seconds",
            "10",
            "--accept",
        ])
        .env("VOXSEAL_DATA_DIR", env.data())
        .env("VOXSEAL_TRUST_LEAD_KEY", env.path("proj/lead.pub"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = refused("write limit", &out, &[1], "recording stopped");
    assert!(err.contains("File too large"), "{err}");
    env.nothing_left("write limit");
    let _ = (CASES_WRITE_LIMIT, Path::new("."));
}
