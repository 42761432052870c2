//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Voxseal records voice samples, extracts features, seals both with age and keeps them in an
/// outbox for upload, without ever leaving plaintext audio on disk.
#[derive(Debug, Parser)]
#[command(name = "voxseal", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// The data directory (spool, outbox, audit log, settings).
    #[arg(long, global = true, env = "VOXSEAL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Also trust this project-lead public key (a minisign .pub file outside the data
    /// directory) for project configs. Only builds without a pinned lead key accept it (QA and
    /// development); a release build trusts only the key built into it.
    #[arg(
        long,
        global = true,
        env = "VOXSEAL_TRUST_LEAD_KEY",
        value_name = "FILE"
    )]
    pub trust_lead_key: Option<PathBuf>,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 success, 1 error, 2 bad arguments, 3 take failed quality checks \
(not accepted), 4 verification failed (damaged audit log or ciphertext).\n\
Start with `voxseal demo`, then see `voxseal help <command>`.";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up this machine: the contractor id and the project config to record for.
    Init(InitArgs),
    /// List audio input devices.
    Devices(DevicesArgs),
    /// Record a take, check its quality, and accept (seal) or discard it.
    Record(RecordArgs),
    /// Seal an existing WAV file as a take (imports, QA).
    Seal(SealArgs),
    /// List accepted samples per prompt, with re-recordings.
    Takes(TakesArgs),
    /// Show the outbox: sealed items, their state and size.
    Outbox(OutboxArgs),
    /// Decrypt sealed samples with an identity file, verifying them against their manifest.
    Open(OpenArgs),
    /// Create an age identity (secret key file) and print its recipient (public key).
    Keygen(KeygenArgs),
    /// Securely delete files or directories (overwrite, truncate, rename, unlink).
    Wipe(WipeArgs),
    /// Check or show the audit log.
    Audit {
        /// What to do.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Try the whole pipeline in a throwaway directory: record 5 s, seal, open, wipe.
    Demo(DemoArgs),
    /// Enrollment: join a project with a code (contractors); add, list, revoke (project leads).
    Enroll {
        /// What to do.
        #[command(subcommand)]
        command: EnrollCommand,
    },
    /// Upload sealed samples in the outbox (resumes interrupted uploads; offline-safe). With
    /// nothing queued it stops before asking for credentials.
    Upload(UploadArgs),
    /// Run the local stack (S3 endpoint + broker on 127.0.0.1) for trying Voxseal without AWS.
    DevStack(DevStackArgs),
    /// (Project leads) Write SHA256SUMS for a release directory and sign it with the lead key.
    SignRelease(SignReleaseArgs),
    /// Verify a release directory: the signed SHA256SUMS, every artifact, and the updater signatures.
    VerifyRelease(VerifyReleaseArgs),
    /// (Project leads) Erase a contractor who withdrew consent: every version of every object
    /// under their raw/, features/ and manifests/ prefixes, with the erasure recorded in the audit
    /// bucket. Uses your AWS credentials (s3:ListBucketVersions, s3:DeleteObjectVersion, and
    /// s3:PutObject on the audit bucket). Cannot be undone: try --dry-run first.
    Erase(EraseArgs),
    /// Build the catalogue: one row per sample from the manifests alone (no key, nothing
    /// decrypted), as a Parquet file for SQL or pandas. Uses your AWS credentials
    /// (s3:ListBucket and s3:GetObject on manifests/); the data team's scoped session:
    /// `voxseal-data catalog` (python/README.md).
    Catalog(CatalogArgs),
    /// (Project leads) Check the bucket's lifecycle rules against the signed project.
    Retention {
        /// The command.
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// (Project leads) Create, sign and verify project configs.
    Project {
        /// What to do.
        #[command(subcommand)]
        command: ProjectCommand,
    },
}

/// `voxseal sign-release`
#[derive(Debug, Args)]
pub struct SignReleaseArgs {
    /// The directory with the release artifacts.
    pub dir: PathBuf,
    /// The lead secret key.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

/// `voxseal verify-release`
#[derive(Debug, Args)]
pub struct VerifyReleaseArgs {
    /// The directory with the release artifacts, SHA256SUMS and SHA256SUMS.sig.
    pub dir: PathBuf,
    /// Verify with this lead public key instead of the one built in.
    #[arg(long, value_name = "FILE")]
    pub lead_pub: Option<PathBuf>,
    /// The updater public key (base64, as in tauri.conf.json plugins.updater.pubkey) to check
    /// `<artifact>.sig` files with.
    #[arg(long, value_name = "BASE64")]
    pub updater_pubkey: Option<String>,
}

/// `voxseal project ...`
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project: age identities, a lead signing key, and a signed project.toml.
    Init(Box<ProjectInitArgs>),
    /// Sign project.toml (after editing it) with the lead key, writing project.toml.sig.
    Sign(ProjectSignArgs),
    /// Check that project.toml is valid and its signature verifies.
    Verify(ProjectVerifyArgs),
}

/// `voxseal project init`
#[derive(Debug, Args)]
pub struct ProjectInitArgs {
    /// The new project's directory (created; must be empty if it exists).
    pub dir: PathBuf,
    /// Project name (3-63 characters: a-z, 0-9, '-').
    #[arg(long)]
    pub name: String,
    /// Prompt set: CSV with header `id,text,note`, or one prompt per line.
    #[arg(long, value_name = "FILE")]
    pub prompts: Option<PathBuf>,
    /// The consent text contractors accept (a text file).
    #[arg(long, value_name = "FILE")]
    pub consent: Option<PathBuf>,
    /// Never seal or upload raw audio (no archive key is made).
    #[arg(long)]
    pub features_only: bool,
    /// S3 bucket for uploads.
    #[arg(long, requires_all = ["region", "kms_key_arn", "broker_url"])]
    pub bucket: Option<String>,
    /// AWS region.
    #[arg(long)]
    pub region: Option<String>,
    /// KMS key ARN for SSE-KMS.
    #[arg(long)]
    pub kms_key_arn: Option<String>,
    /// Credential broker URL (https://...): enrolling apps fetch the signed config from it and
    /// honour enrollment links only for it.
    #[arg(long)]
    pub broker_url: Option<String>,
    /// Days the signed config stays valid (its `not_after`); re-sign with a higher serial before.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub valid_days: u32,
    /// S3 endpoint URL (only for S3-compatible stores; AWS needs none).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Store the lead signing key unencrypted (otherwise it is protected by a password:
    /// $VOXSEAL_LEAD_KEY_PASSWORD or asked at the terminal).
    #[arg(long)]
    pub no_password: bool,
    /// Sign with this existing lead key instead of making a new one (one lead key, pinned into
    /// one installer, for several projects); needs --lead-pub.
    #[arg(long, value_name = "FILE", requires = "lead_pub")]
    pub lead_key: Option<PathBuf>,
    /// The public key of --lead-key.
    #[arg(long, value_name = "FILE", requires = "lead_key")]
    pub lead_pub: Option<PathBuf>,
    /// Production: wrap the training and archive identities under this KMS key (id, ARN or
    /// alias: the stack's IdentityKeyArn) and store them in Secrets Manager, instead of writing
    /// them to keys/ as plaintext files. Uses your AWS credentials (profile, SSO or environment).
    #[arg(long, value_name = "KMS_KEY")]
    pub wrap_identities: Option<String>,
    /// Secret name prefix of the wrapped identities: <PREFIX>/training and <PREFIX>/archive
    /// (default voxseal/<name>, what the stack's reader roles may read).
    #[arg(long, value_name = "PREFIX", requires = "wrap_identities")]
    pub identity_secret_prefix: Option<String>,
}

/// `voxseal project sign`
#[derive(Debug, Args)]
pub struct ProjectSignArgs {
    /// The project.toml to sign.
    pub config: PathBuf,
    /// The lead secret key.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

/// `voxseal project verify`
#[derive(Debug, Args)]
pub struct ProjectVerifyArgs {
    /// The project.toml to check (project.toml.sig next to it).
    pub config: PathBuf,
    /// Verify with this lead public key instead of the one built in.
    #[arg(long, value_name = "FILE")]
    pub lead_pub: Option<PathBuf>,
}

/// `voxseal erase`
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The contractor whose samples go.
    #[arg(long)]
    pub contractor: String,
    /// Why, as recorded in the erasure events (e.g. "consent withdrawn, ticket 4411").
    #[arg(long)]
    pub reason: String,
    /// The signed project.
    #[command(flatten)]
    pub signed: SignedProjectArgs,
    /// The audit bucket that receives the erasure events (the stack's AuditLogBucketName).
    #[arg(long, value_name = "NAME")]
    pub audit_bucket: String,
    /// List every version that would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm without the prompt (scripts). Erasure cannot be undone.
    #[arg(long)]
    pub yes: bool,
    /// A catalogue file to remove the contractor's rows from (repeat for several); made by
    /// `voxseal catalog` or `voxseal-data catalog`. Rewritten atomically.
    #[arg(long, value_name = "FILE")]
    pub catalog: Vec<PathBuf>,
}

/// `voxseal catalog`
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// The signed project.
    #[command(flatten)]
    pub signed: SignedProjectArgs,
    /// The Parquet file to write (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Only these contractors (repeat for several).
    #[arg(long, value_name = "ID")]
    pub contractor: Vec<String>,
}

