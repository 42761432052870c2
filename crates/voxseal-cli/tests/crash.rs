//! The real `voxseal` binary killed at many points while recording, sealing and uploading.
//!
//! Two ways to stop it dead: debug builds abort at named points when `VOXSEAL_FAULT_KILL_AT`
//! says so (`voxseal_core::fault`: exact steps such as "after spool chunk 4" or "after S3
//! confirmed the object, before the state was saved"), and SIGKILL after seeded random delays
//! (wherever the process happens to be). No destructor, flush or cleanup runs in either case.
//!
//! After every kill the test restarts as a user would (`voxseal outbox`, which opens the data
//! directory and sweeps crash leftovers; `voxseal audit verify`; `voxseal upload`) and checks:
//! - no plaintext audio or features anywhere under the data directory: no WAV or safetensors
//!   header and no stretch of the synthetic voice's samples, as f32 (the spool's plaintext) or
//!   16-bit (the sealed WAV's), in any file: spool, outbox, state, audit log, temp files;
//! - no take accepted before the kill is gone, and the interrupted one is accounted for: lost
//!   and reported (a spool file swept, a note on stderr, a `spool.swept` event), sealed, or its
//!   upload resumed (`upload.resumed`); no spool file or staging directory survives a restart;
//! - payloads are deleted only once uploaded, and the audit log verifies (a torn last line is
//!   recovered with an `audit.recovered` event);
//! - in the end every accepted take is uploaded exactly once: exactly its three objects, each
//!   byte for byte what was sealed, no other object, and no unfinished multipart upload.
//!
//! Unix only: it tells an abort from a kill by the signal that ended the process
//! (docs/windows.md lists what runs under Wine).
#![cfg(unix)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{DevStack, KILL_AT, PlaintextScanner, Rng, run, voxseal};
use voxseal_cloud::object_key::{ObjectKind, object_key};
use voxseal_core::store::key_layout::is_checkpoint;
use voxseal_core::store::outbox::{ItemStatus, Outbox, OutboxItem};

/// Kill points while recording and sealing (`kills_while_recording_and_sealing`).
const CASES_KILL_RECORD_SEAL: usize = 11;
/// Kill points while uploading (`kills_while_uploading_resume_to_exactly_one_copy`).
const CASES_KILL_UPLOAD: usize = 8;
/// SIGKILLs after random delays (`sigkill_at_random_moments`).
const CASES_KILL_RANDOM: usize = 24;

const RECORD_3S: [&str; 9] = [
    "record",
    "--source",
    "synthetic:speech",
    "--fast",
    "--seconds",
    "3",
    "--prompt",
    "p001",
    "--accept",
];

/// What became of the take or upload a kill interrupted, as the restart found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fate {
    /// Never accepted: its spool file (and any half-sealed item) was swept and reported.
    Lost,
    /// Accepted: a whole item is in the outbox.
    Sealed,
    /// Nothing was interrupted that needed recovering (killed before or after the work).
    Clean,
}

struct Install {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    stack: DevStack,
    scanner: PlaintextScanner,
    /// Samples accepted so far: none may ever disappear.
    accepted: BTreeSet<String>,
    /// Audit entries already looked at.
    seen_events: usize,
    /// Fates, for the summary.
    fates: BTreeMap<Fate, usize>,
    /// Every multipart upload id a restart found saved in an item's state.
    saved_upload_ids: BTreeSet<String>,
    /// Runs ended by a kill.
    kills: usize,
}

/// What one restart found.
struct Restart {
    fate: Fate,
    events: Vec<String>,
    /// Bytes of a torn last audit line still waiting for the next append to recover them.
    torn: u64,
}

