// Generated from the Rust IPC types (crates/voxseal-app/src/types.rs and error.rs; the mirrors
// of voxseal-core's and voxseal-cloud's values in src/bindings.rs) by ts-rs. Do not edit: change
// the Rust types, then run
//   VOXSEAL_WRITE_BINDINGS=1 cargo test -p voxseal-app --lib bindings
// `cargo test -p voxseal-app` fails while this file differs from what the Rust types produce.

export type ErrorKind = "not_enrolled" | "bad_code" | "revoked" | "offline" | "no_device" | "device_lost" | "busy" | "no_take" | "quality_failed" | "no_consent" | "needs_passphrase" | "project_refused" | "other_project" | "update_refused" | "invalid_input" | "storage" | "internal";

export type AppError = { 
/**
 * For code.
 */
kind: ErrorKind, 
/**
 * For people.
 */
message: string, };

export type Prompt = { 
/**
 * Id.
 */
id: string, 
/**
 * Text to read.
 */
text: string, 
/**
 * Optional hint.
 */
note: string | null, };

export type PromptStatus = "todo" | "accepted" | "skipped" | "flagged";

export type PromptProgress = { 
/**
 * The prompt.
 */
prompt_id: string, 
/**
 * `todo`, `accepted`, `skipped` or `flagged`.
 */
status: PromptStatus, 
/**
 * The current sample.
 */
sample_id: string | null, 
/**
 * Accepted takes.
 */
versions: number, 
/**
 * Why it was flagged.
 */
flag_reason: string | null, };

export type ProjectInfo = { 
/**
 * Name.
 */
name: string, 
/**
 * Consent text.
 */
consent_text: string, 
/**
 * Features-only mode.
 */
features_only: boolean, 
/**
 * Number of prompts.
 */
prompt_count: number, 
/**
 * The signed config's serial.
 */
serial: number, 
/**
 * When the signed config expires (RFC 3339), if it does.
 */
not_after: string | null, };

export type JoinPreview = { 
/**
 * The project, from the config the broker served, verified against the pinned lead key.
 */
project: ProjectInfo, 
/**
 * The broker the link names.
 */
broker: string, 
/**
 * The installed project this would replace (switching is an explicit choice).
 */
replaces: string | null, };

export type ProjectNotice = { "kind": "updated", 
/**
 * The serial replaced.
 */
from_serial: number, 
/**
 * The serial installed.
 */
to_serial: number, } | { "kind": "refused", 
/**
 * Why.
 */
message: string, };

export type Mode = "demo" | "project";

export type AppState = { 
/**
 * Demo or project.
 */
mode: Mode, 
/**
 * This build contains the demo ("Try a demo"); release builds with a pinned lead key do not.
 */
demo_available: boolean, 
/**
 * A change to the installed project to show once.
 */
project_notice: ProjectNotice | null, 
/**
 * A device token is stored.
 */
enrolled: boolean, 
/**
 * The contractor.
 */
contractor: string | null, 
/**
 * The project.
 */
project: ProjectInfo | null, 
/**
 * Consent recorded.
 */
consent_given: boolean, 
/**
 * Chosen input device (None: default).
 */
device: string | null, 
/**
 * Prompts.
 */
prompts: Array<Prompt>, 
/**
 * Progress per prompt, in prompt order.
 */
progress: Array<PromptProgress>, 
/**
 * Prompt to show.
 */
current_prompt: number, 
/**
 * Unaccepted takes lost to a crash (reported once).
 */
lost_takes: number, 
/**
 * `system`, `light` or `dark`.
 */
theme: "system" | "light" | "dark", 
/**
 * UI language.
 */
language: string, 
/**
 * A mic check was done.
 */
mic_checked: boolean, 
/**
 * The take under review.
 */
review: TakeReview | null, 
/**
 * Demo mode: a code for the demo contractor.
 */
demo_code: string | null, 
/**
 * The `voxseal://enroll` link the app was opened with, or the newest one a second launch
 * handed over, until an enrollment uses it: to confirm on the enroll screen.
 */
enroll_link: string | null, };

export type DeviceInfo = { name: string, id: string | null, is_default: boolean, sample_rate: number, channels: number, format: string, };

export type Level = { peak_dbfs: number, rms_dbfs: number, clipped: boolean, elapsed_s: number, };

export type NoiseCheck = { 
/**
 * Background level, dBFS.
 */
noise_floor_dbfs: number, 
/**
 * Loudest sample, dBFS.
 */
peak_dbfs: number, 
/**
 * `good`, `too_noisy`, `too_quiet` or `too_loud`.
 */
verdict: "good" | "too_noisy" | "too_quiet" | "too_loud", };

