//! `voxseal`: record, seal, inspect and open voice samples from the command line.
#![forbid(unsafe_code)]

mod anchors;
mod bucket_policy;
mod catalog;
mod catalog_file;
mod cli;
mod cloud;
mod consent;
mod demo;
mod erase;
mod inspect;
mod lead_aws;
mod open;
mod project;
mod record;
mod release;
mod retention;
mod ui;
mod wrapped_identity;

use std::process::ExitCode;

use clap::Parser;

use cli::{AuditCommand, Cli, Command, EnrollCommand, ProjectCommand, RetentionCommand};

/// Exit codes, documented in `voxseal --help`.
pub mod exit {
    /// A take failed its quality checks and was not accepted.
    pub const QUALITY: u8 = 3;
    /// Verification found damage (audit log, ciphertext hash, authentication).
    pub const VERIFY: u8 = 4;
}

/// An error that carries a specific exit code.
#[derive(Debug)]
pub struct Exit {
    /// The process exit code.
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn main() -> ExitCode {
    // Before anything holds a key or audio: no core file can carry them.
    voxseal_core::hardening::harden_process();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Init(a) => inspect::init(&cli, a),
        Command::Devices(a) => inspect::devices(a),
        Command::Record(a) => record::record(&cli, a),
        Command::Seal(a) => record::seal_wav(&cli, a),
        Command::Takes(a) => inspect::takes(&cli, a),
        Command::Outbox(a) => inspect::outbox(&cli, a),
        Command::Open(a) => open::open(a),
        Command::Keygen(a) => inspect::keygen(a),
        Command::Wipe(a) => inspect::wipe(a),
        Command::Audit {
            command: AuditCommand::Verify(a),
        } => inspect::audit_verify(&cli, a),
        Command::Audit {
            command: AuditCommand::Show(a),
        } => inspect::audit_show(&cli, a),
        Command::Demo(a) => demo::demo(a),
        Command::Enroll {
            command: EnrollCommand::Join(a),
        } => cloud::join(&cli, a),
        Command::Upload(a) => cloud::upload(&cli, a),
        Command::Enroll {
            command: EnrollCommand::Add(a),
        } => cloud::enroll_add(a),
        Command::Enroll {
            command: EnrollCommand::List(a),
        } => cloud::enroll_list(a),
        Command::Enroll {
            command: EnrollCommand::Revoke(a),
        } => cloud::enroll_revoke(a),
        Command::DevStack(a) => cloud::dev_stack(&cli, a),
        Command::Erase(a) => erase::erase(a),
        Command::Catalog(a) => catalog::catalog(a),
        Command::Retention {
            command: RetentionCommand::Check(a),
        } => retention::check(a),
        Command::SignRelease(a) => project::sign_release(a),
        Command::VerifyRelease(a) => project::verify_release(a),
        Command::Project {
            command: ProjectCommand::Init(a),
        } => project::init(a),
        Command::Project {
            command: ProjectCommand::Sign(a),
        } => project::sign(a),
        Command::Project {
            command: ProjectCommand::Verify(a),
        } => project::verify(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map_or(1, |x| x.code);
            eprintln!("{} {}", ui::red("error:"), error_text(&e));
            ExitCode::from(code)
        }
    }
}

/// The error and its causes as one line, `outer: cause: root`, saying each text once.
///
/// Many errors put their source into their own text (`"{path}: {source}"`) and also return it
/// from `source()`, so printing the chain (`{:#}`) said the OS error twice. A cause whose text
/// the line already holds is left out.
fn error_text(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Says its source in its own text and returns it from `source()`, as thiserror's
    /// `#[error("{path}: {source}")]` does.
    #[derive(Debug)]
    struct Wrapping {
        path: &'static str,
        source: std::io::Error,
    }

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read {}: {}", self.path, self.source)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::from(Wrapping {
            path: "x.wav",
            source: io(),
        })
        .context("cannot seal");
        let text = error_text(&e);
        assert_eq!(text.matches(&io().to_string()).count(), 1, "{text}");
        assert!(
            text.starts_with("cannot seal: cannot read x.wav: "),
            "{text}"
        );
        // A cause that is not in the text yet is still shown.
        let e = anyhow::Error::from(io()).context("cannot open the data directory");
        assert_eq!(
            error_text(&e),
            format!("cannot open the data directory: {}", io())
        );
    }
}
