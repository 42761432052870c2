//! `voxseal record` and `voxseal seal`: a take through review into the outbox.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use voxseal_core::capture::audio::SourceFactory;
use voxseal_core::capture::recorder::{RecordedTake, RecorderOptions, Recording};
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::project::ids::{ContractorId, PromptId, SampleId};
use voxseal_core::store::audit_event::DiscardReason;
use voxseal_core::store::take::{AcceptRefused, Acceptance, TakeInReview, discard_recorded};
use voxseal_core::store::workspace::Workspace;

use crate::cli::{Cli, DecisionArgs, RecordArgs, SealArgs};
use crate::{Exit, exit, ui};

/// What to do with a finished take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept { even_if_failed: bool },
    Discard,
    Rerecord,
}

/// `voxseal record`
pub fn record(cli: &Cli, args: &RecordArgs) -> Result<()> {
    let ws = ui::open_workspace(cli)?;
    let config = ws.project()?;
    let contractor = ws.contractor()?;
    let prompt = parse_prompt(&config, args.prompt.as_deref())?;
    let supersedes = existing_sample(&ws, args.supersedes.as_deref())?;
    crate::consent::ensure(&ws, &config, args.accept_consent.as_deref(), true)?;
    let decided = args.decision.accept || args.decision.accept_failed || args.decision.discard;
    let interactive = std::io::stdin().is_terminal() && !decided;
    if !interactive && !decided {
        bail!(
            "stdin is not a terminal, so there is no one to ask: pass --accept, --accept-failed or --discard"
        );
    }
    if args.seconds.is_none()
        && !std::io::stdin().is_terminal()
        && args.source.source.starts_with("mic")
    {
        bail!("recording from a microphone without a terminal needs --seconds <N>");
    }
    if let Some(p) = &prompt {
        ui::step(&format!("prompt {}: {}", p.id, ui::bold(&p.text)));
        if let Some(note) = &p.note {
            eprintln!("   ({note})");
        }
    }
    loop {
        let factory = ui::source_factory(&args.source.source, args.source.fast, 48_000)?;
        let take = capture(factory, &ws, &config, args.seconds)?;
        let take = ws.review_take(take, prompt.as_ref().map(|p| p.id.clone()), &config)?;
        match finish_take(
            &ws,
            &config,
            &contractor,
            take,
            supersedes.clone(),
            &args.decision,
            interactive,
        )? {
            Decision::Rerecord => {
                ui::step("re-recording");
                continue;
            }
            _ => return Ok(()),
        }
    }
}

/// `voxseal seal <file.wav>`: imports a WAV through the same spool, checks and sealing.
pub fn seal_wav(cli: &Cli, args: &SealArgs) -> Result<()> {
    let ws = ui::open_workspace(cli)?;
    let config = ws.project()?;
    let contractor = ws.contractor()?;
    let prompt = parse_prompt(&config, args.prompt.as_deref())?;
    let supersedes = existing_sample(&ws, args.supersedes.as_deref())?;
    // Validated here (pipes refused before they are opened) and measured: a file over the
    // project's longest take is refused, never cut.
    let seconds = voxseal_core::sealing::wav::WavInput::open(&args.wav)?.duration_s();
    let max = config.capture.max_take_s;
    if seconds > max {
        bail!(
            "{} is {seconds:.1} s long, over the project's limit of {max} s per take (capture.max_take_s); nothing was sealed. \
             Split it into takes of at most {max} s and seal each (e.g. `sox in.wav part.wav trim 0 {max} : newfile : restart`), \
             or ask your project lead to raise max_take_s",
            args.wav.display()
        );
    }
    crate::consent::ensure(&ws, &config, args.accept_consent.as_deref(), true)?;
    let factory = ui::source_factory(&format!("file:{}", args.wav.display()), true, 48_000)?;
    // The limit one second above the file's length: reaching it would mean the file grew.
    let take = capture_up_to(factory, &ws, max + 1.0, None)?;
    if let Some(why) = take.interrupted.clone() {
        // A file that cannot be read to its end is damaged: sealing what was read would pass a
        // fragment off as the whole recording.
        discard_recorded(&ws, take, DiscardReason::UnreadableFile)?;
        bail!("{why}; nothing was sealed");
    }
    let take = ws.review_take(take, prompt.map(|p| p.id), &config)?;
    let decision = DecisionArgs {
        accept: !args.accept_failed,
        accept_failed: args.accept_failed,
        discard: false,
    };
    finish_take(
        &ws,
        &config,
        &contractor,
        take,
        supersedes,
        &decision,
        false,
    )
    .map(|_| ())
}

