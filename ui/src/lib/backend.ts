// The only module that imports @tauri-apps/api. Everything else talks to the Backend interface,
// which scripted.ts also implements (canned answers for Vitest and `npm run dev` in a plain browser).
//
// One method per command of docs/app-ipc.md, plus subscriptions to the three broadcast events.
// Each command's name, argument names and types and result come from commands.ts, generated from
// the Rust command table (crates/voxseal-app/src/commands.rs). Every rejection is normalized to
// AppError {kind, message}.
import { Channel, invoke, type InvokeArgs } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { COMMAND_ARGS, type Command, type CommandArgs, type CommandResults } from './commands';
import { normalizeError } from './errors';
import type {
  ActivityEntry,
  AppState,
  DeviceInfo,
  DeviceLost,
  DownloadProgress,
  JoinPreview,
  Level,
  NoiseCheck,
  QueueState,
  TakeReview,
  Unsubscribe,
  UpdateOffer,
  UploadProgress,
} from './types';

export { normalizeError, isAppError } from './errors';
export type { AppError, ErrorKind } from './types';

export interface Backend {
  /** `app_state` */
  appState(): Promise<AppState>;
  /** `enroll`: a `voxseal://enroll?...` link (the demo code in the demo); `switchProject` replaces the installed project */
  enroll(code: string, switchProject: boolean): Promise<AppState>;
  /** `preview_join`: the link's project, verified, before the code is used */
  previewJoin(code: string, switchProject: boolean): Promise<JoinPreview>;
  /** `start_demo`: switch to the demo (its own data directory) */
  startDemo(): Promise<AppState>;
  /** `leave_demo`: back to the project */
  leaveDemo(): Promise<AppState>;
  /** `give_consent` */
  giveConsent(): Promise<AppState>;
  /** `list_devices` */
  listDevices(): Promise<DeviceInfo[]>;
  /** `select_device`: null = system default; remembered in settings */
  selectDevice(name: string | null): Promise<AppState>;
  /** `start_meter`: live levels (~25 Hz) over a Channel; no recording */
  startMeter(onLevel: (level: Level) => void): Promise<void>;
  /** `stop_meter` */
  stopMeter(): Promise<void>;
  /** `check_noise`: records 3 s, nothing stored */
  checkNoise(): Promise<NoiseCheck>;
  /** `start_take`: returns the take id; levels over a Channel; `busy` while recording or with a take under review, `no_consent` before consent */
  startTake(promptId: string, onLevel: (level: Level) => void): Promise<string>;
  /** `stop_take`: keeps recording 500 ms after the call */
  stopTake(): Promise<TakeReview>;
  /** `play_take`: resolves when playback ends or is stopped */
  playTake(): Promise<void>;
  /** `stop_playback` */
  stopPlayback(): Promise<void>;
  /** `accept_take` */
  acceptTake(acceptFailed: boolean): Promise<AppState>;
  /** `discard_take` */
  discardTake(): Promise<AppState>;
  /** `skip_prompt`: a reason marks the prompt as flagged; `busy` with a take under review */
  skipPrompt(promptId: string, flagReason: string | null): Promise<AppState>;
  /** `go_to_prompt`: `busy` with a take under review */
  goToPrompt(index: number): Promise<AppState>;
  /** `queue` */
  queue(): Promise<QueueState>;
  /** `upload_now`: offline is a state in the result, not an error */
  uploadNow(onProgress: (progress: UploadProgress) => void): Promise<QueueState>;
  /** `retry_item` */
  retryItem(sampleId: string): Promise<QueueState>;
  /** `activity`: newest first */
  activity(limit: number): Promise<ActivityEntry[]>;
  /** `save_preferences` */
  savePreferences(theme: string, language: string): Promise<AppState>;
  /** `check_update`: null when up to date, and always in builds without the updater */
  checkUpdate(): Promise<UpdateOffer | null>;
  /** `download_update`: downloads and verifies the offered update; `update_refused` when its signature does not verify */
  downloadUpdate(onProgress: (progress: DownloadProgress) => void): Promise<UpdateOffer>;
  /** `install_update`: installs the verified update and restarts the app */
  installUpdate(): Promise<void>;
  /** event `queue-changed` */
  onQueueChanged(handler: (queue: QueueState) => void): Promise<Unsubscribe>;
  /** event `device-lost` */
  onDeviceLost(handler: (payload: DeviceLost) => void): Promise<Unsubscribe>;
  /** event `state-changed` (e.g. after a revocation is noticed) */
  onStateChanged(handler: (state: AppState) => void): Promise<Unsubscribe>;
}