export type Verdict = "pass" | "warn" | "fail";

export type Check = { 
/**
 * `duration`, `clipping`, `speech`, `level`, `snr`, `silence`, `noise`.
 */
name: string, 
/**
 * The verdict.
 */
verdict: Verdict, 
/**
 * Which case of the check applies.
 */
code: string, 
/**
 * The measured numbers (seconds, dB, percent) the UI puts into its sentence.
 */
values: Record<string, number>, };

export type QualityReport = { 
/**
 * Length, seconds.
 */
duration_s: number, 
/**
 * Highest |sample|, dBFS.
 */
peak_dbfs: number, 
/**
 * RMS over the whole take, dBFS.
 */
rms_dbfs: number, 
/**
 * Fraction of samples at full scale.
 */
clipped_ratio: number, 
/**
 * Background level, dBFS.
 */
noise_floor_dbfs: number, 
/**
 * Speech level, dBFS.
 */
speech_dbfs: number, 
/**
 * Speech over background, dB.
 */
snr_db: number, 
/**
 * Detected speech `[start, end)`, seconds.
 */
speech_s: [number, number] | null, 
/**
 * Silence before the speech, seconds.
 */
leading_silence_s: number, 
/**
 * Silence after the speech, seconds.
 */
trailing_silence_s: number, 
/**
 * Samples kept when trimming, `[start, end)`.
 */
trim: [number, number], 
/**
 * The judged checks, in the core's order.
 */
checks: Array<Check>, 
/**
 * The worst verdict.
 */
overall: Verdict, };

export type Interruption = { "kind": "limit", 
/**
 * The limit, seconds.
 */
limit_s: number, } | { "kind": "device_lost", 
/**
 * The device layer's own error text, for a technical detail line.
 */
detail: string, };

export type TakeReview = { 
/**
 * Take id.
 */
take_id: string, 
/**
 * Prompt id.
 */
prompt_id: string, 
/**
 * Seconds.
 */
duration_s: number, 
/**
 * (min, max) pairs for drawing.
 */
waveform: Array<[number, number]>, 
/**
 * Quality checks.
 */
quality: QualityReport, 
/**
 * Why it ended early, if it did.
 */
interrupted: Interruption | null, };

export type ItemStatus = "sealed" | "uploading" | "uploaded" | "failed";

export type QueueItem = { 
/**
 * Sample id.
 */
sample_id: string, 
/**
 * Prompt id.
 */
prompt_id: string | null, 
/**
 * `sealed`, `uploading`, `uploaded`, `failed`.
 */
status: ItemStatus, 
/**
 * Payload bytes.
 */
bytes_total: number, 
/**
 * Payload bytes uploaded.
 */
bytes_done: number, 
/**
 * Why it failed.
 */
last_error: string | null, 
/**
 * When sealed.
 */
sealed_at: string, };

export type QueueState = { 
/**
 * Items, oldest first.
 */
items: Array<QueueItem>, 
/**
 * False after a failed attempt to reach the broker or S3.
 */
online: boolean, 
/**
 * The broker refused this enrollment as revoked on the last try: uploads stop, sealed
 * takes stay on this computer until the contractor enrolls again.
 */
revoked: boolean, 
/**
 * An upload is running.
 */
uploading: boolean, 
/**
 * An upload is running, but no byte has left for a while (voxseal-cloud's
 * `WAITING_AFTER`): it waits for the network and goes on when the connection is back.
 */
waiting_for_network: boolean, 
/**
 * Takes in the spool plus sealed raw audio not yet uploaded.
 */
raw_on_machine: number, 
/**
 * The newest spool wipe.
 */
last_wipe_at: string | null, };

export type UploadProgress = { bytes_done: number, bytes_total: number, items_done: number, items_total: number, sample_id: string | null, item_bytes_done: number, item_bytes_total: number, waiting_for_network: boolean, };

export type ActivityEntry = { 
/**
 * Sequence number.
 */
seq: number, 
/**
 * Time.
 */
time: string, 
/**
 * Event name, e.g. `take.sealed`.
 */
event: string, 
/**
 * Whitelisted, non-secret details: ids, counts, seconds, a verdict, the contractor's own
 * flag reason.
 */
params: Record<string, string | number | boolean>, };

export type UpdateOffer = { 
/**
 * The version offered.
 */
version: string, 
/**
 * The version running now.
 */
current_version: string, 
/**
 * The release notes, if any.
 */
notes: string | null, };

export type DownloadProgress = { 
/**
 * Bytes received.
 */
done: number, 
/**
 * The size announced, if any.
 */
total: number | null, };