impl Install {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let stack = DevStack::start(tmp.path(), &data);
        Self {
            _tmp: tmp,
            data,
            stack,
            scanner: PlaintextScanner::for_synthetic_speech(48_000, 61),
            accepted: BTreeSet::new(),
            seen_events: 0,
            fates: BTreeMap::new(),
            saved_upload_ids: BTreeSet::new(),
            kills: 0,
        }
    }

    fn voxseal(&self) -> Command {
        voxseal(&self.data)
    }

    /// Runs `args` with the process set to abort at `point`; demands that it did.
    fn abort_at(&mut self, point: &str, args: &[&str]) -> Output {
        self.kills += 1;
        let out = self
            .voxseal()
            .env(KILL_AT, point)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let name = point.split(':').next().unwrap();
        assert!(
            out.status.signal() == Some(6) && err.contains(&format!("aborting at {name}")),
            "voxseal {args:?} was to abort at {point} but ended with {:?}:\n{err}",
            out.status
        );
        out
    }

    fn items(&self) -> Vec<OutboxItem> {
        let (items, damaged) = Outbox::new(self.data.join("outbox")).list().unwrap();
        assert!(damaged.is_empty(), "damaged items: {damaged:?}");
        items
    }

    /// The restart after a kill, and every check that must hold then.
    fn restart(&mut self, case: &str) -> Restart {
        let out = run(self.voxseal().args(["outbox", "--json"]));
        let notes = String::from_utf8_lossy(&out.stderr).into_owned();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["damaged"], serde_json::json!([]), "{case}: {v}");
        assert_eq!(v["raw_on_machine"]["spool_takes"], 0, "{case}: {v}");

        // No leftovers survive a restart.
        let spool = self.data.join("spool");
        let left: Vec<_> = support::files_under(&spool);
        assert!(
            left.is_empty(),
            "{case}: spool files after restart: {left:?}"
        );
        let staging: Vec<_> = std::fs::read_dir(self.data.join("outbox"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".staging-"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            staging.is_empty(),
            "{case}: staging after restart: {staging:?}"
        );

        // Accepted takes never disappear; payloads go only once uploaded.
        let items = self.items();
        let now: BTreeSet<String> = items
            .iter()
            .map(|i| i.manifest.sample_id.to_string())
            .collect();
        let gone: Vec<_> = self.accepted.difference(&now).collect();
        assert!(
            gone.is_empty(),
            "{case}: accepted takes disappeared: {gone:?}"
        );
        for i in &items {
            for p in &i.manifest.payloads {
                let here = i.dir.join(&p.file).exists();
                let done = i.state.objects.get(p.kind.as_str()).is_some_and(|o| o.done);
                assert!(
                    here || done,
                    "{case}: {} lost its {} payload before it was uploaded",
                    i.manifest.sample_id,
                    p.file
                );
                if i.state.status == ItemStatus::Uploaded {
                    assert!(
                        !here,
                        "{case}: {} is uploaded but its {} is still on disk",
                        i.manifest.sample_id, p.file
                    );
                }
            }
        }
        self.saved_upload_ids.extend(items.iter().flat_map(|i| {
            i.state
                .objects
                .values()
                .filter_map(|o| o.multipart.as_ref().map(|m| m.upload_id.clone()))
        }));
        let new: Vec<String> = now.difference(&self.accepted).cloned().collect();
        self.accepted = now;

        // The bucket never holds anything but the objects of accepted takes (and the audit
        // checkpoints that upload runs leave under the contractor's prefix).
        let expected = self.expected_objects(&items);
        for key in self.stack.objects().keys() {
            if is_checkpoint(Path::new(key)) {
                assert!(
                    key.starts_with("manifests/demo-contractor/audit/"),
                    "{case}: {key}"
                );
                continue;
            }
            assert!(expected.contains_key(key), "{case}: stray object {key}");
        }

        // The audit log verifies; new events are what the restart and the kill left.
        let out = self
            .voxseal()
            .args(["audit", "verify", "--json"])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            out.status.success() && report["intact"] == true,
            "{case}: audit log damaged: {report}"
        );
        let entries = voxseal_core::store::audit::verify(&self.data.join("audit.log"))
            .unwrap()
            .entries;
        let events: Vec<String> = entries[self.seen_events..]
            .iter()
            .map(|e| e.event.clone())
            .collect();
        self.seen_events = entries.len();

        // Nothing in the clear.
        let found = self.scanner.scan_tree(&self.data);
        assert!(found.is_empty(), "{case}: plaintext on disk: {found:?}");

        let swept = notes.contains("a take that was never accepted, left by a crash");
        let fate = if !new.is_empty() {
            Fate::Sealed
        } else if swept {
            assert!(
                events.iter().any(|e| e == "spool.swept"),
                "{case}: a swept take must be in the audit log: {events:?}"
            );
            Fate::Lost
        } else {
            Fate::Clean
        };
        *self.fates.entry(fate).or_default() += 1;
        Restart {
            fate,
            events,
            torn: report["torn_bytes"].as_u64().unwrap(),
        }
    }

    /// The keys every item's objects must have, with the SHA-256 of their content.
    fn expected_objects(&self, items: &[OutboxItem]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for i in items {
            for p in &i.manifest.payloads {
                out.insert(
                    object_key(&i.manifest, ObjectKind::Payload(p.kind)),
                    p.sha256.clone(),
                );
            }
            let manifest = std::fs::read(i.dir.join("manifest.json")).unwrap();
            out.insert(
                object_key(&i.manifest, ObjectKind::Manifest),
                support::sha256_hex(&manifest),
            );
        }
        out
    }

    /// Uploads what is queued (no kill) until nothing is left; returns what the restart after it
    /// found.
    fn drain(&mut self) -> Restart {
        let out = run(self.voxseal().args(["upload", "--part-size-mib", "5"]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("0 failed, 0 queued; 0 raw recording(s)"),
            "{err}"
        );
        self.restart("final drain")
    }

    /// Every accepted take is in the bucket exactly once: exactly its objects, each with the
    /// content that was sealed, nothing else, no unfinished multipart upload, and nothing left on
    /// this machine.
    fn check_exactly_once(&self) {
        let items = self.items();
        assert!(items.iter().all(|i| i.state.status == ItemStatus::Uploaded));
        assert!(items.iter().all(|i| i.local_bytes() == 0));
        let expected = self.expected_objects(&items);
        assert_eq!(
            items.len() * 3 - items.iter().filter(|i| i.manifest.features_only).count(),
            expected.len()
        );
        let mut stored = self.stack.objects();
        // Audit checkpoints are checked in `restart`; here only the samples count.
        stored.retain(|k, _| !is_checkpoint(Path::new(k)));
        assert_eq!(
            stored.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "exactly the accepted takes' objects"
        );
        assert_eq!(
            stored, expected,
            "every object is byte for byte what was sealed"
        );
        // The same through the S3 API, as the admin.
        if let Some(list) = self.stack.aws(&[
            "s3api",
            "list-objects-v2",
            "--bucket",
            voxseal_localstack::devstack::BUCKET,
        ]) {
            let mut keys: Vec<&str> = list["Contents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["Key"].as_str().unwrap())
                .filter(|k| !is_checkpoint(Path::new(k)))
                .collect();
            keys.sort();
            assert_eq!(
                keys,
                expected.keys().map(String::as_str).collect::<Vec<_>>()
            );
        }
        // No unfinished multipart upload the client knew of. The local endpoint (s3s-fs) does not
        // implement ListMultipartUploads; it keeps each open upload as `.upload-<id>.json` (and its
        // parts as `.upload_id-<id>.part-<n>`) until it is completed or aborted.
        //
        // One kind is unavoidable: a kill after CreateMultipartUpload answered and before the
        // state naming its id was saved. The id was never written anywhere, and the write-only
        // credentials cannot list uploads, so nothing on the laptop can find it; the bucket's
        // lifecycle rule (AbortIncompleteMultipartUpload, deploy/aws) removes it. Kills at the
        // named points land there when the item's other payload reaches the point first. Such an
        // upload's id is in no saved state, and there is at most one per kill.
        let open: Vec<String> = std::fs::read_dir(self.stack.dir.join("s3"))
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let id = n.strip_prefix(".upload-")?.strip_suffix(".json")?;
                Some(id.to_owned())
            })
            .collect();
        let known: Vec<&String> = open
            .iter()
            .filter(|id| self.saved_upload_ids.contains(*id))
            .collect();
        assert!(
            known.is_empty(),
            "multipart uploads left open although their ids were saved: {known:?}"
        );
        assert!(
            open.len() <= self.kills,
            "{} unfinished multipart uploads after {} kills: {open:?}",
            open.len(),
            self.kills
        );
        if !open.is_empty() {
            eprintln!(
                "{} upload(s) created in the window before their id was saved: {open:?}",
                open.len()
            );
        }
    }
}

