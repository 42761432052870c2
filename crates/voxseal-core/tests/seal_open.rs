//! The laptop pipeline end to end in one process: record (synthetic source) -> review ->
//! seal into the outbox -> open with identity files; and every way a sealed file can be damaged
//! or substituted, each of which must be refused with a clear error and no output.

use std::fs;
use std::path::{Path, PathBuf};

use voxseal_core::capture::audio::SourceFactory;
use voxseal_core::capture::audio::{AudioSource, SyntheticKind, SyntheticSource};
use voxseal_core::capture::recorder::{RecordedTake, RecorderOptions, Recording};
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::project::ids::ContractorId;
use voxseal_core::project::manifest::PayloadKind;
use voxseal_core::sealing::open::{OpenError, open_file, open_item};
use voxseal_core::store::outbox::OutboxItem;
use voxseal_core::store::take::{AcceptRefused, Acceptance, TakeInReview};
use voxseal_core::store::workspace::Workspace;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    ws: Workspace,
    config: ProjectConfig,
    contractor: ContractorId,
}

fn fixture(features_only: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let training =
        voxseal_core::sealing::keys::generate_identity_file(&root.join("training.key"), "t")
            .unwrap();
    let archive =
        voxseal_core::sealing::keys::generate_identity_file(&root.join("archive.key"), "a")
            .unwrap();
    let text = format!(
        "[project]\nname = \"test-project\"\n[recipients]\ntraining = [\"{training}\"]\narchive = [\"{archive}\"]\n\
         [capture]\nfeatures_only = {features_only}\n[[prompts]]\nid = \"p1\"\ntext = \"Hello there.\"\n"
    );
    let config = ProjectConfig::parse(&text, "test").unwrap();
    let (mut ws, _) = Workspace::open(&root.join("data")).unwrap();
    // Installed and signed, as sealing hashes the installed config into the manifest.
    let lead = voxseal_core::project::signing::generate_lead_key(
        &root.join("lead.key"),
        &root.join("lead.pub"),
        None,
    )
    .unwrap();
    let sig =
        voxseal_core::project::signing::sign(&root.join("lead.key"), None, text.as_bytes(), "t")
            .unwrap();
    fs::write(root.join("project.toml"), &text).unwrap();
    fs::write(root.join("project.toml.sig"), sig).unwrap();
    ws.trust(lead);
    assert_eq!(
        ws.install_project(&root.join("project.toml")).unwrap(),
        config
    );
    Fixture {
        root,
        ws,
        config,
        contractor: "tester-01".parse().unwrap(),
        _dir: dir,
    }
}

fn record(f: &Fixture, rate: u32, seconds: f64) -> RecordedTake {
    let factory: SourceFactory = Box::new(move || {
        Ok(Box::new(SyntheticSource::new(
            SyntheticKind::Speech,
            rate,
            Some(seconds),
        )) as Box<dyn AudioSource>)
    });
    Recording::start(factory, RecorderOptions::new(f.ws.spool_dir()), |_| {})
        .unwrap()
        .wait()
        .unwrap()
}

/// A take of prompt p1, under review.
fn review(f: &Fixture, rate: u32, seconds: f64) -> TakeInReview {
    let take = record(f, rate, seconds);
    f.ws.review_take(take, Some("p1".parse().unwrap()), &f.config)
        .unwrap()
}

fn accept(f: &Fixture, take: TakeInReview, acceptance: &Acceptance) -> OutboxItem {
    take.accept(&f.ws, &f.config, &f.contractor, acceptance, &mut |_| {})
        .unwrap()
}

fn seal(f: &Fixture, rate: u32, seconds: f64) -> OutboxItem {
    accept(f, review(f, rate, seconds), &Acceptance::default())
}

fn ids(f: &Fixture, names: &[&str]) -> Vec<Box<dyn age::Identity>> {
    names
        .iter()
        .flat_map(|n| voxseal_core::sealing::keys::load_identities(&f.root.join(n)).unwrap())
        .collect()
}

