// Types of the IPC contract. The values the backend sends are generated from the Rust types
// (bindings.ts, by ts-rs; a Rust test fails when it differs from them): this file re-exports
// them and adds what only the UI declares (the event payloads, ERROR_KINDS for runtime checks).
import type { AppState, ErrorKind, NoiseCheck } from './bindings';

export type {
  ActivityEntry,
  AppError,
  AppState,
  Check,
  DeviceInfo,
  DownloadProgress,
  ErrorKind,
  Interruption,
  ItemStatus,
  JoinPreview,
  Level,
  Mode,
  NoiseCheck,
  ProjectInfo,
  ProjectNotice,
  Prompt,
  PromptProgress,
  PromptStatus,
  QualityReport,
  QueueItem,
  QueueState,
  TakeReview,
  UpdateOffer,
  UploadProgress,
  Verdict,
} from './bindings';

export type Theme = AppState['theme'];
export type NoiseVerdict = NoiseCheck['verdict'];

/** Every error kind, for checks at run time; the type makes the list complete. */
const KINDS: Record<ErrorKind, true> = {
  not_enrolled: true,
  bad_code: true,
  revoked: true,
  offline: true,
  no_device: true,
  device_lost: true,
  busy: true,
  no_take: true,
  no_consent: true,
  needs_passphrase: true,
  quality_failed: true,
  project_refused: true,
  other_project: true,
  update_refused: true,
  invalid_input: true,
  storage: true,
  internal: true,
};
export const ERROR_KINDS: readonly ErrorKind[] = Object.keys(KINDS) as ErrorKind[];

/** Payload of the `device-lost` event (src-tauri: the device layer's text, a technical detail). */
export interface DeviceLost {
  message: string;
}

/** Stops a subscription (event listener). */
export type Unsubscribe = () => void;
