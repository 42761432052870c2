//! The contractor's whole first session in the real desktop app, and its security boundary.
//!
//! Choose "Try a demo" on a fresh install, enroll with the demo code, consent, check the microphone (live meter and noise check
//! while speech plays), record three prompts with real speech, re-record the first one (version
//! 2), watch the queue drain to "uploaded" against the embedded local stack with no raw recording
//! left; then the contractor switches the app to Arabic in Settings: the page turns right to left,
//! mirrored, and a fourth prompt is recorded, reviewed, uploaded and seen in the activity trail
//! in Arabic (screenshots 20-23); back to English. Then, from the page, a command the capability
//! does not grant is refused and an inline script is blocked by the CSP. Screenshots go to
//! `$CARGO_TARGET_DIR/e2e-screenshots/`.
//!
//! ```sh
//! scripts/test.sh -- -p voxseal-e2e --nocapture     # or, with the app built:
//! eval "$(scripts/pulse.sh)"; cargo test -p voxseal-e2e -- --nocapture
//! ```

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use serde_json::json;
use voxseal_e2e::steps::{
    LONG, SHORT, arabic_text, choose_language, header_kept_its_height, mic_check, take,
    watch_header,
};
use voxseal_e2e::{Desktop, Tools};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contractor_flow_in_the_real_app() {
    let Some(tools) = Tools::find("contractor_flow_in_the_real_app") else {
        return;
    };
    let desktop = Desktop::launch(&tools).await.expect("launch the app");
    let outcome = tokio::time::timeout(Duration::from_secs(240), flow(&desktop)).await;
    let outcome = outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("the flow took over 240 s")));
    if outcome.is_err() {
        let _ = desktop.screenshot("failure").await;
        eprintln!(
            "--- tauri-driver / WebKitWebDriver / app log (end) ---\n{}",
            desktop.driver_log_tail(80)
        );
    }
    let closed = desktop.shutdown().await;
    outcome.expect("the contractor flow");
    closed.expect("shut down");
}

async fn flow(d: &Desktop) -> Result<()> {
    enroll(d).await?;
    consent(d).await?;
    mic_check(d, Some("03-mic-check")).await?;
    for n in 1..=3 {
        record_prompt(d, n, n == 1).await?;
        if n == 1 {
            // After the first prompt's reload of the web view.
            watch_header(d).await?;
        }
    }
    rerecord_first(d).await?;
    queue_drains(d).await?;
    header_kept_its_height(d).await?;
    in_arabic(d).await?;
    capability_refuses_other_commands(d).await?;
    csp_blocks_inline_script(d).await?;
    Ok(())
}

async fn enroll(d: &Desktop) -> Result<()> {
    // A fresh install joins a project through a link; the demo is an explicit choice.
    d.wait_id("try-demo", LONG).await?;
    ensure!(
        d.by_id("demo-code").await.is_err() && d.by_id("mode-demo").await.is_err(),
        "a fresh install must not start in the demo"
    );
    d.screenshot("00-welcome").await?;
    d.click("try-demo").await?;
    d.wait_id("demo-code", LONG).await?;
    let code = d.text("demo-code").await?;
    ensure!(code.len() >= 8, "demo code looks wrong: {code:?}");
    ensure!(d.by_id("mode-demo").await.is_ok(), "no demo badge");
    d.screenshot("01-enroll").await?;
    d.click("use-demo-code").await?;
    d.log(format_args!("enrolled with the demo code"));
    Ok(())
}

async fn consent(d: &Desktop) -> Result<()> {
    d.wait_id("consent-text", SHORT)
        .await
        .context("the consent screen after enrolling")?;
    let text = d.text("consent-text").await?;
    ensure!(!text.is_empty(), "empty consent text");
    d.screenshot("02-consent").await?;
    d.click("consent-accept").await?;
    Ok(())
}

