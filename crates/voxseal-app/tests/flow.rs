//! The contractor's whole flow against the app logic in the demo (embedded S3 + broker), with
//! a synthetic voice paced in real time as the microphone: enroll, consent, mic check, three
//! prompts, a re-recording, and the queue draining to "uploaded" with 0 raw recordings left.
//! And joining a project the production way: the broker serves the lead-signed config, the app
//! verifies it before the code is used, and takes newer serials only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use voxseal_app::{App, AppEvent, AppOptions, ErrorKind};

/// A runtime for the app with `workers` threads.
fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

fn start(dir: &std::path::Path, rt: &tokio::runtime::Runtime) -> (App, Arc<Mutex<Vec<String>>>) {
    start_with(dir, rt, |o| o.demo = true)
}

fn start_with(
    dir: &std::path::Path,
    rt: &tokio::runtime::Runtime,
    set: impl FnOnce(&mut AppOptions),
) -> (App, Arc<Mutex<Vec<String>>>) {
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
    set(&mut opts);
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
    let rt = runtime(2);
    let dir = tempfile::tempdir().unwrap();
    let (app, events) = start(dir.path(), &rt);

    let s = app.state().unwrap();
    assert_eq!(s.mode, voxseal_app::types::Mode::Demo);
    assert!(!s.enrolled);
    assert_eq!(s.prompts.len(), 5);
    let code = s.demo_code.clone().expect("local mode offers a demo code");
    assert_eq!(
        app.enroll("vxe_000000000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)
            .unwrap_err()
            .kind,
        ErrorKind::BadCode
    );
    let s = app.enroll(&code, false).unwrap();
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

    let mut reviews = Vec::new();
    for (i, p) in ["p001", "p002", "p003"].iter().enumerate() {
        let review = record(&app, p, &levels);
        reviews.push(review.clone());
        assert_eq!(
            review.quality.overall,
            voxseal_core::dsp::quality::Verdict::Pass,
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
        voxseal_core::store::progress::PromptStatus::Flagged
    );

    // The worker drains the queue by itself.
    let t0 = Instant::now();
    loop {
        let q = app.queue().unwrap();
        if q.items.len() == 4
            && q.items
                .iter()
                .all(|i| i.status == voxseal_core::store::outbox::ItemStatus::Uploaded)
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
    assert!(activity.iter().any(|a| a.event == "item.uploaded"
        && a.params.get("sample").and_then(|s| s.as_str()) == Some(second.as_str())));
    let flagged = activity
        .iter()
        .find(|a| a.event == "prompt.flagged")
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(flagged.params.clone()),
        serde_json::json!({ "prompt": "p005", "reason": "typo" })
    );
    // What crosses IPC carries codes and numbers; the UI owns the words (issue 15, section 5).
    words_are_the_uis("activity", &serde_json::to_value(&activity).unwrap());
    words_are_the_uis(
        "queue",
        &serde_json::to_value(app.queue().unwrap()).unwrap(),
    );
    words_are_the_uis("noise check", &serde_json::to_value(&check).unwrap());
    for (i, review) in reviews.iter().enumerate() {
        words_are_the_uis(
            &format!("review {i}"),
            &serde_json::to_value(review).unwrap(),
        );
    }
    words_are_the_uis(
        "state",
        &serde_json::to_value(app.state().unwrap()).unwrap(),
    );
    assert!(
        voxseal_core::store::audit::verify(app.workspace().audit.path())
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

/// Fails when a value the web view gets holds a sentence for people made in Rust (as the
/// activity `summary`, a check's `reason` and the noise check's `message` did): a string of three
/// or more words. Free text that is not the app's own passes, by where it is: the project's
/// prompts and consent, the contractor's flag reason, and the technical detail of error fields.
fn words_are_the_uis(what: &str, v: &serde_json::Value) {
    const FREE_TEXT: &[&str] = &[
        "prompts.text",
        "prompts.note",
        "project.consent_text",
        "progress.flag_reason",
        "params.reason",
        "project_notice.message",
        "items.last_error",
        "interrupted.detail",
    ];
    fn walk(what: &str, parent: &str, key: &str, v: &serde_json::Value) {
        match v {
            serde_json::Value::String(s)
                if !FREE_TEXT.contains(&format!("{parent}.{key}").as_str()) =>
            {
                let words = s
                    .split_whitespace()
                    .filter(|w| w.chars().any(char::is_alphabetic))
                    .count();
                assert!(
                    words < 3,
                    "{what}: {parent}.{key} = {s:?} is a sentence for people"
                );
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(what, parent, key, x)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| walk(what, key, k, x)),
            _ => {}
        }
    }
    walk(what, "", "", v);
}

#[test]
fn a_sentence_in_a_view_is_caught() {
    use serde_json::json;
    // The shapes of before: each held a sentence made in Rust.
    for old in [
        json!([{ "seq": 1, "event": "item.uploaded", "summary": "uploaded sample s1" }]),
        json!({ "quality": { "checks": [{ "name": "speech", "verdict": "pass", "reason": "3.1 s of speech detected" }] } }),
        json!({ "verdict": "good", "message": "good: your voice at -20 dBFS over a -60 dBFS background" }),
    ] {
        let caught = std::panic::catch_unwind(|| words_are_the_uis("old", &old));
        assert!(caught.is_err(), "not caught: {old}");
    }
    // The contractor's own words pass where they belong.
    words_are_the_uis(
        "flag",
        &json!([{ "event": "prompt.flagged", "params": { "prompt": "p1", "reason": "a typo in it" } }]),
    );
}

#[test]
fn bad_input_from_the_view_is_refused_clearly() {
    let rt = runtime(2);
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = start(dir.path(), &rt);
    for bad in ["", &"x".repeat(5000)] {
        assert_eq!(
            app.enroll(bad, false).unwrap_err().kind,
            ErrorKind::InvalidInput
        );
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

/// The microphone check used a fake prompt id ("mic-check") as its marker: a `stop_take` that
/// came while it ran ended the check's recording as a take of that prompt, put it under review,
/// and the check then failed. Now stop_take refuses (no take is being recorded) and the check
/// completes.
#[test]
fn stop_take_during_the_microphone_check_is_refused_and_the_check_completes() {
    let rt = runtime(2);
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = start(dir.path(), &rt);
    let code = app.state().unwrap().demo_code.expect("demo code");
    app.enroll(&code, false).unwrap();
    app.give_consent().unwrap();
    let checking = {
        let app = app.clone();
        std::thread::spawn(move || app.check_noise())
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(app.stop_take().unwrap_err().kind, ErrorKind::NoTake);
    let check = checking.join().unwrap().expect("the check completes");
    assert_eq!(check.verdict, "good", "{check:?}");
    assert!(app.state().unwrap().review.is_none());
}

/// Re-signs the stack's project config (served by its broker) with `serial`, with the stack's
/// lead key or another.
fn resign(stack: &voxseal_localstack::devstack::DevStackInfo, serial: u64, key: &std::path::Path) {
    let text = std::fs::read_to_string(&stack.project_path).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("serial = "))
        .unwrap()
        .to_owned();
    let text = text.replace(&line, &format!("serial = {serial}"));
    let sig = voxseal_core::project::signing::sign(key, None, text.as_bytes(), "test").unwrap();
    let sig_path = voxseal_core::project::signing::sig_path(&stack.project_path);
    std::fs::write(sig_path, sig).unwrap();
    std::fs::write(&stack.project_path, text).unwrap();
}

#[test]
fn joins_a_signed_project_from_its_broker_and_takes_only_newer_configs() {
    use voxseal_app::types::ProjectNotice;
    use voxseal_localstack::devstack::{DEMO_CONTRACTOR, DevStack, DevStackOptions};
    let rt = runtime(2);
    let dir = tempfile::tempdir().unwrap();
    let stack = rt
        .block_on(DevStack::start(DevStackOptions::ephemeral(
            dir.path().join("broker"),
        )))
        .unwrap();
    let info = stack.info.clone();
    let code = stack
        .enrollment_code(&DEMO_CONTRACTOR.parse().unwrap())
        .unwrap();
    let link = voxseal_core::project::enroll_link::EnrollLink {
        broker: voxseal_core::project::enroll_link::BrokerUrl::parse(&info.broker_url).unwrap(),
        code,
    }
    .to_string();
    let data = dir.path().join("app");
    // A production app (no demo) that trusts the stack's lead key as its "pinned" key.
    let (app, _) = start_with(&data, &rt, |o| {
        o.trust_keys = vec![info.lead_pubkey.clone()];
        // CI has no OS keychain: the encrypted token file, as on a headless QA machine.
        o.token_passphrase = Some("qa passphrase".to_owned().into());
    });

    let s = app.state().unwrap();
    assert_eq!(s.mode, voxseal_app::types::Mode::Project);
    assert!(s.project.is_none() && !s.enrolled && s.demo_code.is_none());

    // Shown before anything is installed or used up.
    let preview = app.preview_join(&link, false).unwrap();
    assert_eq!(preview.project.name, "voxseal-dev");
    assert!(preview.project.consent_text.contains("demo"));
    assert!(!data.join("project.toml").exists(), "preview installed");
    app.open_link(&link).unwrap();
    let s = app.enroll(&link, false).unwrap();
    assert!(s.enrolled);
    assert_eq!(
        s.enroll_link, None,
        "a used link still fills the enroll screen"
    );
    let serial = s.project.as_ref().unwrap().serial;
    assert!(serial > 0);

    // A link handed over while enrolled (a new code, or another project) is shown too.
    let other = "voxseal://enroll?broker=http%3A%2F%2Flocalhost.evil.com&code=vxe_x";
    assert_eq!(
        app.open_link(other).unwrap().enroll_link.as_deref(),
        Some(other)
    );
    // A link for another broker is not honoured once a project is installed.
    assert_eq!(
        app.enroll(other, false).unwrap_err().kind,
        ErrorKind::InvalidInput
    );

    // The lead signs a newer config: installed on the next broker contact, and shown.
    resign(&info, serial + 1, &info.keys_dir.join("lead.key"));
    rt.block_on(app.upload_now(Box::new(|_| {}))).unwrap();
    let s = app.state().unwrap();
    assert_eq!(s.project.as_ref().unwrap().serial, serial + 1);
    assert!(matches!(
        s.project_notice,
        Some(ProjectNotice::Updated { from_serial, to_serial }) if from_serial == serial && to_serial == serial + 1
    ));

    // An older config (a replay) and one signed by another key are refused.
    resign(&info, serial, &info.keys_dir.join("lead.key"));
    rt.block_on(app.upload_now(Box::new(|_| {}))).unwrap();
    let s = app.state().unwrap();
    assert_eq!(s.project.as_ref().unwrap().serial, serial + 1);
    assert!(
        matches!(&s.project_notice, Some(ProjectNotice::Refused { message }) if message.contains("older")),
        "{:?}",
        s.project_notice
    );
    let stranger = dir.path().join("stranger");
    voxseal_core::project::signing::generate_lead_key(
        &stranger.with_extension("key"),
        &stranger.with_extension("pub"),
        None,
    )
    .unwrap();
    resign(&info, serial + 2, &stranger.with_extension("key"));
    rt.block_on(app.upload_now(Box::new(|_| {}))).unwrap();
    let s = app.state().unwrap();
    assert_eq!(s.project.as_ref().unwrap().serial, serial + 1);
    assert!(matches!(
        &s.project_notice,
        Some(ProjectNotice::Refused { message }) if message.contains("signature")
    ));
    let audit = std::fs::read_to_string(data.join("audit.log")).unwrap();
    assert_eq!(audit.matches("project.refused").count(), 2, "{audit}");

    // The lead revokes the contractor: the next broker contact says so, and the queue shows it.
    assert!(!app.queue().unwrap().revoked);
    let mut registry = voxseal_broker::registry::Registry::load(&info.registry_path).unwrap();
    assert!(registry.revoke(&DEMO_CONTRACTOR.parse().unwrap()).unwrap());
    registry.save().unwrap();
    let err = rt.block_on(app.upload_now(Box::new(|_| {}))).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Revoked, "{err:?}");
    assert!(app.queue().unwrap().revoked);

    // The lead re-admits the contractor with a new code (and signs the current config): joining
    // with it clears the revoked state at once, not after the next upload has finished.
    resign(&info, serial + 2, &info.keys_dir.join("lead.key"));
    drop(registry);
    let mut registry = voxseal_broker::registry::Registry::load(&info.registry_path).unwrap();
    let code = registry
        .add(DEMO_CONTRACTOR.parse().unwrap(), time::Duration::days(1))
        .unwrap();
    registry.save().unwrap();
    drop(registry);
    let again = voxseal_core::project::enroll_link::EnrollLink {
        broker: voxseal_core::project::enroll_link::BrokerUrl::parse(&info.broker_url).unwrap(),
        code: code.expose_secret().to_owned(),
    }
    .to_string();
    assert!(app.enroll(&again, false).unwrap().enrolled);
    assert!(!app.queue().unwrap().revoked, "still shown as revoked");
    drop(stack);
}

#[test]
fn a_data_directory_with_demo_leftovers_does_not_start_the_demo() {
    let rt = runtime(1);
    let dir = tempfile::tempdir().unwrap();
    // What a first launch of an earlier version left: the demo stack's directory.
    std::fs::create_dir_all(dir.path().join("local-stack/keys")).unwrap();
    let (app, _) = start_with(dir.path(), &rt, |_| {});
    let s = app.state().unwrap();
    assert_eq!(s.mode, voxseal_app::types::Mode::Project);
    assert!(s.project.is_none() && s.demo_code.is_none() && !s.enrolled);
    assert!(s.demo_available);
    assert!(
        !dir.path().join("project.toml").exists(),
        "a production app installed a project by itself"
    );
    assert_eq!(
        app.enroll("vxe_ab_CD", false).unwrap_err().kind,
        ErrorKind::InvalidInput,
        "a bare code without a broker"
    );
}

#[test]
fn a_link_handed_over_by_a_second_launch_fills_the_enroll_screen() {
    let rt = runtime(1);
    let dir = tempfile::tempdir().unwrap();
    let (app, events) = start_with(dir.path(), &rt, |_| {});
    assert_eq!(app.state().unwrap().enroll_link, None);
    let link = "voxseal://enroll?broker=https%3A%2F%2Fbroker.example&code=vxe_ab_CD";
    let s = app.open_link(link).unwrap();
    assert_eq!(s.enroll_link.as_deref(), Some(link));
    assert!(events.lock().unwrap().iter().any(|e| e == "state-changed"));
    // Anything but an enrollment link leaves the screen as it was.
    let s = app.open_link("https://evil.example/").unwrap();
    assert_eq!(s.enroll_link.as_deref(), Some(link));
}