#[test]
fn record_seal_open_round_trip() {
    let f = fixture(false);
    let item = seal(&f, 48_000, 5.0);
    let m = &item.manifest;
    assert_eq!(m.payloads.len(), 2);
    assert_eq!(m.contractor.as_str(), "tester-01");
    assert_eq!(m.prompt_id.as_ref().unwrap().as_str(), "p1");
    assert!(
        m.audio.kept.0 > 0,
        "leading silence trimmed: {:?}",
        m.audio.kept
    );
    assert_eq!(
        f.ws.raw_on_machine().unwrap().spool_takes,
        0,
        "spool wiped after sealing"
    );
    let left = voxseal_core::capture::spool::files(&f.ws.spool_dir()).unwrap();
    assert!(left.is_empty(), "{left:?}");

    // The manifest holds no audio: it is small and has no sample arrays.
    let manifest_text = fs::read_to_string(item.dir.join("manifest.json")).unwrap();
    assert!(
        manifest_text.len() < 8 * 1024,
        "{} bytes",
        manifest_text.len()
    );

    // Training key opens features only; archive key opens raw only.
    let out = f.root.join("out");
    fs::create_dir(&out).unwrap();
    let (_, results) = open_item(&item.dir, &ids(&f, &["training.key"]), Some(&out)).unwrap();
    assert!(
        matches!(results[0], Err(OpenError::WrongIdentity { .. })),
        "raw is not for the data team"
    );
    let features = results[1].as_ref().unwrap();
    assert!(features.verified);
    let bytes = fs::read(features.output.as_ref().unwrap()).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("log_mel").unwrap().shape()[1], 80);
    assert_eq!(
        st.tensor("mfcc").unwrap().shape()[0] as u64,
        m.features.frames
    );

    let (_, results) = open_item(&item.dir, &ids(&f, &["archive.key"]), Some(&out)).unwrap();
    let raw = results[0].as_ref().unwrap();
    let mut wav = hound::WavReader::open(raw.output.as_ref().unwrap()).unwrap();
    assert_eq!(wav.spec().sample_rate, 48_000);
    assert_eq!(wav.len() as u64, m.audio.samples);
    // The WAV holds the kept window of what was recorded.
    let want = SyntheticSource::generate(SyntheticKind::Speech, 48_000, 5 * 48_000);
    let got: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    let start = m.audio.kept.0 as usize;
    for (i, g) in got.iter().enumerate().step_by(101) {
        assert_eq!(*g, voxseal_core::sealing::wav::f32_to_i16(want[start + i]));
    }
    // The audit log tells the story and verifies.
    let events: Vec<String> =
        f.ws.audit
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
    assert_eq!(
        events,
        [
            "project.installed",
            "take.recorded",
            "take.sealed",
            "spool.wiped"
        ]
    );
}

#[test]
fn features_only_never_seals_raw_audio() {
    let f = fixture(true);
    let item = seal(&f, 16_000, 3.0);
    assert!(item.manifest.features_only);
    assert_eq!(item.manifest.payloads.len(), 1);
    assert!(!item.dir.join("raw.wav.age").exists());
    assert_eq!(f.ws.raw_on_machine().unwrap().total(), 0);
}