/// Records the prompt shown (prompt `n` of the session) with speech, checks the take, accepts it.
async fn record_prompt(d: &Desktop, n: usize, first: bool) -> Result<()> {
    let index = d
        .wait_attr("prompt-progress", "data-index", SHORT, |i| {
            i == n.to_string()
        })
        .await
        .with_context(|| format!("prompt {n} is not shown"))?;
    let text = d.text("prompt-text").await?;
    d.log(format_args!("prompt {index}: {text}"));
    let (quality, speech) = take(d, &text).await?;
    ensure!(
        quality == "pass" || quality == "warn",
        "prompt {n}: overall quality {quality}"
    );
    ensure!(speech == "pass", "prompt {n}: speech check {speech}");
    if first {
        // The take under review (waveform, quality checks) with the prompt and controls above it.
        d.js(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'end'});",
            vec![json!(voxseal_e2e::testid("review"))],
        )
        .await?;
        d.screenshot("04-take-review").await?;
        // play_take resolves when playback ends: the Play button turns back by itself.
        d.click("play").await?;
        d.wait_attr("play", "data-playing", SHORT, |p| p == "true")
            .await?;
        d.wait_attr("play", "data-playing", SHORT, |p| p == "false")
            .await
            .context("playback did not end by itself")?;
        d.log(format_args!("played the take to its end"));
        take_under_review_holds(d).await?;
    }
    d.click("accept").await?;
    d.wait_attr("accepted-count", "data-count", LONG, |c| {
        c.parse::<usize>().is_ok_and(|c| c >= n.min(3))
    })
    .await?;
    Ok(())
}

/// While a take is under review the backend refuses to move on (`busy`), and a reloaded web
/// view gets the take back from `AppState.review`.
async fn take_under_review_holds(d: &Desktop) -> Result<()> {
    for (cmd, args) in [
        ("go_to_prompt", json!({ "index": 2 })),
        (
            "skip_prompt",
            json!({ "promptId": "p001", "flagReason": null }),
        ),
    ] {
        let r = d.js_async(INVOKE, vec![json!(cmd), args]).await?;
        ensure!(
            r["ok"] == json!(false) && r["error"]["kind"] == json!("busy"),
            "{cmd} with a take under review: {r}"
        );
    }
    let take = d.attr("review", "data-take").await?;
    let seconds = d.attr("take-duration", "data-seconds").await?;
    d.js("window.__voxsealBeforeReload = true;", vec![]).await?;
    d.client.refresh().await.context("reloading the web view")?;
    let fresh = d
        .js("return window.__voxsealBeforeReload === undefined;", vec![])
        .await?;
    ensure!(fresh == json!(true), "the web view did not reload");
    d.wait_attr("quality-overall", "data-verdict", LONG, |_| true)
        .await
        .context("the take under review did not come back after a reload")?;
    let again = d.attr("take-duration", "data-seconds").await?;
    ensure!(
        again == seconds,
        "another take after the reload: {again:?} vs {seconds:?}"
    );
    ensure!(
        d.attr("review", "data-take").await? == take,
        "another take id after the reload"
    );
    d.log(format_args!(
        "busy while under review; the take survived a reload"
    ));
    Ok(())
}

/// Calls a command from the page as the UI does; `{ok, value}` or `{ok: false, error}` (an
/// AppError `{kind, message}`, or Tauri's string for a refused command).
const INVOKE: &str = "const [cmd, args, done] = arguments; \
    window.__TAURI_INTERNALS__.invoke(cmd, args).then( \
      (v) => done({ ok: true, value: v }), \
      (e) => done({ ok: false, error: e }));";