#[test]
fn the_scanner_finds_decrypted_audio_and_features() {
    // The plaintext check is only worth something if it recognizes plaintext: decrypt a sealed
    // sample outside the data directory and scan that.
    let mut i = Install::new();
    run(i.voxseal().args(RECORD_3S));
    i.restart("a plain take");
    let item = &i.items()[0];
    let out = i._tmp.path().join("opened");
    run(i
        .voxseal()
        .arg("open")
        .arg(&item.dir)
        .arg("-i")
        .arg(i.stack.dir.join("keys/training.key"))
        .arg("-i")
        .arg(i.stack.dir.join("keys/archive.key"))
        .arg("--out")
        .arg(&out));
    let opened = out.join(item.dir.file_name().unwrap());
    let wav = std::fs::read(opened.join("raw.wav")).unwrap();
    let features = std::fs::read(opened.join("features.safetensors")).unwrap();
    use support::Finding::*;
    assert_eq!(i.scanner.scan(&wav), [WavHeader, Pcm]);
    assert_eq!(i.scanner.scan(&wav[44..]), [Pcm], "headerless PCM too");
    assert_eq!(i.scanner.scan(&features), [Safetensors]);
    let f32: Vec<u8> = voxseal_core::capture::audio::SyntheticSource::generate(
        voxseal_core::capture::audio::SyntheticKind::Speech,
        48_000,
        48_000,
    )[1000..4000]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    assert_eq!(i.scanner.scan(&f32), [Pcm], "spool-style f32 samples");
    assert!(i.scanner.scan_tree(&i.data).is_empty());
}

