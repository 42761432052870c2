//! Steps of the contractor's flow that several end-to-end tests take.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use serde_json::json;

use crate::Desktop;

/// A screen change or a single answer.
pub const SHORT: Duration = Duration::from_secs(10);
/// App start-up (first paint) and the upload of the whole queue.
pub const LONG: Duration = Duration::from_secs(45);
/// Loud enough to count as speech on the meter, in dBFS (its floor is -60).
pub const SPEECH_PEAK: f64 = -35.0;

/// The mic check screen: the live meter shows speech, the noise check says "good"; then on.
/// `shot` names a screenshot of the screen.
pub async fn mic_check(d: &Desktop, shot: Option<&str>) -> Result<()> {
    // The meter starts with the screen; the first capture callback takes 1.3-2 s.
    d.wait_id("noise-check", SHORT)
        .await
        .context("the mic check after consenting")?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let speech = d.speak("Testing the microphone: one, two, three, four, five.");
    let peak = d
        .wait_attr("meter-peak", "data-value", LONG, |v| {
            v.parse::<f64>().is_ok_and(|db| db > SPEECH_PEAK)
        })
        .await;
    let peak = match peak {
        Ok(p) => p,
        Err(e) => {
            let kind = d.attr("mic-error", "data-kind").await?;
            return Err(e.context(format!(
                "the live meter never showed the speech (mic error: {kind:?})"
            )));
        }
    };
    d.log(format_args!("meter peak {peak} dBFS while speaking"));
    speech.await??;

    // The noise check records 3 s: speak through it, as a contractor reading aloud would.
    d.click("noise-check").await?;
    let speech = d.speak("The quick brown fox jumps over the lazy dog.");
    let verdict = d
        .wait_attr("noise-verdict", "data-verdict", SHORT, |_| true)
        .await
        .context("no noise check verdict")?;
    speech.await??;
    d.log(format_args!("noise check: {verdict}"));
    ensure!(
        verdict == "good",
        "noise check verdict {verdict}, expected good"
    );
    if let Some(name) = shot {
        d.screenshot(name).await?;
    }
    d.click("mic-continue").await?;
    Ok(())
}

/// One take of `text`: record, speak, stop once the speech has come through; returns the
/// overall verdict and the speech check's verdict.
pub async fn take(d: &Desktop, text: &str) -> Result<(String, String)> {
    d.click("record").await?;
    d.wait_id("stop", SHORT).await?;
    let speech = d.speak(text);
    d.wait_attr("meter-peak", "data-value", LONG, |v| {
        v.parse::<f64>().is_ok_and(|db| db > SPEECH_PEAK)
    })
    .await
    .context("the recording meter never showed the speech")?;
    let played = speech.await??;
    // Let the end of the speech through the monitor and the capture buffers.
    tokio::time::sleep(Duration::from_millis(700)).await;
    d.click("stop").await?;
    let quality = d
        .wait_attr("quality-overall", "data-verdict", SHORT, |_| true)
        .await?;
    let speech_check = d
        .attr("quality-speech", "data-verdict")
        .await?
        .unwrap_or_default();
    let seconds = d.attr("take-duration", "data-seconds").await?;
    let points = d.attr("waveform", "data-points").await?;
    let checks = d
        .js(
            "return [...document.querySelectorAll('[data-testid^=\"quality-\"][data-verdict]')]\
               .map(e => e.dataset.testid.slice(8) + '=' + e.dataset.verdict).join(' ');",
            vec![],
        )
        .await?;
    d.log(format_args!(
        "take: {seconds:?} s (speech played {played:.1?}), waveform {points:?} points, \
         quality {quality}: {}",
        checks.as_str().unwrap_or_default()
    ));
    ensure!(points.as_deref().is_some_and(|p| p != "0"), "no waveform");
    Ok((quality, speech_check))
}

/// Records every height the header takes from now on (until the page is reloaded).
const WATCH_HEADER: &str = "const h = document.querySelector('header'); \
    window.__headerHeights = [h.getBoundingClientRect().height]; \
    new ResizeObserver(() => window.__headerHeights.push(h.getBoundingClientRect().height)) \
    .observe(h);";

/// The header kept one height while takes were accepted and uploaded: the queue's count
/// coming and going must not move the page under the contractor's pointer (it did at the
/// default window width: a click on Record landed on the card 40 px below).
pub async fn header_kept_its_height(d: &Desktop) -> Result<()> {
    let heights = d.js("return window.__headerHeights;", vec![]).await?;
    let heights: Vec<f64> = serde_json::from_value(heights).context("header heights")?;
    ensure!(
        heights.windows(2).all(|w| w[0] == w[1]),
        "the header changed height while the queue count changed: {heights:?} px"
    );
    d.log(format_args!(
        "header height {:?} px throughout ({} observations)",
        heights.first(),
        heights.len()
    ));
    Ok(())
}

/// Starts recording the header's heights (see `header_kept_its_height`).
pub async fn watch_header(d: &Desktop) -> Result<()> {
    d.js(WATCH_HEADER, vec![]).await.map(drop)
}

/// Chooses `code` in Settings' language list, as a person does, and waits for the page's
/// `lang` and `dir` to follow.
pub async fn choose_language(d: &Desktop, code: &str, dir: &str) -> Result<()> {
    d.click("nav-settings").await?;
    d.wait_id("language-select", SHORT).await?;
    d.js(
        "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
         s.dispatchEvent(new Event('change', { bubbles: true }));",
        vec![json!(crate::testid("language-select")), json!(code)],
    )
    .await?;
    let deadline = std::time::Instant::now() + SHORT;
    loop {
        let page = d
            .js(
                "return [document.documentElement.lang, document.documentElement.dir];",
                vec![],
            )
            .await?;
        if page == json!([code, dir]) {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the page did not turn {code}/{dir}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// True when the element's text is written in Arabic script.
pub async fn arabic_text(d: &Desktop, id: &str) -> Result<bool> {
    let text = d.text(id).await?;
    Ok(text.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)))
}