/// `voxseal retention ...`
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Compare the bucket's lifecycle rules with the signed project's retention_days, and check
    /// that noncurrent versions are deleted; exits 4 when they differ. Uses your AWS credentials
    /// (s3:GetLifecycleConfiguration).
    Check(RetentionCheckArgs),
}

/// `voxseal retention check`
#[derive(Debug, Args)]
pub struct RetentionCheckArgs {
    /// The signed project.
    #[command(flatten)]
    pub signed: SignedProjectArgs,
}

/// A lead's signed project: its bucket, region and endpoint, verified before use.
#[derive(Debug, Args)]
pub struct SignedProjectArgs {
    /// The signed project.toml (project.toml.sig next to it).
    #[arg(long, value_name = "FILE")]
    pub project: PathBuf,
    /// Verify the project with this lead public key instead of the one built in.
    #[arg(long, value_name = "FILE")]
    pub lead_pub: Option<PathBuf>,
}

/// `voxseal enroll ...`
#[derive(Debug, Subcommand)]
pub enum EnrollCommand {
    /// Join a project with the enrollment code (or voxseal://enroll link) from your project lead.
    Join(JoinArgs),
    /// (Project leads) Add a contractor and print their one-time enrollment code.
    Add(EnrollAddArgs),
    /// (Project leads) List contractors and their enrollment state (no secrets).
    List(RegistryArgs),
    /// (Project leads) Revoke a contractor: the broker issues them no new session (sessions
    /// already issued end within 15 minutes; the stack's RevokedContractors stops them at once).
    Revoke(EnrollRevokeArgs),
}