#[test]
fn kills_while_recording_and_sealing() {
    let mut i = Install::new();
    // (kill point, what the restart must find)
    let cases: [(&str, Fate); CASES_KILL_RECORD_SEAL] = [
        ("spool.chunk:1", Fate::Lost),
        ("spool.chunk:4", Fate::Lost),
        ("spool.chunk:8", Fate::Lost),
        ("seal.raw", Fate::Lost),
        ("seal.features", Fate::Lost),
        ("seal.commit", Fate::Lost),
        ("seal.unlogged", Fate::Sealed), // its take.sealed is logged by the restart
        ("seal.committed", Fate::Sealed),
        ("audit.torn:1", Fate::Lost),   // take.recorded torn
        ("audit.torn:2", Fate::Sealed), // take.sealed torn
        ("audit.torn:3", Fate::Sealed), // spool.wiped torn
    ];
    let mut ran = 0;
    let mut events = Vec::new();
    for (point, want) in cases {
        let out = i.abort_at(point, &RECORD_3S);
        let r = i.restart(point);
        assert_eq!(
            r.fate,
            want,
            "{point}: events {:?}\n{}",
            r.events,
            String::from_utf8_lossy(&out.stderr)
        );
        if point == "seal.unlogged" {
            assert!(
                r.events.iter().any(|e| e == "take.sealed"),
                "{point}: the restart logs the sealed item: {:?}",
                r.events
            );
        } else if point.starts_with("seal.") && point != "seal.committed" {
            assert!(
                r.events.iter().any(|e| e == "outbox.swept"),
                "{point}: the half-sealed item is recorded as swept: {:?}",
                r.events
            );
        }
        if point.starts_with("audit.torn") {
            // Recovered by the restart's own first event, or waiting for the next one.
            assert!(
                r.events.iter().any(|e| e == "audit.recovered") || r.torn > 0,
                "{point}: the torn line is neither recovered nor pending: {:?}",
                r.events
            );
        }
        events.extend(r.events);
        ran += 1;
    }
    assert_eq!(ran, CASES_KILL_RECORD_SEAL);
    // The install still works, and every accepted take uploads exactly once.
    run(i.voxseal().args(RECORD_3S));
    events.extend(i.restart("a plain take after the kills").events);
    assert_eq!(
        events.iter().filter(|e| *e == "audit.recovered").count(),
        3,
        "every torn line recovered with an event: {events:?}"
    );
    assert_eq!(i.accepted.len(), 5);
    i.drain();
    i.check_exactly_once();
    eprintln!("record/seal kills: {:?}", i.fates);
}

