//! Terminal output helpers: colours, the level meter, quality reports, progress bars, and the
//! shared plumbing commands need (data directory, audio source).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use voxseal_core::capture::audio::Level;
use voxseal_core::capture::audio::SourceFactory;
use voxseal_core::dsp::quality::{QualityReport, Verdict};
use voxseal_core::sealing::seal::SealProgress;
use voxseal_core::store::workspace::Workspace;

use crate::cli::Cli;

/// Colours on stderr: a terminal, no `NO_COLOR`, and on Windows a console that interprets ANSI
/// escape codes (turned on here: the console of Windows 10 and later does, older ones stay plain).
fn color_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal() && ansi_console()
    })
}

#[cfg(windows)]
fn ansi_console() -> bool {
    anstyle_query::windows::enable_ansi_colors().unwrap_or(false)
}

#[cfg(not(windows))]
fn ansi_console() -> bool {
    true
}

fn paint(code: &str, s: &str) -> String {
    if color_on() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

/// Red text (errors, failures).
pub fn red(s: &str) -> String {
    paint("1;31", s)
}

/// Yellow text (warnings).
pub fn yellow(s: &str) -> String {
    paint("33", s)
}

/// Green text (success).
pub fn green(s: &str) -> String {
    paint("32", s)
}

/// Bold text.
pub fn bold(s: &str) -> String {
    paint("1", s)
}

/// A step of what a command is doing, on stderr.
pub fn step(msg: &str) {
    eprintln!("{} {msg}", bold("=>"));
}

/// The data directory: `--data-dir`, `$VOXSEAL_DATA_DIR`, or the platform's local data
/// directory (on Windows %LOCALAPPDATA%, never the roaming profile a domain copies to a server;
/// elsewhere the same as the data directory).
pub fn data_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(d) = &cli.data_dir {
        return Ok(d.clone());
    }
    let base = dirs::data_local_dir()
        .context("cannot find a data directory for this user; pass --data-dir")?;
    Ok(base.join("voxseal"))
}