/// `--supersedes`: a well-formed id of a sample in this data directory's outbox (uploaded ones
/// included), so a re-recording never points at nothing.
fn existing_sample(ws: &Workspace, id: Option<&str>) -> Result<Option<SampleId>> {
    let Some(id) = id else { return Ok(None) };
    let id: SampleId = id.parse()?;
    let (items, _) = ws.outbox.list()?;
    if !items.iter().any(|i| i.manifest.sample_id == id) {
        bail!(
            "--supersedes {id}: there is no such sample in {}; `voxseal takes` lists the samples a take can replace",
            ws.root().display()
        );
    }
    Ok(Some(id))
}

fn parse_prompt(
    config: &ProjectConfig,
    id: Option<&str>,
) -> Result<Option<voxseal_core::project::config::Prompt>> {
    let Some(id) = id else { return Ok(None) };
    let id: PromptId = id.parse()?;
    if config.prompts.is_empty() {
        return Ok(Some(voxseal_core::project::config::Prompt {
            id,
            text: String::new(),
            note: None,
        }));
    }
    match config.prompts.iter().find(|p| p.id == id) {
        Some(p) => Ok(Some(p.clone())),
        None => bail!(
            "prompt {id} is not in the project's prompt set ({} prompts)",
            config.prompts.len()
        ),
    }
}

/// Records one take into the spool, with a live meter, until the source ends, `seconds`, the
/// project's longest take (`max_take_s`: the take is then marked as cut), Enter or Ctrl-C.
pub fn capture(
    factory: SourceFactory,
    ws: &Workspace,
    config: &ProjectConfig,
    seconds: Option<f64>,
) -> Result<RecordedTake> {
    capture_up_to(factory, ws, config.capture.max_take_s, seconds)
}

/// [`capture`] with the longest take given: `cap_s` seconds.
fn capture_up_to(
    factory: SourceFactory,
    ws: &Workspace,
    cap_s: f64,
    seconds: Option<f64>,
) -> Result<RecordedTake> {
    if seconds.is_some_and(|s| s.is_nan() || s <= 0.0) {
        bail!("--seconds must be positive");
    }
    let mut opts = RecorderOptions::new(ws.spool_dir());
    opts.max_duration = Some(Duration::from_secs_f64(cap_s));
    match seconds {
        Some(s) if s > cap_s => eprintln!(
            "{} --seconds {s} is over the project's limit of {cap_s} s per take (max_take_s): the take will be cut at {cap_s} s",
            ui::yellow("warning:")
        ),
        s => opts.stop_after = s.map(Duration::from_secs_f64),
    }
    let hint = if seconds.is_some() {
        "recording"
    } else {
        "recording: press Enter or Ctrl-C to stop"
    };
    let meter = ui::Meter::new(hint);
    let rec = Recording::start(factory, opts, meter.updater()).context("cannot start recording")?;
    let src = rec.source().clone();
    eprintln!(
        "   source: {} {} ({} Hz, {} ch, {})",
        src.kind, src.name, src.sample_rate, src.channels, src.format
    );

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C exits at once (the spool file is swept on the next start).
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::Relaxed) {
                std::process::exit(130);
            }
        });
    }
    if seconds.is_none() && std::io::stdin().is_terminal() {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            stop.store(true, Ordering::Relaxed);
        });
    }
    while !rec.is_finished() && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let take = rec.stop();
    meter.finish();
    let take = take?;
    if take.reached_limit() {
        eprintln!(
            "{} the take reached the project's limit of {cap_s} s per take (max_take_s) and was cut there; its manifest marks it as cut. Re-record it if the end is missing.",
            ui::yellow("warning:")
        );
    } else if let Some(why) = &take.interrupted {
        eprintln!("{} the take was interrupted: {why}", ui::yellow("warning:"));
    }
    if take.counters.dropped > 0 {
        eprintln!(
            "{} {} samples were dropped (the computer was too busy)",
            ui::yellow("warning:"),
            take.counters.dropped
        );
    }
    Ok(take)
}

