// Canned values of the IPC contract, typed by the generated bindings: what the UI tests (and the
// browser demo of `npm run dev`) set up and script ScriptedBackend's answers with. Builders take
// the fields a test cares about and fill in the rest; they compute nothing the app decides.
import type {
  ActivityEntry,
  AppState,
  Check,
  DeviceInfo,
  JoinPreview,
  Level,
  NoiseCheck,
  NoiseVerdict,
  ProjectInfo,
  Prompt,
  PromptProgress,
  QualityReport,
  QueueItem,
  QueueState,
  TakeReview,
  UploadProgress,
} from './types';

export const DEMO_CODE = 'DEMO-7K3Q-X9PB';

export const PROMPTS: Prompt[] = [
  { id: 'p001', text: 'The quick brown fox jumps over the lazy dog.', note: null },
  { id: 'p002', text: 'Please call Stella and ask her to bring these things with her from the store.', note: null },
  { id: 'p003', text: 'Six spoons of fresh snow peas, five thick slabs of blue cheese.', note: 'Read at a natural pace.' },
  { id: 'p004', text: 'She can scoop these things into three red bags.', note: null },
];

export const CONSENT_TEXT =
  'I agree that Demo Voice Project records my voice reading the prompts shown in this app. The recordings ' +
  'and the features computed from them are encrypted on this computer before they are uploaded.';

export function project(patch: Partial<ProjectInfo> = {}): ProjectInfo {
  return { name: 'Demo Voice Project', consent_text: CONSENT_TEXT, features_only: false, prompt_count: PROMPTS.length, serial: 1, not_after: null, ...patch };
}

export function todo(prompts: Prompt[]): PromptProgress[] {
  return prompts.map((p) => ({ prompt_id: p.id, status: 'todo', sample_id: null, versions: 0, flag_reason: null }));
}

/** A first start in the demo: not enrolled, the demo code offered. */
export function appState(patch: Partial<AppState> = {}): AppState {
  return {
    mode: 'demo',
    demo_available: true,
    project_notice: null,
    enrolled: false,
    contractor: null,
    project: null,
    consent_given: false,
    device: null,
    prompts: [],
    progress: [],
    current_prompt: 0,
    lost_takes: 0,
    theme: 'system',
    language: 'en',
    mic_checked: false,
    review: null,
    demo_code: DEMO_CODE,
    enroll_link: null,
    ...patch,
  };
}

/** Enrolled in the demo project; consent given and the mic checked unless patched. */
export function enrolled(patch: Partial<AppState> = {}): AppState {
  const prompts = patch.prompts ?? PROMPTS;
  return appState({
    enrolled: true,
    contractor: 'demo-contractor',
    project: project({ prompt_count: prompts.length }),
    consent_given: true,
    mic_checked: true,
    prompts,
    progress: todo(prompts),
    demo_code: null,
    ...patch,
  });
}

/** `state` with prompt `index` changed by `patch`, the current prompt moved to `current`. */
export function withProgress(state: AppState, index: number, patch: Partial<PromptProgress>, current = state.current_prompt): AppState {
  const progress = state.progress.map((p, i) => (i === index ? { ...p, ...patch } : p));
  return { ...state, progress, current_prompt: current, review: null };
}

/** As the shell answers accept_take: the prompt accepted with `sample_id`, the next prompt current. */
export function accepted(state: AppState, index: number, versions = 1): AppState {
  const id = state.prompts[index]!.id;
  return withProgress(state, index, { status: 'accepted', versions, sample_id: `s-${id}-v${versions}`, flag_reason: null }, Math.min(index + 1, state.prompts.length - 1));
}

export function devices(): DeviceInfo[] {
  return [
    { name: 'Built-in Microphone', id: 'builtin', is_default: true, sample_rate: 48000, channels: 2, format: 'f32' },
    { name: 'USB Headset', id: 'usb-headset', is_default: false, sample_rate: 44100, channels: 1, format: 'i16' },
    { name: 'Studio Condenser (XLR interface)', id: 'xlr-1', is_default: false, sample_rate: 48000, channels: 2, format: 'i32' },
  ];
}

export function level(patch: Partial<Level> = {}): Level {
  return { peak_dbfs: -12, rms_dbfs: -24, clipped: false, elapsed_s: 0.04, ...patch };
}

export function noiseCheck(verdict: NoiseVerdict): NoiseCheck {
  return { noise_floor_dbfs: verdict === 'too_noisy' ? -38 : -62, peak_dbfs: -41, verdict };
}

export function joinPreview(patch: Partial<JoinPreview> = {}): JoinPreview {
  return { project: project(), broker: 'https://broker.example.com', replaces: null, ...patch };
}

