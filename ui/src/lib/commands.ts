// Generated from the IPC command table (crates/voxseal-app/src/commands.rs; the types are those of
// bindings.ts). Do not edit: change the table, then run
//   VOXSEAL_WRITE_BINDINGS=1 cargo test -p voxseal-app --lib bindings
// `cargo test -p voxseal-app` fails while this file differs from what the table produces, and
// crates/voxseal-testkit/tests/ipc_contract.rs fails while src-tauri's commands take other
// arguments than the table says.
import type { ActivityEntry, AppState, DeviceInfo, DownloadProgress, JoinPreview, Level, NoiseCheck, QueueState, TakeReview, UpdateOffer, UploadProgress } from './bindings';

/** Each command's arguments, as backend.ts's `call` takes them: one object whose keys are the Rust parameters' names in camelCase (Tauri's convention), or nothing. */
export interface CommandArgs {
  /** The app's state. */
  app_state: [];
  /** A `voxseal://enroll?...` link (in the demo, the demo code); `switch` replaces the installed project. */
  enroll: [args: { code: string; switch: boolean }];
  /** The link's project, verified against the pinned key, before the code is used. */
  preview_join: [args: { code: string; switch: boolean }];
  /** Switches to the demo (its own data directory). */
  start_demo: [];
  /** Back to the project's data directory. */
  leave_demo: [];
  /** Records the consent. */
  give_consent: [];
  /** The input devices. */
  list_devices: [];
  /** `null` = the system default; remembered in settings. */
  select_device: [args: { name: string | null }];
  /** Live levels (~25 Hz) over a channel; no recording. */
  start_meter: [args: { onLevel: (value: Level) => void }];
  /** Stops the meter. */
  stop_meter: [];
  /** Records 3 s, nothing stored. */
  check_noise: [];
  /** Returns the take id; `busy` while recording or with a take under review, `no_consent` before consent. */
  start_take: [args: { promptId: string; onLevel: (value: Level) => void }];
  /** Keeps recording 500 ms after the call. */
  stop_take: [];
  /** Resolves when playback ends or is stopped. */
  play_take: [];
  /** Stops playing. */
  stop_playback: [];
  /** Seals the take under review; `accept_failed` confirms a failing one. */
  accept_take: [args: { acceptFailed: boolean }];
  /** Discards the take under review. */
  discard_take: [];
  /** A reason marks the prompt as flagged; `busy` with a take under review. */
  skip_prompt: [args: { promptId: string; flagReason: string | null }];
  /** `busy` with a take under review. */
  go_to_prompt: [args: { index: number }];
  /** The upload queue. */
  queue: [];
  /** Uploads now; offline is a state in the result, not an error. */
  upload_now: [args: { onProgress: (value: UploadProgress) => void }];
  /** Marks a failed item for retry and starts an upload. */
  retry_item: [args: { sampleId: string }];
  /** The audit trail, newest first. */
  activity: [args: { limit: number }];
  /** Saves the theme and the language. */
  save_preferences: [args: { theme: string; language: string }];
  /** `null` when up to date, and always in builds without the updater. */
  check_update: [];
  /** Downloads and verifies the offered update; `update_refused` when its signature does not verify. */
  download_update: [args: { onProgress: (value: DownloadProgress) => void }];
  /** Installs the verified update and restarts the app. */
  install_update: [];
}

/** What each command resolves to. */
export interface CommandResults {
  app_state: AppState;
  enroll: AppState;
  preview_join: JoinPreview;
  start_demo: AppState;
  leave_demo: AppState;
  give_consent: AppState;
  list_devices: DeviceInfo[];
  select_device: AppState;
  start_meter: void;
  stop_meter: void;
  check_noise: NoiseCheck;
  start_take: string;
  stop_take: TakeReview;
  play_take: void;
  stop_playback: void;
  accept_take: AppState;
  discard_take: AppState;
  skip_prompt: AppState;
  go_to_prompt: AppState;
  queue: QueueState;
  upload_now: QueueState;
  retry_item: QueueState;
  activity: ActivityEntry[];
  save_preferences: AppState;
  check_update: UpdateOffer | null;
  download_update: UpdateOffer;
  install_update: void;
}

/** Every command, in the table's order, with its argument names. */
export const COMMAND_ARGS = {
  app_state: [],
  enroll: ['code', 'switch'],
  preview_join: ['code', 'switch'],
  start_demo: [],
  leave_demo: [],
  give_consent: [],
  list_devices: [],
  select_device: ['name'],
  start_meter: ['onLevel'],
  stop_meter: [],
  check_noise: [],
  start_take: ['promptId', 'onLevel'],
  stop_take: [],
  play_take: [],
  stop_playback: [],
  accept_take: ['acceptFailed'],
  discard_take: [],
  skip_prompt: ['promptId', 'flagReason'],
  go_to_prompt: ['index'],
  queue: [],
  upload_now: ['onProgress'],
  retry_item: ['sampleId'],
  activity: ['limit'],
  save_preferences: ['theme', 'language'],
  check_update: [],
  download_update: ['onProgress'],
  install_update: [],
} as const;

export type Command = keyof typeof COMMAND_ARGS;