#[test]
fn a_failing_take_is_refused_unless_accepted_and_stays_reviewable() {
    let f = fixture(false);
    let factory: SourceFactory = Box::new(|| {
        Ok(Box::new(SyntheticSource::new(
            SyntheticKind::Tone {
                freq: 1000.0,
                amp: 0.0,
            },
            16_000,
            Some(2.0),
        )) as Box<dyn AudioSource>)
    });
    let take = Recording::start(factory, RecorderOptions::new(f.ws.spool_dir()), |_| {})
        .unwrap()
        .wait()
        .unwrap();
    let take = f.ws.review_take(take, None, &f.config).unwrap();
    let err = take
        .accept(
            &f.ws,
            &f.config,
            &f.contractor,
            &Acceptance::default(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(err.to_string().contains("the take failed speech"), "{err}");
    let AcceptRefused::FailedChecks { take } = *err else {
        panic!("{err}")
    };
    assert!(
        take.take().spool.path().exists(),
        "the take is handed back, still in the spool"
    );
    assert_eq!(f.ws.outbox.list().unwrap().0.len(), 0, "nothing was sealed");
    let despite = Acceptance {
        despite_failed_checks: true,
        ..Default::default()
    };
    let item = accept(&f, take, &despite);
    assert!(
        item.manifest
            .accepted_despite
            .contains(&"speech".to_owned())
    );
    assert_eq!(f.ws.outbox.list().unwrap().0.len(), 1);
}

/// Splits an age file into (header incl. nonce, payload chunks of 64 KiB + 16).
fn age_chunks(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let marker = b"\n--- ";
    let pos = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap();
    let eol = pos + 1 + bytes[pos + 1..].iter().position(|&b| b == b'\n').unwrap();
    let header_end = eol + 1 + 16; // header line, then the 16-byte payload nonce
    let chunks = bytes[header_end..]
        .chunks(64 * 1024 + 16)
        .map(<[u8]>::to_vec)
        .collect();
    (bytes[..header_end].to_vec(), chunks)
}

fn expect_refused(
    path: &Path,
    ids: &[Box<dyn age::Identity>],
    sha: &str,
    out: &Path,
    what: &str,
) -> OpenError {
    let err = open_file(path, ids, Some((PayloadKind::Raw, sha)), Some(out))
        .err()
        .unwrap_or_else(|| panic!("{what}: opened"));
    assert_eq!(
        fs::read_dir(out).unwrap().count(),
        0,
        "{what}: no output left behind"
    );
    err
}

#[test]
fn every_age_failure_class_is_refused_with_no_output() {
    let f = fixture(false);
    let item = seal(&f, 48_000, 5.0);
    let path = item.dir.join("raw.wav.age");
    let sha = item
        .manifest
        .payload(PayloadKind::Raw)
        .unwrap()
        .sha256
        .clone();
    let original = fs::read(&path).unwrap();
    let (header, chunks) = age_chunks(&original);
    assert!(chunks.len() >= 4, "{} chunks", chunks.len());
    let archive = ids(&f, &["archive.key"]);
    let out = f.root.join("out");
    fs::create_dir(&out).unwrap();
    let join = |h: &[u8], cs: &[Vec<u8>]| -> Vec<u8> {
        let mut v = h.to_vec();
        for c in cs {
            v.extend_from_slice(c);
        }
        v
    };
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for keep in 0..chunks.len() {
        cases.push((
            format!("truncated after chunk {keep}"),
            join(&header, &chunks[..keep]),
        ));
    }
    cases.push((
        "truncated mid-chunk".into(),
        original[..original.len() - 100].to_vec(),
    ));
    cases.push((
        "header only, no nonce".into(),
        original[..header.len() - 16].to_vec(),
    ));
    for pos in [
        5,
        30,
        header.len() - 20,
        header.len() - 5,
        header.len() + 10,
        original.len() / 2,
        original.len() - 1,
    ] {
        let mut b = original.clone();
        b[pos] ^= 0x04;
        cases.push((format!("bit flipped at {pos}"), b));
    }
    let mut swapped = chunks.clone();
    swapped.swap(0, 1);
    cases.push(("chunks swapped".into(), join(&header, &swapped)));
    let mut dup = chunks.clone();
    dup.insert(1, chunks[1].clone());
    cases.push(("chunk duplicated".into(), join(&header, &dup)));
    let mut dropped = chunks.clone();
    dropped.remove(1);
    cases.push(("chunk dropped".into(), join(&header, &dropped)));
    let mut trailing = original.clone();
    trailing.extend_from_slice(b"extra");
    cases.push(("trailing data".into(), trailing));
    cases.push(("empty file".into(), Vec::new()));
    cases.push(("not age".into(), b"RIFF\0\0\0\0WAVEfmt ".to_vec()));
    for (what, bytes) in &cases {
        fs::write(&path, bytes).unwrap();
        let err = expect_refused(&path, &archive, &sha, &out, what);
        let msg = err.to_string();
        assert!(!msg.is_empty() && msg.len() < 400, "{what}: {msg}");
    }
    // Wrong identity.
    fs::write(&path, &original).unwrap();
    let err = expect_refused(
        &path,
        &ids(&f, &["training.key"]),
        &sha,
        &out,
        "wrong identity",
    );
    assert!(matches!(err, OpenError::WrongIdentity { .. }), "{err}");
    // A different valid ciphertext (substituted file) fails the manifest hash.
    let other = seal(&f, 48_000, 5.0);
    fs::copy(other.dir.join("raw.wav.age"), &path).unwrap();
    let err = expect_refused(&path, &archive, &sha, &out, "substituted");
    assert!(matches!(err, OpenError::HashMismatch { .. }), "{err}");
    // And the original still opens.
    fs::write(&path, &original).unwrap();
    assert!(open_file(&path, &archive, Some((PayloadKind::Raw, &sha)), Some(&out)).is_ok());
}

#[test]
fn damaged_manifests_and_states_are_reported_not_hidden() {
    let f = fixture(false);
    let a = seal(&f, 16_000, 2.0);
    let b = seal(&f, 16_000, 2.0);
    let mpath = a.dir.join("manifest.json");
    let good = fs::read_to_string(&mpath).unwrap();
    for (what, text) in [
        ("truncated", good[..good.len() / 2].to_owned()),
        (
            "unknown schema",
            good.replace("voxseal.manifest/2", "voxseal.manifest/9"),
        ),
        ("unknown field", good.replacen('{', "{\"extra\": 1,", 1)),
        ("bad contractor", good.replace("tester-01", "../../etc")),
        (
            "bad hash",
            good.replacen("\"sha256\": \"", "\"sha256\": \"zz", 1),
        ),
    ] {
        fs::write(&mpath, &text).unwrap();
        let (items, damaged) = f.ws.outbox.list().unwrap();
        assert_eq!(items.len(), 1, "{what}: the other item is still listed");
        assert_eq!(items[0].manifest.sample_id, b.manifest.sample_id);
        assert_eq!(damaged.len(), 1, "{what}");
        assert!(
            open_item(&a.dir, &ids(&f, &["training.key"]), None).is_err(),
            "{what}"
        );
    }
}

#[test]
fn a_crash_during_sealing_leaves_nothing_half_written() {
    let f = fixture(false);
    // Simulate a crash mid-seal: a staging directory with a partial ciphertext.
    let staging = f.ws.outbox.dir().join(".staging-sample-0000");
    fs::create_dir_all(&staging).unwrap();
    fs::write(
        staging.join("raw.wav.age"),
        b"age-encryption.org/v1 partial",
    )
    .unwrap();
    // And an orphaned spool file whose key died with the process.
    fs::create_dir_all(f.ws.spool_dir()).unwrap();
    fs::write(f.ws.spool_dir().join("take-0123.spool"), b"VXSPOOL\x01....").unwrap();
    let (ws, report) = Workspace::open(f.ws.root()).unwrap();
    assert_eq!(report.swept_staging.len(), 1);
    assert_eq!(report.swept_spool.len(), 1);
    assert!(!staging.exists());
    assert_eq!(ws.outbox.list().unwrap().0.len(), 0);
    let events: Vec<String> = ws
        .audit
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["project.installed", "outbox.swept", "spool.swept"]);
}

/// Issue 11 section 3: the manifest records the SHA-256 of the installed, signed config; a take
/// reviewed under a config that is no longer the installed one is not sealed.
#[test]
fn the_manifest_records_the_installed_configs_hash() {
    use sha2::Digest;
    let f = fixture(false);
    let item = seal(&f, 16_000, 2.0);
    let installed = fs::read(f.ws.project_path()).unwrap();
    assert_eq!(
        item.manifest.config_sha256,
        hex::encode(sha2::Sha256::digest(&installed))
    );
    let other = ProjectConfig::parse(
        &f.config.to_toml().replace("test-project", "other-project"),
        "other",
    )
    .unwrap();
    let take = review(&f, 16_000, 2.0);
    let err = take
        .accept(
            &f.ws,
            &other,
            &f.contractor,
            &Acceptance::default(),
            &mut |_| {},
        )
        .unwrap_err();
    let AcceptRefused::Sealing { error, take } = *err else {
        panic!("{err}")
    };
    assert!(take.take().spool.path().exists(), "handed back");
    assert!(
        matches!(
            error,
            voxseal_core::sealing::seal::SealError::ConfigChanged(_)
        ),
        "{error}"
    );
}

/// Issue 12 finding 5: the manifest's fields are sealed inside both payloads; `open_item`
/// refuses an edited manifest (naming the field), and keeps no output.
#[test]
fn an_edited_manifest_is_refused_by_either_payload() {
    let f = fixture(false);
    let item = seal(&f, 16_000, 2.0);
    let mpath = item.dir.join("manifest.json");
    let good = fs::read_to_string(&mpath).unwrap();
    let all = ids(&f, &["training.key", "archive.key"]);
    let (_, results) = open_item(&item.dir, &all, None).unwrap();
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|o| o.bound && o.verified))
    );

    let out = f.root.join("out");
    fs::create_dir(&out).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["contractor"] = "mallory-01".into();
    fs::write(&mpath, serde_json::to_vec(&v).unwrap()).unwrap();
    let (_, results) = open_item(&item.dir, &all, Some(&out)).unwrap();
    for r in results {
        match r {
            Err(OpenError::BindingMismatch { field, .. }) => assert_eq!(field, "contractor"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0, "no output kept");

    // Passing it off as a manifest without a binding (the unreleased /1 schema) is refused
    // before any payload is opened: only /2 is read.
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    let o = v.as_object_mut().unwrap();
    o.insert("schema".into(), "voxseal.manifest/1".into());
    o.remove("config_sha256");
    o.remove("audit_anchor");
    fs::write(&mpath, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = open_item(&item.dir, &all, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("schema \"voxseal.manifest/1\" is not supported"),
        "{err}"
    );
}

/// Issue 12 finding 14: each manifest anchors the audit log's head at sealing; cutting the log
/// back past it, or rewriting it, no longer holds the anchor.
#[test]
fn the_manifest_anchors_the_audit_log() {
    use voxseal_core::store::audit::{check_anchor, verify};
    let f = fixture(false);
    let take = review(&f, 16_000, 2.0);
    let before = f.ws.audit.head().unwrap();
    let item = accept(&f, take, &Acceptance::default());
    let anchor = item.manifest.audit_anchor.clone();
    assert_eq!(anchor, before, "the head when sealing began: take.recorded");
    assert_eq!(anchor.seq, 2);
    let log = fs::read_to_string(f.ws.audit.path()).unwrap();
    let report = verify(f.ws.audit.path()).unwrap();
    check_anchor(&report, &anchor).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let cut = lines[..anchor.seq as usize - 1].join("\n") + "\n";
    fs::write(f.ws.audit.path(), cut).unwrap();
    let report = verify(f.ws.audit.path()).unwrap();
    assert!(report.is_intact(), "the chain alone cannot tell");
    let err = check_anchor(&report, &anchor).unwrap_err();
    assert!(err.contains("deleted from its end"), "{err}");
}

/// Issue 15 §1: one take lifecycle. Review logs `take.recorded` with the same fields for every
/// caller; accepting a second take of a prompt supersedes the first and moves the prompt's
/// progress on; discarding logs why, typed.
#[test]
fn the_take_lifecycle_logs_supersedes_and_keeps_prompt_progress() {
    use voxseal_core::store::audit_event::DiscardReason;
    use voxseal_core::store::progress::{Progress, PromptStatus};
    let f = fixture(false);
    let first = seal(&f, 16_000, 2.0);
    let second = seal(&f, 16_000, 2.0);
    assert_eq!(
        second.manifest.supersedes.as_ref(),
        Some(&first.manifest.sample_id)
    );
    let p1 = "p1".parse().unwrap();
    let progress = Progress::load(f.ws.root(), &f.contractor, "test-project").unwrap();
    let state = progress.get(&p1);
    assert_eq!(state.status, PromptStatus::Accepted);
    assert_eq!(state.sample_id.as_ref(), Some(&second.manifest.sample_id));
    assert_eq!(state.versions, 2);

    let take = review(&f, 16_000, 1.0);
    let spool = take.take().spool.path().to_owned();
    take.discard(&f.ws, DiscardReason::Rerecorded).unwrap();
    assert!(!spool.exists());
    let entries = f.ws.audit.entries().unwrap();
    let recorded = entries.iter().find(|e| e.event == "take.recorded").unwrap();
    let mut fields: Vec<&str> = (recorded.details.as_object().unwrap().keys())
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "dropped",
            "duration_s",
            "interrupted",
            "prompt",
            "reached_limit",
            "sample_rate",
            "source",
            "take"
        ]
    );
    let discarded = entries.last().unwrap();
    assert_eq!(discarded.event, "take.discarded");
    assert_eq!(discarded.details["why"], "rerecorded");
}