#[test]
fn kills_while_uploading_resume_to_exactly_one_copy() {
    let mut i = Install::new();
    // A take long enough for a two-part multipart upload (5 MiB parts), sealed while another
    // process keeps opening the same data directory (as the CLI next to the app would): its
    // crash sweep must not take the seal in progress for a crash leftover.
    let mut seal = i
        .voxseal()
        .args(["record", "--source", "synthetic:speech", "--fast"])
        .args(["--seconds", "60", "--accept"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut probes = 0;
    while seal.try_wait().unwrap().is_none() {
        run(i.voxseal().args(["outbox", "--json"]));
        probes += 1;
        std::thread::sleep(Duration::from_millis(200));
        assert!(t0.elapsed() < Duration::from_secs(120), "sealing hangs");
    }
    let out = seal.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sealing next to {probes} other processes failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Four small takes after the large one: an item's two payloads upload at the same time, so
    // how far a run gets before its point is not fixed, and later points need work left.
    for _ in 0..4 {
        run(i.voxseal().args(RECORD_3S));
    }
    i.restart("five sealed takes");
    let large = &i.items()[0];
    assert!(large.manifest.payloads[0].size > 5 * 1024 * 1024);

    let upload = ["upload", "--part-size-mib", "5"];
    // In order; each run resumes what the one before left. Counts are per run. Where a point is
    // passed by both payloads of an item, which one gets there first is up to the network; the
    // events asserted below appear whichever it is.
    let cases: [(&str, &str); CASES_KILL_UPLOAD] = [
        ("upload.part:1", "large raw: a first part acknowledged"),
        (
            "upload.part:1",
            "large raw: resumed (ListParts), the other part acknowledged",
        ),
        (
            "upload.completed:1",
            "large raw: multipart completed, nothing saved",
        ),
        (
            "upload.saved:1",
            "large: an object saved as done, its ciphertext not yet deleted",
        ),
        (
            "upload.stored:2",
            "second confirmation of the run, state not saved",
        ),
        (
            "upload.done:1",
            "an item saved as uploaded, no audit event yet",
        ),
        ("audit.torn:1", "the run's first audit line torn"),
        ("upload.deleted:2", "between two deletions"),
    ];
    let mut events = Vec::new();
    for (point, what) in cases {
        i.abort_at(point, &upload);
        let r = i.restart(&format!("{point} ({what})"));
        assert_ne!(r.fate, Fate::Lost);
        events.extend(r.events);
    }
    events.extend(i.drain().events);
    i.check_exactly_once();
    for want in [
        "upload.resumed",
        "upload.restarted",
        "upload.already_stored",
        "audit.recovered",
    ] {
        assert!(
            events.iter().any(|e| e == want),
            "{want} missing from {events:?}"
        );
    }
    eprintln!(
        "upload kills: {} events after the kills; {probes} processes opened the data directory during the seal",
        events.len()
    );
}

#[test]
fn sigkill_at_random_moments() {
    let seed = std::env::var("VOXSEAL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_CAFE_u64);
    eprintln!("seed {seed:#x} (VOXSEAL_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let mut i = Install::new();
    // Recording in real time (1.5 s of audio), so a record run lasts about the same whatever else
    // shares the CPU and the kills spread over start-up, recording, sealing and a little after.
    // Upload runs are timed here and now. Something is queued from the start, so upload kills
    // land on real work.
    let record = [
        "record",
        "--source",
        "synthetic:speech",
        "--seconds",
        "1.5",
        "--prompt",
        "p002",
        "--accept",
    ];
    let timed = |cmd: &mut Command| {
        let t0 = Instant::now();
        run(cmd);
        t0.elapsed().as_millis() as u64
    };
    let record_ms = timed(i.voxseal().args(record));
    let upload_ms = timed(i.voxseal().arg("upload"));
    run(i.voxseal().args(RECORD_3S));
    run(i.voxseal().args(RECORD_3S));
    i.restart("sealed takes");
    eprintln!("a record run takes {record_ms} ms, an upload run {upload_ms} ms");
    let mut delays = Vec::new();
    for n in 0..CASES_KILL_RANDOM {
        let (args, window): (Vec<&str>, u64) = if n % 2 == 0 {
            (record.to_vec(), record_ms * 6 / 5)
        } else {
            (vec!["upload"], upload_ms * 6 / 5)
        };
        let delay = Duration::from_millis(rng.below(window));
        let mut child = i
            .voxseal()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL (a no-op if it already finished)
        let status = child.wait().unwrap();
        i.kills += usize::from(status.signal().is_some());
        let r = i.restart(&format!("SIGKILL {} after {delay:?}", args[0]));
        delays.push((
            args[0],
            delay.as_millis(),
            status.signal().is_some(),
            r.fate,
        ));
    }
    i.drain();
    i.check_exactly_once();
    let killed = delays.iter().filter(|d| d.2).count();
    let records: Vec<Fate> = delays
        .iter()
        .filter(|d| d.0 == "record")
        .map(|d| d.3)
        .collect();
    eprintln!("(command, delay ms, killed mid-flight, fate): {delays:?}");
    eprintln!(
        "random kills: {killed} of {} runs killed mid-flight; record runs: {} lost, {} sealed, {} clean; {} accepted takes uploaded once",
        delays.len(),
        records.iter().filter(|f| **f == Fate::Lost).count(),
        records.iter().filter(|f| **f == Fate::Sealed).count(),
        records.iter().filter(|f| **f == Fate::Clean).count(),
        i.accepted.len()
    );
    assert!(
        killed >= CASES_KILL_RANDOM / 3,
        "most runs must really be killed mid-flight: {delays:?}"
    );
}
