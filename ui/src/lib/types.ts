// Types of the IPC contract, transcribed from docs/app-ipc.md. Field names are the wire names
// (snake_case); keep this file in step with that document.

export type ErrorKind =
  | 'not_enrolled'
  | 'bad_code'
  | 'revoked'
  | 'offline'
  | 'no_device'
  | 'device_lost'
  | 'busy' // e.g. start_take while a take is recording
  | 'no_take' // review/accept without a take
  | 'no_consent' // recording before the consent was given
  | 'needs_passphrase' // no OS keychain: the token file needs a passphrase (project mode)
  | 'quality_failed' // accept without accept_failed on a failing take
  | 'project_refused' // the project config failed its signature, serial, expiry or broker check
  | 'other_project' // the link is for another project: switching is an explicit choice
  | 'update_refused' // an update's signature did not verify against the pinned updater key: not installed
  | 'invalid_input' // a bad argument from the UI
  | 'storage' // disk full, permissions
  | 'internal';

export const ERROR_KINDS: readonly ErrorKind[] = [
  'not_enrolled',
  'bad_code',
  'revoked',
  'offline',
  'no_device',
  'device_lost',
  'busy',
  'no_take',
  'no_consent',
  'needs_passphrase',
  'quality_failed',
  'project_refused',
  'other_project',
  'update_refused',
  'invalid_input',
  'storage',
  'internal',
];

/** message is for people; kind is for code. */
export interface AppError {
  kind: ErrorKind;
  message: string;
}

export interface Prompt {
  id: string;
  text: string;
  note: string | null;
}

export type PromptStatus = 'todo' | 'accepted' | 'skipped' | 'flagged';

export interface PromptProgress {
  prompt_id: string;
  status: PromptStatus;
  /** the current (latest accepted) sample */
  sample_id: string | null;
  /** accepted takes of this prompt, re-recordings included */
  versions: number;
  flag_reason: string | null;
}

export type Theme = 'system' | 'light' | 'dark';

export interface ProjectInfo {
  name: string;
  consent_text: string;
  features_only: boolean;
  prompt_count: number;
  /** the signed config's serial */
  serial: number;
  /** when the signed config expires (RFC 3339) */
  not_after: string | null;
}

/** What joining would install, shown before the code is used (`preview_join`). */
export interface JoinPreview {
  project: ProjectInfo;
  broker: string;
  /** the installed project this would replace */
  replaces: string | null;
}

export type ProjectNotice =
  | { kind: 'updated'; from_serial: number; to_serial: number }
  | { kind: 'refused'; message: string };

export interface AppState {
  /** demo: the embedded demo stack in its own data directory, no AWS */
  mode: 'demo' | 'project';
  /** this build contains the demo (release builds with a pinned lead key do not) */
  demo_available: boolean;
  /** a change to the installed project to show once */
  project_notice: ProjectNotice | null;
  enrolled: boolean;
  contractor: string | null;
  project: ProjectInfo | null;
  consent_given: boolean;
  /** chosen input device name; null = system default */
  device: string | null;
  prompts: Prompt[];
  /** one per prompt, same order */
  progress: PromptProgress[];
  /** index of the prompt to show */
  current_prompt: number;
  /** unaccepted takes lost to a crash, reported once at start-up */
  lost_takes: number;
  theme: Theme;
  /** a UI language code ("en", "ar"); the UI falls back to English for others */
  language: string;
  /** a mic check was done on this machine (remembered) */
  mic_checked: boolean;
  /** the take under review, so a reloaded view gets it back */
  review: TakeReview | null;
  /** demo only: an enrollment code for the demo contractor */
  demo_code: string | null;
  enroll_link: string | null;
}

export interface DeviceInfo {
  name: string;
  id: string | null;
  is_default: boolean;
  sample_rate: number;
  channels: number;
  format: string;
}

export interface Level {
  peak_dbfs: number;
  rms_dbfs: number;
  clipped: boolean;
  elapsed_s: number;
}

export type NoiseVerdict = 'good' | 'too_noisy' | 'too_quiet' | 'too_loud';

/** The voice-and-room check: a verdict and numbers; the words are the UI's (`noise.verdict.*`). */
export interface NoiseCheck {
  noise_floor_dbfs: number;
  peak_dbfs: number;
  verdict: NoiseVerdict;
}

export type Verdict = 'pass' | 'warn' | 'fail';

/**
 * One judged check: which case of it applies (`code`) and the numbers its sentence needs; the UI
 * says it as `quality.<name>.<code>` with `values` (docs/app-ipc.md lists them).
 */
export interface Check {
  name: string;
  verdict: Verdict;
  code: string;
  values: Record<string, number>;
}

export interface QualityReport {
  duration_s: number;
  peak_dbfs: number;
  rms_dbfs: number;
  clipped_ratio: number;
  noise_floor_dbfs: number;
  speech_dbfs: number;
  snr_db: number;
  speech_s: [number, number] | null;
  leading_silence_s: number;
  trailing_silence_s: number;
  trim: [number, number];
  checks: Check[];
  overall: Verdict;
}

/** Why a take ended before the contractor stopped it. */
export type Interruption =
  | { kind: 'limit'; limit_s: number } // cut at the project's longest take (capture.max_take_s)
  | { kind: 'device_lost'; detail: string }; // the device failed; detail is technical

export interface TakeReview {
  take_id: string;
  prompt_id: string;
  duration_s: number;
  /** ~400 (min, max) pairs in -1..1 for drawing */
  waveform: [number, number][];
  quality: QualityReport;
  interrupted: Interruption | null;
}

export type ItemStatus = 'sealed' | 'uploading' | 'uploaded' | 'failed';

export interface QueueItem {
  sample_id: string;
  prompt_id: string | null;
  status: ItemStatus;
  /** for the per-item progress bar */
  bytes_total: number;
  bytes_done: number;
  last_error: string | null;
  sealed_at: string;
}

export interface QueueState {
  items: QueueItem[];
  /** false after a failed attempt to reach the broker or S3 */
  online: boolean;
  /** the broker refused this enrollment as revoked on the last try: uploads stop, sealed takes stay */
  revoked: boolean;
  uploading: boolean;
  /** takes in the spool + sealed raw audio not yet uploaded */
  raw_on_machine: number;
  /** the newest spool.wiped / take.discarded event */
  last_wipe_at: string | null;
}

export interface UploadProgress {
  bytes_done: number;
  bytes_total: number;
  items_done: number;
  items_total: number;
  /** the item being uploaded */
  sample_id: string | null;
  item_bytes_done: number;
  item_bytes_total: number;
}

/** One audit event: the UI says it as `activity.event.<event>` with `params`. */
export interface ActivityEntry {
  seq: number;
  time: string;
  event: string;
  /** whitelisted, non-secret details (ids, counts, seconds, a verdict, a flag reason) */
  params: Record<string, string | number | boolean>;
}

/** Payload of the `device-lost` event. */
export interface DeviceLost {
  message: string;
}

/** Stops a subscription (event listener). */
export type Unsubscribe = () => void;

/** An update the update endpoint offers (release builds). */
export interface UpdateOffer {
  version: string;
  current_version: string;
  notes: string | null;
}

/** download_update's progress: bytes so far, and the total when the server says it. */
export interface DownloadProgress {
  done: number;
  total: number | null;
}