/** The commands of the contract, in the order of the Rust command table (generated commands.ts). */
export const COMMANDS = Object.keys(COMMAND_ARGS) as Command[];
export type { Command };

/** The broadcast events of the contract. */
export const EVENTS = {
  queueChanged: 'queue-changed',
  deviceLost: 'device-lost',
  stateChanged: 'state-changed',
} as const;

/**
 * Invokes `cmd` with the arguments the Rust command table gives it (generated commands.ts: a
 * renamed or missing argument does not type-check). A callback argument goes over a Channel.
 */
async function call<C extends Command>(cmd: C, ...args: CommandArgs[C]): Promise<CommandResults[C]> {
  const given: Record<string, unknown> | undefined = args[0];
  const payload: InvokeArgs | undefined = given
    ? Object.fromEntries(Object.entries(given).map(([k, v]) => [k, typeof v === 'function' ? channel(v as (value: unknown) => void) : v]))
    : undefined;
  try {
    return await invoke<CommandResults[C]>(cmd, payload);
  } catch (e) {
    throw normalizeError(e);
  }
}

function channel<T>(handler: (value: T) => void): Channel<T> {
  const ch = new Channel<T>();
  ch.onmessage = handler;
  return ch;
}

async function subscribe<T>(event: string, handler: (payload: T) => void): Promise<Unsubscribe> {
  try {
    return await listen<T>(event, (e) => handler(e.payload));
  } catch (e) {
    throw normalizeError(e);
  }
}

export const tauriBackend: Backend = {
  appState: () => call('app_state'),
  enroll: (code, switchProject) => call('enroll', { code, switch: switchProject }),
  previewJoin: (code, switchProject) => call('preview_join', { code, switch: switchProject }),
  startDemo: () => call('start_demo'),
  leaveDemo: () => call('leave_demo'),
  giveConsent: () => call('give_consent'),
  listDevices: () => call('list_devices'),
  selectDevice: (name) => call('select_device', { name }),
  startMeter: (onLevel) => call('start_meter', { onLevel }),
  stopMeter: () => call('stop_meter'),
  checkNoise: () => call('check_noise'),
  startTake: (promptId, onLevel) => call('start_take', { promptId, onLevel }),
  stopTake: () => call('stop_take'),
  playTake: () => call('play_take'),
  stopPlayback: () => call('stop_playback'),
  acceptTake: (acceptFailed) => call('accept_take', { acceptFailed }),
  discardTake: () => call('discard_take'),
  skipPrompt: (promptId, flagReason) => call('skip_prompt', { promptId, flagReason }),
  goToPrompt: (index) => call('go_to_prompt', { index }),
  queue: () => call('queue'),
  uploadNow: (onProgress) => call('upload_now', { onProgress }),
  retryItem: (sampleId) => call('retry_item', { sampleId }),
  activity: (limit) => call('activity', { limit }),
  savePreferences: (theme, language) => call('save_preferences', { theme, language }),
  checkUpdate: () => call('check_update'),
  downloadUpdate: (onProgress) => call('download_update', { onProgress }),
  installUpdate: () => call('install_update'),
  onQueueChanged: (handler) => subscribe(EVENTS.queueChanged, handler),
  onDeviceLost: (handler) => subscribe(EVENTS.deviceLost, handler),
  onStateChanged: (handler) => subscribe(EVENTS.stateChanged, handler),
};

/** True inside the Tauri web view (the shell injects __TAURI_INTERNALS__). */
export function inTauri(w: unknown = globalThis): boolean {
  return typeof w === 'object' && w !== null && '__TAURI_INTERNALS__' in w;
}