/** A quality report: `pass`, `warn` (silence before the speech), `clipped` (fails) or `short` (fails). */
export function quality(kind: 'pass' | 'warn' | 'clipped' | 'short' = 'pass', duration = 2.5): QualityReport {
  const checks: Check[] =
    kind === 'short'
      ? [
          { name: 'duration', verdict: 'fail', code: 'short', values: { seconds: duration } },
          { name: 'clipping', verdict: 'pass', code: 'none', values: {} },
          { name: 'speech', verdict: 'fail', code: 'none', values: {} },
        ]
      : [
          { name: 'duration', verdict: 'pass', code: 'ok', values: { seconds: duration } },
          kind === 'clipped'
            ? { name: 'clipping', verdict: 'fail', code: 'clipped', values: { percent: 3.2 } }
            : { name: 'clipping', verdict: 'pass', code: 'none', values: {} },
          { name: 'speech', verdict: 'pass', code: 'ok', values: { seconds: 1.6 } },
          { name: 'level', verdict: 'pass', code: 'ok', values: { dbfs: -21 } },
          { name: 'snr', verdict: 'pass', code: 'ok', values: { db: 34 } },
          kind === 'warn'
            ? { name: 'silence', verdict: 'warn', code: 'before', values: { seconds: 1.8 } }
            : { name: 'silence', verdict: 'pass', code: 'ok', values: { before: 0.3, after: 0.4 } },
        ];
  checks.push({ name: 'noise', verdict: 'pass', code: 'ok', values: { dbfs: -62 } });
  const overall = kind === 'pass' ? 'pass' : kind === 'warn' ? 'warn' : 'fail';
  return {
    duration_s: duration,
    peak_dbfs: kind === 'clipped' ? 0 : -4.5,
    rms_dbfs: -24,
    clipped_ratio: kind === 'clipped' ? 0.032 : 0,
    noise_floor_dbfs: -62,
    speech_dbfs: -21,
    snr_db: 34,
    speech_s: kind === 'short' ? null : [0.3, duration - 0.4],
    leading_silence_s: kind === 'warn' ? 1.8 : 0.3,
    trailing_silence_s: 0.4,
    trim: [0, Math.round(duration * 16000)],
    checks,
    overall,
  };
}

/** A take under review with a 400-point waveform. */
export function takeReview(patch: Partial<TakeReview> = {}): TakeReview {
  const duration = patch.duration_s ?? 2.5;
  const waveform: [number, number][] = Array.from({ length: 400 }, (_, i) => {
    const a = Math.round(Math.abs(Math.sin(i / 7)) * 70) / 100;
    return [-a, a];
  });
  return { take_id: 't-1', prompt_id: 'p001', duration_s: duration, waveform, quality: quality('pass', duration), interrupted: null, ...patch };
}

export function queueItem(sample_id: string, patch: Partial<QueueItem> = {}): QueueItem {
  const prompt = /^s-(p\d+)-v\d+$/.exec(sample_id)?.[1] ?? null;
  return { sample_id, prompt_id: prompt, status: 'sealed', bytes_total: 390_000, bytes_done: 0, last_error: null, sealed_at: '2026-12-07T08:00:00Z', ...patch };
}

/** A queue; `raw_on_machine` counts the items not uploaded unless patched. */
export function queueState(items: QueueItem[] = [], patch: Partial<QueueState> = {}): QueueState {
  return {
    items,
    online: true,
    revoked: false,
    uploading: false,
    waiting_for_network: false,
    raw_on_machine: items.filter((i) => i.status !== 'uploaded').length,
    last_wipe_at: items.length > 0 ? '2026-12-07T08:00:01Z' : null,
    ...patch,
  };
}

/** `queue` with every item's status (and bytes) set as given. */
export function withStatus(queue: QueueState, status: QueueItem['status'], patch: Partial<QueueState> = {}): QueueState {
  const items = queue.items.map((i) => ({ ...i, status, bytes_done: status === 'uploaded' ? i.bytes_total : 0 }));
  return queueState(items, patch);
}

export function progress(patch: Partial<UploadProgress> = {}): UploadProgress {
  return { bytes_done: 0, bytes_total: 0, items_done: 0, items_total: 0, sample_id: null, item_bytes_done: 0, item_bytes_total: 0, waiting_for_network: false, ...patch };
}

export function activityEntry(seq: number, event: string, params: ActivityEntry['params'] = {}): ActivityEntry {
  return { seq, time: `2026-12-07T08:${String(seq % 60).padStart(2, '0')}:00Z`, event, params };
}
