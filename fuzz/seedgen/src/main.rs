//! Writes the seed corpora of Voxseal's fuzz targets (fuzz/corpus/<target>/) from the real code:
//! a take recorded from the synthetic source, sealed into an outbox item (manifest, age
//! payloads encrypted to the fuzzing identity) with its workspace audit log; a project config,
//! prompt sets and a lead signature; spool files from the real writer; WAV files in every
//! accepted format; broker requests with the fixture registry's codes and tokens.
//!
//! Usage: `voxseal-fuzz-seedgen [corpus-dir]` (default: fuzz/corpus next to this crate).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "../../src/encode.rs"]
mod encode;

use encode::*;
use voxseal_core::capture::audio::{AudioSource, SyntheticKind, SyntheticSource};
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::dsp::features::FeatureParams;
use voxseal_core::dsp::pcm::MemoryPcm;
use voxseal_core::capture::audio::SourceFactory;
use voxseal_core::capture::recorder::{RecorderOptions, Recording};
use voxseal_core::sealing::seal::Review;
use voxseal_core::store::workspace::Workspace;

struct Corpus {
    root: PathBuf,
    total: u64,
}

impl Corpus {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
        self.total += bytes.len() as u64;
    }
}

fn with_prefix(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(rest);
    v
}

fn project_toml(features_only: bool) -> String {
    format!(
        "[project]\nname = \"fuzz-project\"\nconsent_text = \"I agree to record my voice.\"\nretention_days = 365\n\n\
         [recipients]\ntraining = [\"{AGE_RECIPIENT}\"]\narchive = [\"{AGE_RECIPIENT}\"]\n\n\
         [capture]\nfeatures_only = {features_only}\ntrim_silence = true\nmax_take_s = 60.0\n\n\
         [storage]\nbucket = \"voxseal-fuzz\"\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:9000\"\n\
         kms_key_arn = \"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\"\n\
         broker_url = \"http://127.0.0.1:8787\"\n\n\
         [quality]\nmin_duration_s = 0.2\nmax_duration_s = 30.0\n\n\
         [features]\nn_mels = 40\nn_mfcc = 13\n\n\
         [[prompts]]\nid = \"p1\"\ntext = \"Hello there.\"\n\n\
         [[prompts]]\nid = \"p2\"\ntext = \"The quick brown fox.\"\nnote = \"read slowly\"\n"
    )
}

/// Records a short synthetic take and seals it; returns the outbox item's directory.
fn sealed_item(root: &Path, features_only: bool) -> (PathBuf, PathBuf) {
    let config = ProjectConfig::parse(&project_toml(features_only), "seed").unwrap();
    let (ws, _) = Workspace::open(&root.join(if features_only { "ws-f" } else { "ws" })).unwrap();
    let factory: SourceFactory = Box::new(|| {
        Ok(Box::new(SyntheticSource::new(
            SyntheticKind::Speech,
            16_000,
            Some(0.6),
        )) as Box<dyn AudioSource>)
    });
    let take = Recording::start(factory, RecorderOptions::new(ws.spool_dir()), |_| {})
        .unwrap()
        .wait()
        .unwrap();
    let report = take.analyzer.clone().finish(&config.quality);
    let review = Review {
        prompt_id: Some("p1".parse().unwrap()),
        accept_failed: true,
        ..Default::default()
    };
    let contractor = "seed-01".parse().unwrap();
    let item = ws
        .accept_take(&config, &contractor, take, &report, &review, &mut |_| {})
        .unwrap();
    (item.dir, ws.audit.path().to_owned())
}