async fn rerecord_first(d: &Desktop) -> Result<()> {
    // After the third accept the app shows prompt 4: back to the first one.
    for expected in [3, 2, 1] {
        d.click("prev").await?;
        d.wait_attr("prompt-progress", "data-index", SHORT, |i| {
            i == expected.to_string()
        })
        .await?;
    }
    let status = d.attr("prompt-status", "data-status").await?;
    ensure!(
        status.as_deref() == Some("accepted"),
        "prompt 1 is {status:?}"
    );
    let text = d.text("prompt-text").await?;
    let (quality, speech) = take(d, &text).await?;
    ensure!(
        (quality == "pass" || quality == "warn") && speech == "pass",
        "re-recorded take: {quality}, speech {speech}"
    );
    d.click("accept").await?;
    // accept moves on to prompt 2; the first prompt now has two versions
    d.wait_attr("prompt-progress", "data-index", SHORT, |i| i == "2")
        .await?;
    d.click("prev").await?;
    d.wait_attr("prompt-status", "data-versions", SHORT, |v| v == "2")
        .await
        .context("prompt 1 should have 2 versions")?;
    d.log(format_args!("prompt 1 re-recorded: version 2"));
    Ok(())
}

async fn queue_drains(d: &Desktop) -> Result<()> {
    d.click("nav-queue").await?;
    d.wait_id("raw-count", SHORT).await?;
    // The backend uploads by itself after every accepted take: wait for it to finish.
    d.wait_attr("raw-count", "data-count", LONG, |c| c == "0")
        .await
        .context("raw recordings left on the machine")?;
    let deadline = std::time::Instant::now() + LONG;
    let statuses = loop {
        let statuses = d
            .js(
                "return [...document.querySelectorAll('[data-testid^=\"queue-item-\"]')]\
                   .map(e => e.dataset.status);",
                vec![],
            )
            .await?;
        let list: Vec<String> = serde_json::from_value(statuses)?;
        if list.len() == 4 && list.iter().all(|s| s == "uploaded") {
            break list;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the queue did not drain: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The first prompt's first sample was replaced by its re-recording; both were uploaded.
    let superseded = d
        .js(
            "return document.querySelectorAll('[data-testid^=\"queue-superseded-\"]').length;",
            vec![],
        )
        .await?;
    ensure!(
        superseded == json!(1),
        "superseded samples shown: {superseded}"
    );
    let raw = d.text("raw-count").await?;
    d.log(format_args!("queue: {statuses:?}; {raw}"));
    ensure!(
        d.attr("offline-badge", "data-testid").await?.is_none(),
        "offline badge shown"
    );
    ensure!(
        d.attr("last-wipe", "data-time")
            .await?
            .is_some_and(|t| !t.is_empty()),
        "no last wipe time"
    );
    d.screenshot("05-queue-drained").await?;
    Ok(())
}

/// The horizontal centre of an element, in CSS pixels.
async fn centre_x(d: &Desktop, id: &str) -> Result<f64> {
    let x = d
        .js(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect(); \
             return r.left + r.width / 2;",
            vec![json!(voxseal_e2e::testid(id))],
        )
        .await?;
    x.as_f64().context("no position")
}

/// Settings -> Arabic: the page is right to left and mirrored (the navigation starts on the
/// right), and a take of prompt 4 goes through record, review, queue and activity in Arabic.
async fn in_arabic(d: &Desktop) -> Result<()> {
    choose_language(d, "ar", "rtl").await?;
    ensure!(
        arabic_text(d, "nav-settings").await?,
        "the navigation is not in Arabic"
    );
    let (first, last) = (
        centre_x(d, "nav-session").await?,
        centre_x(d, "nav-settings").await?,
    );
    ensure!(
        first > last,
        "the navigation is not mirrored: Record at x={first}, Settings at x={last}"
    );
    d.click("nav-session").await?;
    while d.attr("prompt-progress", "data-index").await?.as_deref() != Some("4") {
        d.click("next").await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(
        arabic_text(d, "prompt-progress").await?,
        "the prompt counter is not in Arabic"
    );
    let text = d.text("prompt-text").await?;
    d.screenshot("20-ar-record").await?;
    let (quality, speech) = take(d, &text).await?;
    ensure!(
        (quality == "pass" || quality == "warn") && speech == "pass",
        "the take in Arabic: {quality}, speech {speech}"
    );
    ensure!(
        arabic_text(d, "quality-speech").await?,
        "the quality checks are not in Arabic"
    );
    d.js(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'end'});",
        vec![json!(voxseal_e2e::testid("review"))],
    )
    .await?;
    d.screenshot("21-ar-review").await?;
    d.click("accept").await?;
    d.wait_attr("accepted-count", "data-count", LONG, |c| c == "4")
        .await?;
    d.click("nav-queue").await?;
    d.wait_attr("raw-count", "data-count", LONG, |c| c == "0")
        .await
        .context("the take recorded in Arabic was not uploaded")?;
    ensure!(
        arabic_text(d, "raw-count").await?,
        "the queue is not in Arabic"
    );
    d.screenshot("22-ar-queue").await?;
    d.click("nav-activity").await?;
    d.wait_id("activity-list", SHORT).await?;
    let lines = d
        .js(
            "return [...document.querySelectorAll('[data-testid^=\"activity-\"][data-event]')]\
               .slice(0, 5).map(e => e.dataset.event + ': ' + e.children[1].textContent);",
            vec![],
        )
        .await?;
    d.log(format_args!("activity in Arabic: {lines}"));
    ensure!(
        lines.as_array().is_some_and(|l| l.len() == 5
            && l.iter().all(|x| x
                .as_str()
                .is_some_and(|s| s.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c))))),
        "activity lines not in Arabic: {lines}"
    );
    d.screenshot("23-ar-activity").await?;
    choose_language(d, "en", "ltr").await?;
    ensure!(
        !arabic_text(d, "nav-settings").await?,
        "still Arabic after choosing English"
    );
    Ok(())
}

