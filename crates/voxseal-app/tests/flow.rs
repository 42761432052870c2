//! The contractor's whole flow against the app logic in local mode (embedded S3 + broker), with
//! a synthetic voice paced in real time as the microphone: enroll, consent, mic check, three
//! prompts, a re-recording, and the queue draining to "uploaded" with 0 raw recordings left.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use voxseal_app::{App, AppEvent, AppOptions, ErrorKind};

fn start(dir: &std::path::Path, rt: &tokio::runtime::Runtime) -> (App, Arc<Mutex<Vec<String>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let mut opts = AppOptions::new(
        dir.to_owned(),
        Box::new(move |e| {
            ev.lock().unwrap().push(match e {
                AppEvent::QueueChanged(_) => "queue-changed".to_owned(),
                AppEvent::DeviceLost(m) => format!("device-lost: {m}"),
                AppEvent::StateChanged(_) => "state-changed".to_owned(),
            })
        }),
    );
    opts.source_override = Some("synthetic:speech".into());
    opts.retry_secs = 1;
    (App::start(opts, rt.handle().clone()).unwrap(), events)
}

fn record(app: &App, prompt: &str, levels: &Arc<Mutex<usize>>) -> voxseal_app::types::TakeReview {
    let l = levels.clone();
    app.start_take(prompt, Box::new(move |_| *l.lock().unwrap() += 1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(3600));
    app.stop_take().unwrap()
}

#[test]
fn enroll_consent_check_record_rerecord_and_upload() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (app, events) = start(dir.path(), &rt);

    let s = app.state().unwrap();
    assert_eq!(s.mode, "local");
    assert!(!s.enrolled);
    assert_eq!(s.prompts.len(), 5);
    let code = s.demo_code.clone().expect("local mode offers a demo code");
    assert_eq!(
        app.enroll("vxe_000000000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
            .unwrap_err()
            .kind,
        ErrorKind::BadCode
    );
    let s = app.enroll(&code).unwrap();
    assert!(s.enrolled);
    assert_eq!(s.contractor.as_deref(), Some("demo-contractor"));

    let levels = Arc::new(Mutex::new(0usize));
    let l = levels.clone();
    let err = app
        .start_take("p001", Box::new(move |_| *l.lock().unwrap() += 1))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoConsent);
    assert!(app.give_consent().unwrap().consent_given);

    let check = app.check_noise().unwrap();
    assert_eq!(check.verdict, "good", "{check:?}");
    assert!(app.state().unwrap().mic_checked);

    for (i, p) in ["p001", "p002", "p003"].iter().enumerate() {
        let review = record(&app, p, &levels);
        assert_eq!(
            review.quality.overall,
            voxseal_core::quality::Verdict::Pass,
            "{:?}",
            review.quality.checks
        );
        assert_eq!(review.waveform.len(), 400);
        assert!(
            review.duration_s > 3.5,
            "pre- and post-roll included: {}",
            review.duration_s
        );
        assert_eq!(
            app.state().unwrap().review.unwrap().take_id,
            review.take_id,
            "a reloaded view gets the review back"
        );
        let l = levels.clone();
        assert_eq!(
            app.start_take("p004", Box::new(move |_| *l.lock().unwrap() += 1))
                .unwrap_err()
                .kind,
            ErrorKind::Busy
        );
        assert_eq!(app.go_to_prompt(0).unwrap_err().kind, ErrorKind::Busy);
        let s = app.accept_take(false).unwrap();
        assert_eq!(s.current_prompt, i + 1);
        assert!(s.review.is_none());
    }
    assert!(
        *levels.lock().unwrap() > 200,
        "~25 meter readings per second"
    );

    // Re-record prompt 1: a new version that supersedes the first.
    let first = app.state().unwrap().progress[0].sample_id.clone().unwrap();
    app.go_to_prompt(0).unwrap();
    record(&app, "p001", &levels);
    let s = app.accept_take(false).unwrap();
    assert_eq!(s.progress[0].versions, 2);
    let second = s.progress[0].sample_id.clone().unwrap();
    assert_ne!(first, second);
    let m = app
        .workspace()
        .outbox
        .get(&second.parse().unwrap())
        .unwrap()
        .manifest;
    assert_eq!(m.supersedes.map(|s| s.to_string()), Some(first));
    assert!(m.consent.is_some(), "the consent travels in the manifest");

    // Skip and flag.
    let s = app.skip_prompt("p005", Some("typo".into())).unwrap();
    assert_eq!(
        s.progress[4].status,
        voxseal_core::progress::PromptStatus::Flagged
    );

    // The worker drains the queue by itself.
    let t0 = Instant::now();
    loop {
        let q = app.queue().unwrap();
        if q.items.len() == 4
            && q.items
                .iter()
                .all(|i| i.status == voxseal_core::outbox::ItemStatus::Uploaded)
        {
            assert_eq!(q.raw_on_machine, 0);
            assert!(q.online);
            assert!(q.last_wipe_at.is_some());
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "queue did not drain: {q:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(events.lock().unwrap().iter().any(|e| e == "queue-changed"));
    let activity = app.activity(100).unwrap();
    assert!(
        activity
            .iter()
            .any(|a| a.event == "item.uploaded" && a.summary.starts_with("uploaded sample"))
    );
    assert!(
        voxseal_core::audit::verify(app.workspace().audit.path())
            .unwrap()
            .is_intact()
    );

    // Restart: progress and enrollment survive.
    drop(app);
    let (app, _) = start(dir.path(), &rt);
    let s = app.state().unwrap();
    assert!(s.enrolled && s.consent_given);
    assert_eq!(s.progress[0].versions, 2);
    assert_eq!(s.current_prompt, 4);
}

#[test]
fn bad_input_from_the_view_is_refused_clearly() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = start(dir.path(), &rt);
    for bad in ["", &"x".repeat(5000)] {
        assert_eq!(app.enroll(bad).unwrap_err().kind, ErrorKind::InvalidInput);
    }
    assert_eq!(
        app.save_preferences("neon", "en").unwrap_err().kind,
        ErrorKind::InvalidInput
    );
    assert_eq!(
        app.save_preferences("dark", "../../etc").unwrap_err().kind,
        ErrorKind::InvalidInput
    );
    assert_eq!(
        app.go_to_prompt(99).unwrap_err().kind,
        ErrorKind::InvalidInput
    );
    assert_eq!(
        app.skip_prompt("../p1", None).unwrap_err().kind,
        ErrorKind::InvalidInput
    );
    assert_eq!(
        app.accept_take(false).unwrap_err().kind,
        ErrorKind::NotEnrolled
    );
    assert_eq!(app.discard_take().unwrap_err().kind, ErrorKind::NoTake);
    assert_eq!(app.stop_take().unwrap_err().kind, ErrorKind::NoTake);
    assert!(rt.block_on(app.retry_item("sample-nope")).is_err());
    assert_eq!(app.save_preferences("dark", "pt-BR").unwrap().theme, "dark");
}