/// Where the broker's enrollment registry is.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The broker's registry file.
    #[arg(long, env = "VOXSEAL_REGISTRY", value_name = "FILE")]
    pub registry: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `voxseal enroll add`
#[derive(Debug, Args)]
pub struct EnrollAddArgs {
    /// The contractor id (3-63 characters: a-z, 0-9, '-').
    pub contractor: String,
    /// The registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Days the code stays valid.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=90))]
    pub days: u32,
    /// The broker URL to put in the voxseal://enroll link.
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
}

/// `voxseal enroll revoke`
#[derive(Debug, Args)]
pub struct EnrollRevokeArgs {
    /// The contractor id.
    pub contractor: String,
    /// The registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Also stop their sessions already issued, at once: add them to the upload bucket's
    /// DenyRevokedContractors statement (uses your AWS credentials: s3:GetBucketPolicy and
    /// s3:PutBucketPolicy). Idempotent.
    #[arg(long, requires = "bucket")]
    pub now: bool,
    /// The upload bucket (with --now).
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The bucket's region (with --now; default: AWS_REGION or your AWS profile's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

/// `voxseal dev-stack`
#[derive(Debug, Args)]
pub struct DevStackArgs {
    /// State directory (bucket contents, demo keys, registry); kept between runs.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Port of the S3 endpoint (0: any).
    #[arg(long, default_value_t = 9000)]
    pub s3_port: u16,
    /// Port of the broker (0: any).
    #[arg(long, default_value_t = 8787)]
    pub broker_port: u16,
    /// Lifetime of issued credentials, seconds (at most 900, like every broker session).
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u32).range(1..=900))]
    pub grant_secs: u32,
    /// The demo project's longest take in seconds (default 120; benchmarks record longer ones).
    #[arg(long, value_name = "SECONDS", value_parser = max_take_secs)]
    pub max_take_s: Option<f64>,
    /// Also set up this data directory (--data-dir) for the demo contractor and enroll it.
    #[arg(long)]
    pub join: bool,
}

/// `voxseal enroll join`
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The enrollment code, or the whole voxseal://enroll?... link.
    pub code: String,
    /// The broker URL (taken from the link when omitted).
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
    /// Keep the device token in a passphrase-encrypted file instead of the OS keychain.
    #[arg(long)]
    pub file_store: bool,
    /// Replace the installed project with the link's project (refused while samples of the
    /// installed one wait for upload).
    #[arg(long)]
    pub switch_project: bool,
    /// Accept the project's consent text (shown) here: at least 12 hex digits of its SHA-256.
    /// Otherwise `record` and `seal` ask for it first.
    #[arg(long, value_name = "SHA256_PREFIX")]
    pub accept_consent: Option<String>,
}

/// `voxseal upload`
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Direct mode (leads, QA): assume this upload role with your AWS profile instead of asking
    /// the broker.
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// The AWS profile for direct mode.
    #[arg(long, requires = "role_arn")]
    pub profile: Option<String>,
    /// Multipart part size in MiB (default 8; objects above it are uploaded in parts).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(5..=512))]
    pub part_size_mib: Option<u64>,
    /// Parts uploaded at once, across an item's payloads (default 2).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub parts_in_flight: Option<u16>,
}