/// A crash between an item's commit into the outbox and its `take.sealed` line (made here by
/// putting back the log and progress file of before the sealing, and a spool file as the crash
/// leaves it): the next open logs the item, records the prompt's progress, and wipes the spool
/// file as that of a sealed take, not a lost one.
#[test]
fn an_item_a_crash_left_unlogged_is_logged_by_the_next_open() {
    use voxseal_core::store::progress::Progress;
    let f = fixture(false);
    let first = seal(&f, 16_000, 1.0);
    let progress = fs::read(f.ws.root().join("progress.json")).unwrap();
    let take = review(&f, 16_000, 1.0);
    let spool = take.take().spool.path().to_owned();
    let anchor = f.ws.audit.head().unwrap();
    let second = accept(&f, take, &Acceptance::default());
    let lines = String::from_utf8(fs::read(f.ws.audit.path()).unwrap()).unwrap();
    let upto: Vec<&str> = lines.lines().take(anchor.seq as usize).collect();
    fs::write(f.ws.audit.path(), upto.join("\n") + "\n").unwrap();
    fs::write(f.ws.root().join("progress.json"), &progress).unwrap();
    fs::write(&spool, b"VXSPOOL\x01....").unwrap();

    let (ws, report) = Workspace::open(f.ws.root()).unwrap();
    assert_eq!(report.logged_after_crash.len(), 1);
    assert_eq!(report.logged_after_crash[0], second.manifest.sample_id);
    assert!(report.swept_spool.is_empty(), "{:?}", report.swept_spool);
    assert!(!spool.exists());
    let entries = ws.audit.entries().unwrap();
    let sealed: Vec<_> = (entries.iter())
        .filter(|e| e.event == "take.sealed")
        .collect();
    assert_eq!(sealed.len(), 2);
    assert_eq!(
        sealed[1].details["sample"],
        second.manifest.sample_id.as_str()
    );
    assert_eq!(sealed[1].details["logged_after_crash"], true);
    let last = entries.last().unwrap();
    assert_eq!(
        last.event, "spool.wiped",
        "a sealed take's spool file is no lost take"
    );
    assert_eq!(last.details["take"], second.manifest.take_id.as_str());
    assert!(sealed[0].details.get("logged_after_crash").is_none());
    let p1 = "p1".parse().unwrap();
    let progress = Progress::load(ws.root(), &f.contractor, "test-project").unwrap();
    assert_eq!(
        progress.current_sample(&p1).as_ref(),
        Some(&second.manifest.sample_id)
    );
    assert_eq!(second.manifest.supersedes, Some(first.manifest.sample_id));
    // Once logged, the next open finds nothing to do.
    let (_, report) = Workspace::open(f.ws.root()).unwrap();
    assert!(report.logged_after_crash.is_empty());
}