fn wav_bytes(spec: hound::WavSpec, frames: usize) -> Vec<u8> {
    let mut cur = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
    for i in 0..frames {
        for c in 0..spec.channels {
            let v = ((i as f32 * 0.05).sin() * 0.5) * if c == 0 { 1.0 } else { 0.5 };
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => w.write_sample(v).unwrap(),
                (_, b) => w
                    .write_sample((v * (1i64 << (b - 1)) as f32) as i32)
                    .unwrap(),
            }
        }
    }
    w.finalize().unwrap();
    cur.into_inner()
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus"));
    let mut c = Corpus { root, total: 0 };
    let tmp = tempfile::tempdir().unwrap();

    // --- a real sealed item: manifest, payloads, audit log -------------------------------------
    let (item, audit_path) = sealed_item(tmp.path(), false);
    let (item_f, _) = sealed_item(tmp.path(), true);
    let manifest = fs::read(item.join("manifest.json")).unwrap();
    c.put("manifest", "sealed.json", &manifest);
    c.put(
        "manifest",
        "features-only.json",
        &fs::read(item_f.join("manifest.json")).unwrap(),
    );
    let raw = fs::read(item.join("raw.wav.age")).unwrap();
    let feats = fs::read(item.join("features.safetensors.age")).unwrap();
    // age_open raw mode: byte 0 = flags (bits 1-2 expected kind), then the file.
    c.put(
        "age_open",
        "raw-wav-age",
        &with_prefix(&[AGE_RAW | (1 << 1)], &raw),
    );
    c.put(
        "age_open",
        "features-age",
        &with_prefix(&[AGE_RAW | (2 << 1)], &feats),
    );
    c.put(
        "age_open",
        "features-age-unchecked",
        &with_prefix(&[AGE_RAW], &feats),
    );
    // age_open structured mode: plaintexts the harness encrypts itself.
    let small_wav = wav_bytes(
        hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        },
        200,
    );
    let mut st = Vec::new();
    let pcm = MemoryPcm::new(
        (0..1600).map(|i| (i as f32 * 0.03).sin() * 0.3).collect(),
        16_000,
    );
    voxseal_core::dsp::features::write_safetensors(
        &pcm,
        &FeatureParams {
            n_mels: 8,
            n_mfcc: 4,
            ..FeatureParams::default()
        },
        &BTreeMap::from([("sample_id".to_owned(), "seed".to_owned())]),
        &mut st,
    )
    .unwrap();
    assert!(st.len() < 8192, "small safetensors seed: {}", st.len());
    for (name, flags, mutation, plaintext) in [
        ("plain-wav", AGE_STRUCTURED | (1 << 1), 0u8, &small_wav[..]),
        ("plain-safetensors", AGE_STRUCTURED | (2 << 1), 0, &st[..]),
        ("plain-safetensors-guess", AGE_STRUCTURED, 0, &st[..]),
        (
            "plain-flipped",
            AGE_STRUCTURED | (1 << 1),
            1,
            &small_wav[..],
        ),
        ("plain-empty", AGE_STRUCTURED, 0, &[][..]),
    ] {
        let input = AgeInput {
            flags,
            mutation,
            at: 100,
            plaintext: plaintext.to_vec(),
        };
        c.put("age_open", name, &input.encode());
    }

    // audit_line raw mode: the workspace's real log, and a torn copy.
    let audit = fs::read(&audit_path).unwrap();
    c.put(
        "audit_line",
        "workspace-log",
        &with_prefix(&[AUDIT_RAW], &audit),
    );
    c.put(
        "audit_line",
        "torn-log",
        &with_prefix(&[AUDIT_RAW], &audit[..audit.len() - 20]),
    );
    let one_line = &audit[..audit.iter().position(|&b| b == b'\n').unwrap() + 1];
    c.put(
        "audit_line",
        "one-line",
        &with_prefix(&[AUDIT_RAW], one_line),
    );
    // audit_line structured mode.
    let line = |flags: u8, event: &str| AuditLineSpec {
        flags,
        event: event.as_bytes().to_vec(),
        ..AuditLineSpec::default()
    };
    c.put(
        "audit_line",
        "chain",
        &encode_audit(&[
            line(0, "take.sealed"),
            line(0, "upload.done"),
            line(0, "take.wiped"),
        ]),
    );
    c.put(
        "audit_line",
        "chain-torn",
        &encode_audit(&[line(0, "a"), line(AuditLineSpec::TORN, "b")]),
    );
    c.put(
        "audit_line",
        "explicit",
        &encode_audit(&[
            line(0, "a"),
            AuditLineSpec {
                flags: AuditLineSpec::EXPLICIT_SEQ | AuditLineSpec::DETAILS | AuditLineSpec::TIME,
                seq: 5,
                event: b"b".to_vec(),
                details: br#"{"sample":"x","bytes":12}"#.to_vec(),
                time: b"2026-13-99".to_vec(),
                ..AuditLineSpec::default()
            },
            line(AuditLineSpec::WRONG_PREV, "c"),
            line(AuditLineSpec::FLIP, "d"),
            AuditLineSpec {
                flags: AuditLineSpec::RAW,
                raw: b"not a line".to_vec(),
                ..AuditLineSpec::default()
            },
        ]),
    );

    // --- project config, prompt sets, signatures ----------------------------------------------
    let toml = project_toml(false);
    c.put(
        "project_config",
        "project.toml",
        &with_prefix(&[CONFIG_TOML], toml.as_bytes()),
    );
    let parsed = ProjectConfig::parse(&toml, "seed").unwrap();
    c.put(
        "project_config",
        "project-full.toml",
        &with_prefix(&[CONFIG_TOML], parsed.to_toml().as_bytes()),
    );
    c.put(
        "project_config",
        "project-minimal.toml",
        &with_prefix(
            &[CONFIG_TOML],
            format!(
                "[project]\nname = \"demo\"\n[recipients]\ntraining = [\"{AGE_RECIPIENT}\"]\n[capture]\nfeatures_only = true\n"
            )
            .as_bytes(),
        ),
    );
    c.put(
        "project_config",
        "prompts.csv",
        &with_prefix(
            &[CONFIG_PROMPTS],
            b"id,text,note\np1,\"Hello, world.\",say it slowly\np2,Second one.,\n\"p3\",\"Quote \"\"this\"\"\",\n",
        ),
    );
    c.put(
        "project_config",
        "prompts.txt",
        &with_prefix(&[CONFIG_PROMPTS], b"# my prompts\nFirst.\n\nSecond one.\n"),
    );
    let keys = tmp.path().join("keys");
    fs::create_dir_all(&keys).unwrap();
    voxseal_core::project::signing::generate_lead_key(&keys.join("lead.key"), &keys.join("lead.pub"), None)
        .unwrap();
    let sig =
        voxseal_core::project::signing::sign(&keys.join("lead.key"), None, toml.as_bytes(), "seed").unwrap();
    let pk = fs::read(keys.join("lead.pub")).unwrap();
    c.put(
        "project_config",
        "signed",
        &encode_signature_input(&pk, sig.as_bytes(), toml.as_bytes()),
    );

    // --- spool ---------------------------------------------------------------------------------
    let spool_dir = tmp.path().join("spool");
    let mut w = voxseal_core::capture::spool::SpoolWriter::create(
        &spool_dir,
        &voxseal_core::project::ids::TakeId::generate(),
        16_000,
    )
    .unwrap();
    w.write(&[0.25; 300]).unwrap();
    let take = w.finish().unwrap();
    c.put(
        "spool_reader",
        "foreign-key",
        &with_prefix(&[SPOOL_RAW, 2], &fs::read(take.path()).unwrap()),
    );
    c.put(
        "spool_reader",
        "not-a-spool",
        &with_prefix(&[SPOOL_RAW, 0], b"VXSPOOL\x01\x80\x3e\x00\x00\x01\x00"),
    );
    for (name, base, ops) in [
        ("base0", 0u8, vec![]),
        ("base2", 2, vec![]),
        ("base5", 5, vec![]),
        ("flip", 2, vec![SpoolOp::Flip { arg: 70, val: 3 }]),
        ("dup", 5, vec![SpoolOp::DupRecord { arg: 1 }]),
        ("swap", 5, vec![SpoolOp::SwapRecords { arg: 0, val: 1 }]),
        ("drop-last", 4, vec![SpoolOp::DropRecord { arg: 1 }]),
        ("cut", 3, vec![SpoolOp::Truncate { arg: 1000 }]),
        ("trailing", 1, vec![SpoolOp::Append { val: 7 }]),
    ] {
        c.put(
            "spool_reader",
            name,
            &SpoolInput { base, buf: 2, ops }.encode(),
        );
    }

    // --- WAV -----------------------------------------------------------------------------------
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/features");
    c.put(
        "wav_reader",
        "tiny.wav",
        &fs::read(fixtures.join("tiny.wav")).unwrap(),
    );
    let mut w = voxseal_core::sealing::wav::Pcm16Writer::new(Vec::new(), 16_000, 100).unwrap();
    w.write(&[0.1; 100]).unwrap();
    c.put("wav_reader", "pcm16-writer.wav", &w.finish().unwrap());
    for (fmt, bits, ch) in [
        (hound::SampleFormat::Int, 8, 1),
        (hound::SampleFormat::Int, 24, 2),
        (hound::SampleFormat::Int, 32, 1),
        (hound::SampleFormat::Float, 32, 2),
        (hound::SampleFormat::Int, 16, 6),
    ] {
        let spec = hound::WavSpec {
            channels: ch,
            sample_rate: 44_100,
            bits_per_sample: bits,
            sample_format: fmt,
        };
        c.put(
            "wav_reader",
            &format!("{fmt:?}{bits}-{ch}ch.wav"),
            &wav_bytes(spec, 40),
        );
    }

    // --- broker requests -----------------------------------------------------------------------
    let json_ct = BrokerInput::HAS_CONTENT_TYPE; // index 0: application/json
    let req = |route: u8, headers: u8, auth: &str, body: &str| BrokerInput {
        route,
        headers,
        authorization: auth.as_bytes().to_vec(),
        body: body.as_bytes().to_vec(),
    };
    let auth = BrokerInput::HAS_AUTHORIZATION;
    for (name, r) in [
        (
            "enroll",
            req(
                BrokerInput::ENROLL,
                json_ct,
                "",
                &format!("{{\"code\":\"{BROKER_CODE}\"}}"),
            ),
        ),
        (
            "enroll-upper",
            req(
                BrokerInput::ENROLL,
                0,
                "",
                &format!("{{\"code\":\" {} \"}}", BROKER_CODE.to_uppercase()),
            ),
        ),
        (
            "enroll-used",
            req(
                BrokerInput::ENROLL,
                json_ct,
                "",
                &format!("{{\"code\":\"{BROKER_CODE_USED}\"}}"),
            ),
        ),
        (
            "enroll-expired",
            req(
                BrokerInput::ENROLL,
                json_ct,
                "",
                &format!("{{\"code\":\"{BROKER_CODE_EXPIRED}\"}}"),
            ),
        ),
        (
            "enroll-text",
            req(BrokerInput::ENROLL, 1 | (3 << 1), "", "{\"code\":1}"),
        ),
        (
            "sessions",
            req(
                BrokerInput::SESSIONS,
                auth,
                &format!("Bearer {BROKER_TOKEN}"),
                "",
            ),
        ),
        (
            "sessions-json",
            req(
                BrokerInput::SESSIONS,
                auth | json_ct,
                &format!("bearer  {BROKER_TOKEN}"),
                "{}",
            ),
        ),
        (
            "sessions-revoked",
            req(
                BrokerInput::SESSIONS,
                auth,
                &format!("Bearer {BROKER_TOKEN_REVOKED}"),
                " \n",
            ),
        ),
        ("sessions-noauth", req(BrokerInput::SESSIONS, 0, "", "")),
        ("healthz", req(2 | (2 << 5), 0, "", "")),
        ("method", req(2 | (2 << 2), 0, "", "")),
    ] {
        c.put("broker_request", name, &r.encode());
    }

    eprintln!("seeds: {} bytes under {}", c.total, c.root.display());
    assert!(c.total < 1 << 20, "seed corpora must stay under 1 MiB");
}
