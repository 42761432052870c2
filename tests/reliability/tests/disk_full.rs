//! A disk that fills up while recording or sealing, for real: the data directory on a small
//! tmpfs (mounting needs root; without it these tests print why and skip, and
//! `crates/voxseal-cli/tests/bad_input.rs` still covers a write limit through the CLI).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use voxseal_core::capture::audio::SourceFactory;
use voxseal_core::capture::audio::{AudioSource, SyntheticKind, SyntheticSource};
use voxseal_core::capture::recorder::{RecordError, Recorder, RecorderEvent, RecorderOptions};
use voxseal_core::dsp::pcm::PcmReplay;
use voxseal_reliability::{Stack, Tmpfs};

/// Free-space levels tried while sealing (`sealing_on_a_full_disk_*`).
const CASES_DISK_FULL_SEAL: usize = 24;
/// Recording cases (`recording_stops_within_a_second_*`): a real-time take filling the disk.
const CASES_DISK_FULL_RECORD: usize = 1;

const ENOSPC: i32 = 28;

#[test]
fn recording_stops_within_a_second_of_the_disk_filling_up() {
    let Some(fs) = Tmpfs::mount(4096) else { return };
    let spool = fs.path().join("spool");
    let (tx, rx) = mpsc::channel();
    let factory: SourceFactory = Box::new(|| {
        Ok(
            Box::new(SyntheticSource::new(SyntheticKind::Speech, 48_000, None).realtime(true))
                as Box<dyn AudioSource>,
        )
    });
    let rec = Recorder::start(
        factory,
        RecorderOptions::new(&spool),
        |_| {},
        move |e| {
            let _ = tx.send((e, Instant::now()));
        },
    )
    .unwrap();
    rec.begin_take().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let filler = fs.fill(0);
    let full_at = Instant::now();
    let (event, ended_at) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the take ends");
    assert_eq!(event, RecorderEvent::TakeEnded);
    let stopped_after = ended_at.saturating_duration_since(full_at);
    eprintln!("recording stopped {stopped_after:?} after the disk filled up");
    assert!(stopped_after < Duration::from_secs(1), "{stopped_after:?}");
    let err = rec.end_take().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("recording stopped") && msg.contains("No space left on device"),
        "{msg}"
    );
    let RecordError::Spool(voxseal_core::capture::spool::SpoolError::Io { source, .. }) = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(source.raw_os_error(), Some(ENOSPC));
    // The partial take is gone (its file wiped, its key dropped): nothing half-written remains to
    // be mistaken for a take.
    let left: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // With room again, the same recorder records the next take.
    std::fs::remove_file(filler).unwrap();
    rec.begin_take().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let take = rec.end_take().unwrap();
    assert!(take.spool.len() > 0);
    let _ = CASES_DISK_FULL_RECORD;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealing_on_a_full_disk_fails_cleanly_and_hands_the_take_back() {
    let Some(fs) = Tmpfs::mount(8192) else { return };
    let dir = tempfile::TempDir::new_in(fs.path()).unwrap();
    let s = Stack::in_dir(dir).await;
    // One take, sealed with less and less room: every outcome is either a whole item in the
    // outbox, or an error naming the disk with the take handed back intact and no trace of a
    // half-built item. A 1 s take seals to ~100 KB raw + ~40 KB features + manifest and state.
    let mut take = Some(s.review(s.record(1.0)));
    let (mut failed, mut sealed, mut ran) = (0, 0, 0);
    for step in 0..CASES_DISK_FULL_SEAL as u64 {
        let leave = step * 8 * 1024;
        let this = take.take().unwrap_or_else(|| s.review(s.record(1.0)));
        let samples = this.take().spool.len();
        let before = s.ws.outbox.list().unwrap().0.len();
        let filler = fs.fill(leave);
        let result = s.accept(this);
        std::fs::remove_file(&filler).unwrap();
        let (items, damaged) = s.ws.outbox.list().unwrap();
        assert!(damaged.is_empty(), "{leave}: {damaged:?}");
        let staging: Vec<_> = std::fs::read_dir(s.ws.outbox.dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".staging-"))
            .collect();
        assert!(
            staging.is_empty(),
            "{leave}: half-built item left: {staging:?}"
        );
        ran += 1;
        match result {
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("No space left on device"),
                    "{leave} bytes free: {msg}"
                );
                assert_eq!(items.len(), before, "{leave}: an item despite the error");
                let back = e.into_take().expect("handed back");
                assert_eq!(
                    back.take().spool.len(),
                    samples,
                    "the take is handed back whole"
                );
                failed += 1;
                take = Some(back);
            }
            Ok(item) => {
                assert_eq!(items.len(), before + 1);
                for p in &item.manifest.payloads {
                    let len = std::fs::metadata(item.dir.join(&p.file)).unwrap().len();
                    assert_eq!(len, p.size, "{} is whole", p.file);
                }
                sealed += 1;
            }
        }
    }
    eprintln!(
        "sealing with 0 to {} KiB free: {failed} clean failures, {sealed} sealed",
        (CASES_DISK_FULL_SEAL - 1) * 8
    );
    assert!(
        failed >= 5,
        "the disk was too full for several levels: {failed}"
    );
    assert!(sealed >= 1, "and sealing succeeds once there is room");
    assert_eq!(ran, CASES_DISK_FULL_SEAL);
    // Every accepted take is whole and none was lost: the outbox holds exactly the successes.
    assert_eq!(s.ws.outbox.list().unwrap().0.len(), sealed);
}