/// `voxseal init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Your contractor id (3-63 characters: a-z, 0-9, '-').
    #[arg(long)]
    pub contractor: String,
    /// The project config (project.toml) from your project lead; project.toml.sig must be next
    /// to it.
    #[arg(long, value_name = "FILE")]
    pub project: PathBuf,
    /// Accept the project's consent text (shown) without asking: at least 12 hex digits of
    /// its SHA-256, which the refusal message prints. Recorded once per machine and project.
    #[arg(long, value_name = "SHA256_PREFIX")]
    pub accept_consent: Option<String>,
}

/// `voxseal devices`
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where audio comes from.
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// mic (default input), mic:<name>, file:<path.wav>, synthetic:speech|noise|tone[:hz].
    #[arg(long, default_value = "mic", value_name = "SOURCE")]
    pub source: String,
    /// Read files and synthetic sources as fast as possible instead of in real time.
    #[arg(long)]
    pub fast: bool,
}

/// `voxseal record`
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Audio source.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Stop after this many seconds (default: press Enter or Ctrl-C to stop; files stop at their end).
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<f64>,
    /// The prompt being read (an id from the project's prompt set).
    #[arg(long, value_name = "ID")]
    pub prompt: Option<String>,
    /// This take replaces an earlier sample (a re-recording).
    #[arg(long, value_name = "SAMPLE_ID")]
    pub supersedes: Option<String>,
    /// Decision without asking.
    #[command(flatten)]
    pub decision: DecisionArgs,
    /// Accept the project's consent text (shown) without asking: at least 12 hex digits of
    /// its SHA-256, which the refusal message prints. Recorded once per machine and project.
    #[arg(long, value_name = "SHA256_PREFIX")]
    pub accept_consent: Option<String>,
}

/// What to do with a take without asking.
#[derive(Debug, Args, Clone, Default)]
#[group(multiple = false)]
pub struct DecisionArgs {
    /// Accept the take if it passes (or only warns); refuse it if a check fails.
    #[arg(long)]
    pub accept: bool,
    /// Accept the take even if a check fails (recorded in the manifest).
    #[arg(long)]
    pub accept_failed: bool,
    /// Discard the take after showing its quality.
    #[arg(long)]
    pub discard: bool,
}

/// `voxseal seal`
#[derive(Debug, Args)]
pub struct SealArgs {
    /// The WAV file.
    pub wav: PathBuf,
    /// The prompt it answers.
    #[arg(long, value_name = "ID")]
    pub prompt: Option<String>,
    /// This take replaces an earlier sample.
    #[arg(long, value_name = "SAMPLE_ID")]
    pub supersedes: Option<String>,
    /// Seal even if a quality check fails.
    #[arg(long)]
    pub accept_failed: bool,
    /// Accept the project's consent text (shown) without asking: at least 12 hex digits of
    /// its SHA-256, which the refusal message prints. Recorded once per machine and project.
    #[arg(long, value_name = "SHA256_PREFIX")]
    pub accept_consent: Option<String>,
}

/// `voxseal takes`
#[derive(Debug, Args)]
pub struct TakesArgs {
    /// Only this prompt.
    #[arg(long, value_name = "ID")]
    pub prompt: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `voxseal outbox`
#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `voxseal open`
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Outbox item directories (with manifest.json) or single .age files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The age identity file (secret key) to decrypt with; repeat for several.
    #[arg(long, short = 'i', required = true, value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Write decrypted WAV / safetensors here (otherwise only verify and summarize).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The manifest to verify single .age files against.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}

/// `voxseal keygen`
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the identity (never overwritten; mode 0600).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// A comment stored in the file.
    #[arg(long, default_value = "voxseal identity")]
    pub label: String,
}

/// `voxseal wipe`
#[derive(Debug, Args)]
pub struct WipeArgs {
    /// Files or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `voxseal audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain (report the first bad line) and the anchors sealed manifests
    /// recorded in it (lines cut off at the end, or a rewritten chain).
    Verify(AuditVerifyArgs),
    /// Print the newest events.
    Show(AuditShowArgs),
}

/// `voxseal audit verify`
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// A log file to check instead of the data directory's.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Check the log against the audit anchors of these manifests: a directory searched for
    /// `manifest.json` files (an outbox, or manifests downloaded from the bucket), or one
    /// manifest. Default: the data directory's outbox.
    #[arg(long, value_name = "DIR|FILE")]
    pub against: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `voxseal audit show`
#[derive(Debug, Args)]
pub struct AuditShowArgs {
    /// How many of the newest events.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub last: usize,
}

/// `voxseal demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds to record.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Audio source (default: the microphone if there is one, else a synthetic voice).
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Keep the demo directory (keys, outbox, audit log) here instead of deleting it.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// `--max-take-s`: a positive number of seconds.
fn max_take_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s} is not a positive number of seconds")),
    }
}