/// From the page: the app's own commands work; anything the capability does not grant is
/// refused by Tauri before it reaches Rust.
async fn capability_refuses_other_commands(d: &Desktop) -> Result<()> {
    let state = d
        .js_async(INVOKE, vec![json!("app_state"), json!({})])
        .await?;
    ensure!(
        state["ok"] == json!(true) && state["value"]["enrolled"] == json!(true),
        "app_state should work from the page: {state}"
    );
    for (cmd, args) in [
        ("plugin:fs|read_file", json!({ "path": "/etc/hostname" })),
        ("plugin:app|version", json!({})),
        ("plugin:window|close", json!({ "label": "main" })),
        ("not_a_voxseal_command", json!({})),
    ] {
        let r = d.js_async(INVOKE, vec![json!(cmd), args]).await?;
        ensure!(r["ok"] == json!(false), "{cmd} was allowed: {r}");
        d.log(format_args!("{cmd} refused: {}", r["error"]));
    }
    Ok(())
}

/// An inline script inserted into the page does not run under the CSP (and eval is blocked).
async fn csp_blocks_inline_script(d: &Desktop) -> Result<()> {
    let r = d
        .js_async(
            "const done = arguments[arguments.length - 1]; \
             const violations = []; \
             document.addEventListener('securitypolicyviolation', \
               (e) => violations.push(e.violatedDirective)); \
             window.__voxsealInline = 'not run'; \
             const s = document.createElement('script'); \
             s.textContent = \"window.__voxsealInline = 'ran';\"; \
             document.body.appendChild(s); \
             let evalBlocked = false; \
             try { window['ev' + 'al']('1 + 1'); } catch (e) { evalBlocked = true; } \
             setTimeout(() => done({ inline: window.__voxsealInline, violations, evalBlocked }), 300);",
            vec![],
        )
        .await?;
    d.log(format_args!("CSP: {r}"));
    ensure!(
        r["inline"] == json!("not run"),
        "the inline script ran: {r}"
    );
    ensure!(r["evalBlocked"] == json!(true), "eval was allowed: {r}");
    ensure!(
        r["violations"].as_array().is_some_and(|v| v
            .iter()
            .any(|x| x.as_str().is_some_and(|s| s.starts_with("script-src")))),
        "no script-src violation reported: {r}"
    );
    Ok(())
}