/// The extra lead key of `--trust-lead-key` / `VOXSEAL_TRUST_LEAD_KEY`: accepted only by builds
/// without a pinned key, and never from inside the data directory (whatever can write there
/// could otherwise make this program trust its own configs).
fn extra_lead_key(cli: &Cli, data_dir: &std::path::Path) -> Result<Option<String>> {
    let Some(file) = &cli.trust_lead_key else {
        return Ok(None);
    };
    if voxseal_core::project::signing::has_pinned_key() {
        bail!(
            "this build trusts only the project-lead key built into it: remove --trust-lead-key (or VOXSEAL_TRUST_LEAD_KEY)"
        );
    }
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    if let (Some(f), Some(d)) = (canonical(file), canonical(data_dir))
        && f.starts_with(&d)
    {
        bail!(
            "--trust-lead-key {} is inside the data directory {}: keep the lead key outside it",
            file.display(),
            data_dir.display()
        );
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the lead key {}", file.display()))?;
    Ok(Some(voxseal_core::project::signing::public_key_from_text(
        &text,
    )?))
}

/// The data directory, which must exist: only `init` and `enroll join` create one, so a mistyped
/// `--data-dir` is reported instead of becoming an empty new directory.
pub fn existing_data_dir(cli: &Cli) -> Result<PathBuf> {
    let dir = data_dir(cli)?;
    if !dir.is_dir() {
        anyhow::bail!(
            "there is no data directory at {}: check --data-dir (or $VOXSEAL_DATA_DIR), or set this machine up first with `voxseal init --contractor <id> --project <project.toml>` or `voxseal enroll join <code>`",
            dir.display()
        );
    }
    Ok(dir)
}

/// Opens the workspace of an existing data directory, telling the user about anything a crash
/// left behind.
pub fn open_workspace(cli: &Cli) -> Result<Workspace> {
    open_workspace_at(cli, existing_data_dir(cli)?)
}

/// Opens the workspace, creating the data directory if it is missing (`init`, `enroll join`).
pub fn create_workspace(cli: &Cli) -> Result<Workspace> {
    open_workspace_at(cli, data_dir(cli)?)
}

fn open_workspace_at(cli: &Cli, dir: PathBuf) -> Result<Workspace> {
    let (mut ws, report) = Workspace::open(&dir)
        .with_context(|| format!("cannot open data directory {}", dir.display()))?;
    if let Some(key) = extra_lead_key(cli, &dir)? {
        ws.trust(key);
    }
    for s in &report.swept_spool {
        eprintln!(
            "{} removed {} ({} bytes): a take that was never accepted, left by a crash; its key is gone, so it was unreadable",
            yellow("note:"),
            s.file,
            s.bytes
        );
    }
    for s in &report.logged_after_crash {
        eprintln!(
            "{} sample {s} was sealed just before a crash; it is in the outbox and now in the audit log",
            yellow("note:")
        );
    }
    for s in &report.swept_staging {
        eprintln!(
            "{} removed half-sealed outbox item {s} left by a crash",
            yellow("note:")
        );
    }
    Ok(ws)
}

/// Parses `--source` into something the recorder thread can open.
pub fn source_factory(spec: &str, fast: bool, synthetic_rate: u32) -> Result<SourceFactory> {
    Ok(voxseal_core::capture::audio::parse_source(
        spec,
        !fast,
        synthetic_rate,
    )?)
}

/// A one-line live level meter.
pub struct Meter {
    bar: ProgressBar,
}

impl Meter {
    /// Starts the meter (hidden when stderr is not a terminal).
    pub fn new(hint: &str) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(60)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:40.green/black}] {msg}")
                .expect("valid template")
                .progress_chars("█▌ "),
        );
        bar.set_prefix("REC");
        bar.set_message(hint.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar }
    }

    /// A callback for the recorder thread.
    pub fn updater(&self) -> impl FnMut(Level) + Send + 'static {
        let bar = self.bar.clone();
        move |l: Level| {
            // Map -60..0 dBFS onto the bar.
            bar.set_position(((l.peak_dbfs + 60.0).clamp(0.0, 60.0)) as u64);
            let clip = if l.clipped {
                red(" CLIP")
            } else {
                String::new()
            };
            let secs = l.elapsed_s;
            bar.set_message(format!(
                "{:>6.1} dBFS peak {:>6.1} RMS  {:02}:{:04.1}{clip}",
                l.peak_dbfs,
                l.rms_dbfs,
                (secs / 60.0) as u32,
                secs % 60.0
            ));
        }
    }

    /// Removes the meter line.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

/// Prints a quality report.
pub fn print_quality(r: &QualityReport) {
    let mark = |v: Verdict| match v {
        Verdict::Pass => green("pass"),
        Verdict::Warn => yellow("warn"),
        Verdict::Fail => red("FAIL"),
    };
    eprintln!(
        "   {:.2} s, peak {:.1} dBFS, speech {:.1} dBFS, background {:.1} dBFS, SNR {:.0} dB",
        r.duration_s, r.peak_dbfs, r.speech_dbfs, r.noise_floor_dbfs, r.snr_db
    );
    for c in &r.checks {
        eprintln!("   {:<4}  {:<9} {}", mark(c.verdict), c.name, c.reason);
    }
    eprintln!("   overall: {}", mark(r.overall));
}

/// A progress bar for sealing.
pub fn seal_bar() -> (ProgressBar, impl FnMut(SealProgress)) {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(1)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("   sealing {msg:<8} [{bar:30.cyan/black}] {percent:>3}%")
            .expect("valid template")
            .progress_chars("█▌ "),
    );
    let b = bar.clone();
    let update = move |p: SealProgress| {
        b.set_message(p.stage);
        b.set_length(p.total.max(1));
        b.set_position(p.done);
    };
    (bar, update)
}

/// Human-readable bytes.
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / 1024.0 / 1024.0)
    } else if n >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n} B")
    }
}