fn ask(question: &str) -> Result<String> {
    eprint!("{question} ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_lowercase())
}

/// Shows the quality report and accepts, discards or re-records.
pub fn finish_take(
    ws: &Workspace,
    config: &ProjectConfig,
    contractor: &ContractorId,
    take: TakeInReview,
    supersedes: Option<SampleId>,
    decision: &DecisionArgs,
    interactive: bool,
) -> Result<Decision> {
    ui::step(&format!(
        "take {} recorded ({:.1} s)",
        take.take().take_id,
        take.take().duration_s()
    ));
    ui::print_quality(take.quality());
    let failed = take.failed_checks().next().is_some();
    let choice = decide(failed, decision, interactive)?;
    match choice {
        Decision::Discard => take.discard(ws, DiscardReason::ByContractor)?,
        Decision::Rerecord => take.discard(ws, DiscardReason::Rerecorded)?,
        Decision::Accept { even_if_failed } => {
            let acceptance = Acceptance {
                despite_failed_checks: even_if_failed,
                supersedes,
            };
            seal(ws, config, contractor, take, &acceptance)?;
            return Ok(choice);
        }
    }
    eprintln!("   take discarded: spool file wiped, key zeroized");
    Ok(choice)
}

/// The contractor's decision: asked at a terminal, else taken from the flags.
fn decide(failed: bool, decision: &DecisionArgs, interactive: bool) -> Result<Decision> {
    if !interactive {
        return Ok(if decision.discard {
            Decision::Discard
        } else {
            Decision::Accept {
                even_if_failed: decision.accept_failed,
            }
        });
    }
    let (question, answers) = if failed {
        (
            "Take failed a check. [r]e-record, [d]iscard, or accept anyway (type 'accept')?",
            "r, d or accept",
        )
    } else {
        ("[a]ccept, [r]e-record or [d]iscard?", "a, r or d")
    };
    loop {
        match ask(question)?.as_str() {
            "a" | "accept" | "" if !failed => {
                return Ok(Decision::Accept {
                    even_if_failed: false,
                });
            }
            "accept" if failed => {
                return Ok(Decision::Accept {
                    even_if_failed: true,
                });
            }
            "r" | "re-record" | "rerecord" => return Ok(Decision::Rerecord),
            "d" | "discard" => return Ok(Decision::Discard),
            _ => eprintln!("   please answer {answers}"),
        }
    }
}

/// Seals an accepted take and says what was sealed. The CLI cannot keep a take it could not
/// seal, so a refused one is discarded (with why in the audit log).
fn seal(
    ws: &Workspace,
    config: &ProjectConfig,
    contractor: &ContractorId,
    take: TakeInReview,
    acceptance: &Acceptance,
) -> Result<()> {
    let (bar, mut update) = ui::seal_bar();
    let sealed = take.accept(ws, config, contractor, acceptance, &mut update);
    bar.finish_and_clear();
    let item = match sealed.map_err(|e| *e) {
        Ok(item) => item,
        Err(AcceptRefused::FailedChecks { take }) => {
            let take_id = take.take().take_id.clone();
            take.discard(ws, DiscardReason::FailedChecks)?;
            return Err(Exit {
                code: exit::QUALITY,
                message: format!(
                    "take {take_id} failed quality checks and was discarded; re-record it, or pass --accept-failed to keep it anyway"
                ),
            }
            .into());
        }
        Err(refused) => {
            let msg = refused.to_string();
            if let Some(take) = refused.into_take() {
                let _ = take.discard(ws, DiscardReason::SealingFailed);
                bail!("{msg}; the take was discarded");
            }
            bail!("{msg}");
        }
    };
    ui::step(&format!(
        "sealed {} into {}",
        ui::bold(item.manifest.sample_id.as_str()),
        item.dir.display()
    ));
    for p in &item.manifest.payloads {
        eprintln!(
            "   {:<24} {:>10}  sha256 {}…  to {} recipient(s)",
            p.file,
            ui::bytes(p.size),
            &p.sha256[..16],
            p.recipients.len()
        );
    }
    eprintln!(
        "   spool file wiped and its key zeroized; plaintext audio is gone from this machine"
    );
    println!("{}", item.manifest.sample_id);
    Ok(())
}
