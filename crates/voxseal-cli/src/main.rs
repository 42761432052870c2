//! `voxseal`: record, seal, inspect and open voice samples from the command line.
#![forbid(unsafe_code)]

mod bucket_policy;
mod cli;
mod cloud;
mod demo;
mod inspect;
mod open;
mod project;
mod record;
mod ui;

use std::process::ExitCode;

use clap::Parser;

use cli::{AuditCommand, Cli, Command, EnrollCommand, ProjectCommand};

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
            eprintln!("{} {e:#}", ui::red("error:"));
            ExitCode::from(code)
        }
    }
}
