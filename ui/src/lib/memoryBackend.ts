// An in-memory Backend: fake prompts, simulated levels on timers, fake waveforms and quality
// reports (including failing ones), a queue that uploads after every accepted take, and a
// local-mode demo code. Uploads are scripted, not simulated: each item's attempt takes the next
// scripted outcome (uploaded, failed, offline); nothing here retries or backs off (the shell's
// upload worker does, tested in Rust: crates/voxseal-app and voxseal-cloud).
// Used by Vitest and by `npm run dev` in a plain browser. It behaves like the contract says the
// shell does; where the contract is silent, the choice is commented.
import type { Backend } from './backend';
import { appError } from './errors';
import type {
  ActivityEntry,
  AppState,
  DeviceInfo,
  JoinPreview,
  DeviceLost,
  Interruption,
  Level,
  NoiseCheck,
  NoiseVerdict,
  Prompt,
  PromptProgress,
  QualityReport,
  QueueItem,
  QueueState,
  TakeReview,
  Unsubscribe,
  DownloadProgress,
  UpdateOffer,
  UploadProgress,
} from './types';

export interface MemoryOptions {
  /** 'demo' (default, as after Try a demo) or 'project' (a joined project, or none yet) */
  mode?: 'demo' | 'project';
  enrolled?: boolean;
  consentGiven?: boolean;
  /** a mic check was done earlier (default: same as consentGiven, i.e. a returning user) */
  micChecked?: boolean;
  prompts?: Prompt[];
  /** reported once by the first app_state */
  lostTakes?: number;
  /** meter / recording level interval (default 40 ms = 25 Hz) */
  levelIntervalMs?: number;
  /** check_noise duration (default 3000 ms) */
  noiseCheckMs?: number;
  /** what check_noise reports (default good) */
  noiseVerdict?: NoiseVerdict;
  /** stop_take keeps recording this long (default 500 ms) */
  tailMs?: number;
  /** fixed take duration in seconds; default: the real recording time + 0.7 s pre/post roll */
  takeDurationS?: number;
  /** prompt ids whose FIRST take fails its quality checks (clipping). Default: the third prompt */
  failFirstTakeOf?: string[];
  /** one upload step (default 120 ms) */
  uploadStepMs?: number;
  /** steps per item (default 5) */
  uploadSteps?: number;
  /** what the next item uploads do, in order (then: uploaded); see scriptUploads */
  uploads?: UploadOutcome[];
  /** upload by itself after every accepted take, as the shell does (default true) */
  autoUpload?: boolean;
  /** local mode's demo enrollment code, shown until enrolled (default a valid code; null: none) */
  demoCode?: string | null;
  /** delay before every answer (default 0) */
  latencyMs?: number;
  /** the saved UI language (default "en") */
  language?: string;
  /** the update check_update offers (default none, as in builds without the updater); `refused`: its signature does not verify */
  update?: { version: string; refused?: boolean } | null;
}

/**
 * What one item's upload attempt does: `uploaded`; `failed` (the storage service refused it: the
 * item fails with its reason, the run goes on); `offline` (the service is unreachable: the item
 * fails, the run stops, QueueState.online turns false until an attempt succeeds).
 */
export type UploadOutcome = 'uploaded' | 'failed' | 'offline';

export const DEMO_CODE = 'DEMO-7K3Q-X9PB';

export const DEMO_PROMPTS: Prompt[] = [
  { id: 'p001', text: 'The quick brown fox jumps over the lazy dog.', note: null },
  { id: 'p002', text: 'Please call Stella and ask her to bring these things with her from the store.', note: null },
  { id: 'p003', text: 'Six spoons of fresh snow peas, five thick slabs of blue cheese.', note: 'Read at a natural pace.' },
  { id: 'p004', text: 'She can scoop these things into three red bags.', note: null },
  { id: 'p005', text: 'We also need a small plastic snake and a big toy frog for the kids.', note: null },
  { id: 'p006', text: 'Turn the lights off in the kitchen at half past nine.', note: null },
  { id: 'p007', text: 'How much does the weather forecast say it will rain tomorrow?', note: 'A question: let your voice rise at the end.' },
  { id: 'p008', text: 'Seven thousand four hundred and twelve.', note: null },
];

const DEMO_DEVICES: DeviceInfo[] = [
  { name: 'Built-in Microphone', id: 'builtin', is_default: true, sample_rate: 48000, channels: 2, format: 'f32' },
  { name: 'USB Headset', id: 'usb-headset', is_default: false, sample_rate: 44100, channels: 1, format: 'i16' },
  { name: 'Studio Condenser (XLR interface)', id: 'xlr-1', is_default: false, sample_rate: 48000, channels: 2, format: 'i32' },
];

const CONSENT_TEXT =
  'I agree that Demo Voice Project records my voice reading the prompts shown in this app. ' +
  'The recordings and the features computed from them are encrypted on this computer before they ' +
  'are uploaded, are used only to train and evaluate speech models, and are kept for at most one ' +
  'year. I can withdraw my consent at any time by writing to the project lead; recordings already ' +
  'used for training cannot be removed from trained models.';

interface Recording {
  takeId: string;
  promptId: string;
  startedAt: number;
  timer: ReturnType<typeof setInterval>;
  onLevel: (l: Level) => void;
  tick: number;
}

interface Manifest {
  sample_id: string;
  prompt_id: string;
  version: number;
  supersedes: string | null;
  accepted_failed: boolean;
  consent: boolean;
}

/** Deterministic pseudo-random numbers (mulberry32), so tests are repeatable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryBackend implements Backend {
  readonly opts: Required<Omit<MemoryOptions, 'takeDurationS' | 'prompts' | 'demoCode' | 'update' | 'language' | 'uploads'>> & {
    takeDurationS: number | undefined;
    demoCode: string | null;
    update: { version: string; refused?: boolean } | null;
  };
  /** Every command invoked, snake_case, in order (for tests). */
  readonly calls: string[] = [];
  /** Every sealed manifest (for tests: versions and supersedes). */
  readonly manifests: Manifest[] = [];

  private rand = rng(42);
  private enrolled: boolean;
  private mode: 'demo' | 'project';
  private contractor: string | null = null;
  private enrollLink: string | null = null;
  private consent: boolean;
  private micChecked: boolean;
  private device: string | null = null;
  private devices: DeviceInfo[] = clone(DEMO_DEVICES);
  private prompts: Prompt[];
  private progress: PromptProgress[];
  private current = 0;
  private lostTakes: number;
  private theme: AppState['theme'] = 'system';
  private language = 'en';

  private meterTimer: ReturnType<typeof setInterval> | null = null;
  private meterTick = 0;
  private recording: Recording | null = null;
  /** A take that ended by itself (device lost) and waits for stop_take. */
  private ended: TakeReview | null = null;
  private review: TakeReview | null = null;
  private takesPerPrompt = new Map<string, number>();
  private playTimer: ReturnType<typeof setTimeout> | null = null;
  /** Resolves the running play_take. */
  private playDone: (() => void) | null = null;
  private takeSeq = 0;

  private items: QueueItem[] = [];
  private online = true;
  private revokedUploads = false;
  private uploadScript: UploadOutcome[];
  private uploading = false;
  /** The running upload (background or upload_now). */
  private currentUpload: Promise<void> | null = null;
  /** Another accepted take arrived while an upload ran: upload again afterwards. */
  private uploadAgain = false;
  private lastWipeAt: string | null = null;
  private audit: ActivityEntry[] = [];
  private timers = new Set<ReturnType<typeof setTimeout>>();

  private queueListeners = new Set<(q: QueueState) => void>();
  private deviceListeners = new Set<(p: DeviceLost) => void>();
  private stateListeners = new Set<(s: AppState) => void>();

  constructor(options: MemoryOptions = {}) {
    this.opts = {
      mode: options.mode ?? 'demo',
      enrolled: options.enrolled ?? false,
      consentGiven: options.consentGiven ?? false,
      lostTakes: options.lostTakes ?? 0,
      levelIntervalMs: options.levelIntervalMs ?? 40,
      noiseCheckMs: options.noiseCheckMs ?? 3000,
      noiseVerdict: options.noiseVerdict ?? 'good',
      tailMs: options.tailMs ?? 500,
      takeDurationS: options.takeDurationS,
      failFirstTakeOf: options.failFirstTakeOf ?? ['p003'],
      uploadStepMs: options.uploadStepMs ?? 120,
      uploadSteps: options.uploadSteps ?? 5,
      latencyMs: options.latencyMs ?? 0,
      micChecked: options.micChecked ?? options.consentGiven ?? false,
      autoUpload: options.autoUpload ?? true,
      demoCode: options.demoCode === undefined ? DEMO_CODE : options.demoCode,
      update: options.update ?? null,
    };
    this.enrolled = this.opts.enrolled;
    this.mode = this.opts.mode;
    if (this.enrolled) this.contractor = 'demo-contractor';
    this.consent = this.opts.consentGiven;
    this.micChecked = this.opts.micChecked;
    this.prompts = clone(options.prompts ?? DEMO_PROMPTS);
    this.progress = this.prompts.map((p) => ({
      prompt_id: p.id,
      status: 'todo',
      sample_id: null,
      versions: 0,
      flag_reason: null,
    }));
    this.lostTakes = this.opts.lostTakes;
    this.language = options.language ?? 'en';
    this.uploadScript = [...(options.uploads ?? [])];
  }

  // ---------------------------------------------------------------- helpers for tests and dev

  /** Scripts what the next item uploads do, in order (after them: uploaded). */
  scriptUploads(...outcomes: UploadOutcome[]): void {
    this.uploadScript.push(...outcomes);
  }

  /** Simulates unplugging a microphone. */
  unplug(name: string): void {
    const dev = this.devices.find((d) => d.name === name);
    if (!dev) return;
    const wasActive = this.activeDeviceName() === name;
    this.devices = this.devices.filter((d) => d.name !== name);
    if (dev.is_default && this.devices.length > 0) this.devices[0]!.is_default = true;
    if (!wasActive) return;
    const message = `The microphone "${name}" was disconnected.`;
    if (this.meterTimer) this.clearMeter();
    if (this.recording) {
      this.ended = this.finishRecording({ kind: 'device_lost', detail: message });
    }
    for (const l of this.deviceListeners) l({ message });
  }

  /** Simulates the broker revoking this contractor: the state-changed event tells the UI. */
  revoke(): void {
    this.enrolled = false;
    this.contractor = null;
    this.revokedUploads = true;
    const s = this.state();
    for (const l of this.stateListeners) l(clone(s));
    this.emitQueue();
  }

  /** Simulates a second launch handing over a `voxseal://` link: the state-changed event tells the UI. */
  openLink(link: string): void {
    this.enrollLink = link;
    const s = this.state();
    for (const l of this.stateListeners) l(clone(s));
  }

  /** Simulates plugging a microphone (back) in. */
  plug(device: DeviceInfo): void {
    if (!this.devices.some((d) => d.name === device.name)) this.devices.push(clone(device));
  }

  /** Stops all timers (call in afterEach). */
  dispose(): void {
    this.clearMeter();
    if (this.recording) clearInterval(this.recording.timer);
    this.recording = null;
    this.endPlayback();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queueListeners.clear();
    this.deviceListeners.clear();
    this.stateListeners.clear();
  }

  // ---------------------------------------------------------------- the contract

  async appState(): Promise<AppState> {
    await this.enter('app_state');
    const s = this.state();
    this.lostTakes = 0; // reported once at start-up
    return s;
  }

  async previewJoin(code: string, _switchProject: boolean): Promise<JoinPreview> {
    await this.enter('preview_join');
    this.checkCode(code);
    return clone({ project: this.projectInfo(), broker: 'https://broker.example.com', replaces: null });
  }

  async startDemo(): Promise<AppState> {
    await this.enter('start_demo');
    this.mode = 'demo';
    this.enrolled = false;
    this.consent = false;
    return this.state();
  }

  async leaveDemo(): Promise<AppState> {
    await this.enter('leave_demo');
    this.mode = 'project';
    this.enrolled = false;
    this.consent = false;
    return this.state();
  }

  async enroll(code: string, _switchProject: boolean): Promise<AppState> {
    await this.enter('enroll');
    this.checkCode(code);
    this.enrolled = true;
    this.enrollLink = null;
    this.revokedUploads = false;
    this.contractor = 'demo-contractor';
    this.log('enrollment.joined', { contractor: this.contractor ?? '' });
    this.kickUpload();
    return this.state();
  }

  private projectInfo() {
    return {
      name: 'Demo Voice Project',
      consent_text: CONSENT_TEXT,
      features_only: false,
      prompt_count: this.prompts.length,
      serial: 1,
      not_after: null,
    };
  }

  /** Validates a code or link as the backend would; throws its errors. */
  private checkCode(code: string): void {
    const raw = code.trim();
    if (raw === '') throw appError('invalid_input', 'Enter the enrollment code you were given.');
    let token = raw;
    if (/^[a-z][a-z0-9+.-]*:/i.test(raw)) {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw appError('bad_code', 'This link is not a Voxseal enrollment link.');
      }
      const path = (url.host || url.pathname.replace(/^\/+/, '')).toLowerCase();
      if (url.protocol !== 'voxseal:' || path !== 'enroll') {
        throw appError('bad_code', 'This link is not a Voxseal enrollment link.');
      }
      token = url.searchParams.get('code') ?? url.searchParams.get('token') ?? '';
    }
    const upper = token.toUpperCase();
    if (upper.includes('OFFLINE')) throw appError('offline', 'Could not reach the enrollment service.');
    if (upper.includes('REVOKED')) throw appError('revoked', 'This enrollment code has been revoked.');
    if (upper.includes('PASSPHRASE')) {
      throw appError('needs_passphrase', 'This computer has no keychain: the token file needs a passphrase.');
    }
    if (!/^[A-Z0-9]{4}(-[A-Z0-9]{4}){1,7}$/.test(upper)) {
      throw appError('bad_code', 'This code was not recognised: check it and try again.');
    }
  }

  async giveConsent(): Promise<AppState> {
    await this.enter('give_consent');
    this.requireEnrolled();
    this.consent = true;
    this.log('consent.given');
    return this.state();
  }

  async listDevices(): Promise<DeviceInfo[]> {
    await this.enter('list_devices');
    return clone(this.devices);
  }

  async selectDevice(name: string | null): Promise<AppState> {
    await this.enter('select_device');
    if (name !== null && !this.devices.some((d) => d.name === name)) {
      throw appError('no_device', `No microphone called "${name}" is connected.`);
    }
    if (this.recording) throw appError('busy', 'A take is being recorded.');
    this.device = name;
    return this.state();
  }

  async startMeter(onLevel: (level: Level) => void): Promise<void> {
    await this.enter('start_meter');
    if (this.recording) throw appError('busy', 'A take is being recorded.');
    this.requireDevice();
    this.clearMeter();
    const started = Date.now();
    this.meterTimer = setInterval(() => {
      this.meterTick++;
      onLevel(this.fakeLevel(this.meterTick, (Date.now() - started) / 1000, true));
    }, this.opts.levelIntervalMs);
  }

  async stopMeter(): Promise<void> {
    await this.enter('stop_meter');
    this.clearMeter();
  }

  async checkNoise(): Promise<NoiseCheck> {
    await this.enter('check_noise');
    if (this.recording) throw appError('busy', 'A take is being recorded.');
    this.requireDevice();
    await this.sleep(this.opts.noiseCheckMs);
    this.requireDevice(); // unplugged during the check
    const v = this.opts.noiseVerdict;
    this.micChecked = true;
    this.log('mic.checked', { verdict: v });
    const floor = v === 'too_noisy' ? -38 : v === 'too_quiet' ? -78 : -62;
    const peak = v === 'too_quiet' ? -52 : v === 'too_noisy' ? -20 : v === 'too_loud' ? 0 : -41;
    return { noise_floor_dbfs: floor, peak_dbfs: peak, verdict: v };
  }

  async startTake(promptId: string, onLevel: (level: Level) => void): Promise<string> {
    await this.enter('start_take');
    this.requireEnrolled();
    if (!this.consent) throw appError('no_consent', 'Read and accept the consent first.');
    if (!this.prompts.some((p) => p.id === promptId)) throw appError('invalid_input', `Unknown prompt ${promptId}.`);
    if (this.recording) throw appError('busy', 'A take is already being recorded.');
    this.requireNoReview();
    this.requireDevice();
    this.clearMeter();
    const takeId = `t-${++this.takeSeq}`;
    const startedAt = Date.now();
    const rec: Recording = {
      takeId,
      promptId,
      startedAt,
      onLevel,
      tick: 0,
      timer: setInterval(() => {
        rec.tick++;
        onLevel(this.fakeLevel(rec.tick, (Date.now() - startedAt) / 1000, false));
      }, this.opts.levelIntervalMs),
    };
    this.recording = rec;
    return takeId;
  }

  async stopTake(): Promise<TakeReview> {
    await this.enter('stop_take');
    if (this.ended) {
      this.review = this.ended;
      this.ended = null;
      return clone(this.review);
    }
    if (!this.recording) throw appError('no_take', 'No take is being recorded.');
    await this.sleep(this.opts.tailMs); // keeps recording 500 ms after the call
    if (this.ended) {
      // unplugged during the tail
      this.review = this.ended;
      this.ended = null;
      return clone(this.review);
    }
    this.review = this.finishRecording(null);
    return clone(this.review);
  }

  async playTake(): Promise<void> {
    await this.enter('play_take');
    if (!this.review) throw appError('no_take', 'There is no take to play.');
    this.endPlayback();
    // Resolves when playback ends (after the take's duration) or is stopped.
    return new Promise<void>((resolve) => {
      this.playDone = resolve;
      this.playTimer = setTimeout(() => this.endPlayback(), this.review!.duration_s * 1000);
    });
  }

  async stopPlayback(): Promise<void> {
    await this.enter('stop_playback');
    this.endPlayback();
  }

  async acceptTake(acceptFailed: boolean): Promise<AppState> {
    await this.enter('accept_take');
    if (this.recording) throw appError('busy', 'Stop the recording first.');
    const review = this.review;
    if (!review) throw appError('no_take', 'There is no take to accept.');
    if (review.quality.overall === 'fail' && !acceptFailed) {
      throw appError('quality_failed', 'This take failed its quality checks.');
    }
    const idx = this.prompts.findIndex((p) => p.id === review.prompt_id);
    const prog = this.progress[idx]!;
    const version = prog.versions + 1;
    const sampleId = `s-${review.prompt_id}-v${version}`;
    const supersedes = prog.sample_id;
    this.manifests.push({
      sample_id: sampleId,
      prompt_id: review.prompt_id,
      version,
      supersedes,
      accepted_failed: review.quality.overall === 'fail',
      consent: this.consent,
    });
    prog.status = 'accepted';
    prog.versions = version;
    prog.sample_id = sampleId;
    prog.flag_reason = null;
    const total = 150_000 + Math.round(review.duration_s * 96_000);
    this.items.push({
      sample_id: sampleId,
      prompt_id: review.prompt_id,
      status: 'sealed',
      bytes_total: total,
      bytes_done: 0,
      last_error: null,
      sealed_at: new Date().toISOString(),
    });
    this.review = null;
    this.endPlayback();
    this.log('take.sealed', { sample: sampleId, prompt: review.prompt_id });
    this.wiped();
    this.advance(idx);
    this.emitQueue();
    this.kickUpload();
    return this.state();
  }

  async discardTake(): Promise<AppState> {
    await this.enter('discard_take');
    if (this.recording) throw appError('busy', 'Stop the recording first.');
    if (!this.review && !this.ended) throw appError('no_take', 'There is no take to discard.');
    this.discardReview();
    this.emitQueue();
    return this.state();
  }

  async skipPrompt(promptId: string, flagReason: string | null): Promise<AppState> {
    await this.enter('skip_prompt');
    this.requireEnrolled();
    if (this.recording) throw appError('busy', 'Stop the recording first.');
    this.requireNoReview();
    const idx = this.prompts.findIndex((p) => p.id === promptId);
    if (idx < 0) throw appError('invalid_input', `Unknown prompt ${promptId}.`);
    const reason = flagReason?.trim() ? flagReason.trim() : null;
    const prog = this.progress[idx]!;
    // An accepted prompt keeps its sample; skipping only moves on.
    if (prog.status !== 'accepted') prog.status = reason ? 'flagged' : 'skipped';
    if (reason) {
      prog.flag_reason = reason;
      this.log('prompt.flagged', { prompt: promptId, reason });
    } else {
      this.log('prompt.skipped', { prompt: promptId });
    }
    this.advance(idx);
    return this.state();
  }

  async goToPrompt(index: number): Promise<AppState> {
    await this.enter('go_to_prompt');
    if (!Number.isInteger(index) || index < 0 || index >= this.prompts.length) {
      throw appError('invalid_input', `No prompt number ${index + 1}.`);
    }
    if (this.recording) throw appError('busy', 'Stop the recording first.');
    this.requireNoReview();
    this.current = index;
    return this.state();
  }

  async queue(): Promise<QueueState> {
    await this.enter('queue');
    return this.queueState();
  }

  async uploadNow(onProgress: (progress: UploadProgress) => void): Promise<QueueState> {
    await this.enter('upload_now');
    this.requireEnrolled();
    // Like the shell: one upload at a time; this one runs after the one in progress.
    while (this.currentUpload) await this.currentUpload;
    await this.upload(onProgress);
    return this.queueState();
  }

  async retryItem(sampleId: string): Promise<QueueState> {
    await this.enter('retry_item');
    const item = this.items.find((i) => i.sample_id === sampleId);
    if (!item) throw appError('invalid_input', `No queued item ${sampleId}.`);
    if (item.status === 'failed') {
      item.status = 'sealed';
      item.last_error = null;
      item.bytes_done = 0;
    }
    // The contract says "starts an upload": it runs in the background; events bring the result.
    this.kickUpload(true);
    const q = this.queueState();
    this.emitQueue();
    return q;
  }

  async activity(limit: number): Promise<ActivityEntry[]> {
    await this.enter('activity');
    if (!Number.isInteger(limit) || limit < 1) throw appError('invalid_input', 'limit must be positive');
    return clone(this.audit.slice(-limit).reverse());
  }

  async savePreferences(theme: string, language: string): Promise<AppState> {
    await this.enter('save_preferences');
    if (theme !== 'system' && theme !== 'light' && theme !== 'dark') {
      throw appError('invalid_input', `Unknown theme ${theme}.`);
    }
    // As the backend: any language tag; the UI falls back to English for ones it has no words for.
    if (!/^[A-Za-z0-9-]{1,16}$/.test(language)) throw appError('invalid_input', `Not a language tag: ${language}.`);
    this.theme = theme;
    this.language = language;
    return this.state();
  }

  async checkUpdate(): Promise<UpdateOffer | null> {
    await this.enter('check_update');
    const u = this.opts.update;
    return u ? { version: u.version, current_version: '0.1.0', notes: null } : null;
  }

  async downloadUpdate(onProgress: (progress: DownloadProgress) => void): Promise<UpdateOffer> {
    await this.enter('download_update');
    const u = this.opts.update;
    if (!u) throw appError('invalid_input', 'no update is on offer: check for updates first');
    for (const done of [1024, 2048]) onProgress({ done, total: 2048 });
    if (u.refused) throw appError('update_refused', 'the update was refused and not installed: it is not signed with this app\'s update key');
    return { version: u.version, current_version: '0.1.0', notes: null };
  }

  async installUpdate(): Promise<void> {
    await this.enter('install_update');
  }

  async onQueueChanged(handler: (queue: QueueState) => void): Promise<Unsubscribe> {
    this.queueListeners.add(handler);
    return () => this.queueListeners.delete(handler);
  }

  async onDeviceLost(handler: (payload: DeviceLost) => void): Promise<Unsubscribe> {
    this.deviceListeners.add(handler);
    return () => this.deviceListeners.delete(handler);
  }

  async onStateChanged(handler: (state: AppState) => void): Promise<Unsubscribe> {
    this.stateListeners.add(handler);
    return () => this.stateListeners.delete(handler);
  }

  // ---------------------------------------------------------------- internals

  private async enter(cmd: string): Promise<void> {
    this.calls.push(cmd);
    if (this.opts.latencyMs > 0) await this.sleep(this.opts.latencyMs);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private state(): AppState {
    return clone({
      mode: this.mode,
      demo_available: true,
      project_notice: null,
      enrolled: this.enrolled,
      contractor: this.contractor,
      project: this.enrolled ? this.projectInfo() : null,
      consent_given: this.consent,
      device: this.device,
      prompts: this.enrolled ? this.prompts : [],
      progress: this.enrolled ? this.progress : [],
      current_prompt: this.current,
      lost_takes: this.lostTakes,
      theme: this.theme,
      language: this.language,
      mic_checked: this.micChecked,
      review: this.review,
      demo_code: this.enrolled || this.mode !== 'demo' ? null : this.opts.demoCode,
      enroll_link: this.enrollLink,
    });
  }

  private queueState(): QueueState {
    const pendingRaw = this.items.filter((i) => i.status !== 'uploaded').length;
    const spool = (this.recording ? 1 : 0) + (this.review || this.ended ? 1 : 0);
    return clone({
      items: this.items,
      online: this.online,
      revoked: this.revokedUploads,
      uploading: this.uploading,
      raw_on_machine: pendingRaw + spool,
      last_wipe_at: this.lastWipeAt,
    });
  }

  private emitQueue(): void {
    if (this.queueListeners.size === 0) return;
    const q = this.queueState();
    for (const l of this.queueListeners) l(clone(q));
  }

  private log(event: string, params: ActivityEntry['params'] = {}): void {
    this.audit.push({ seq: this.audit.length + 1, time: new Date().toISOString(), event, params });
  }

  private wiped(): void {
    this.log('spool.wiped');
    this.lastWipeAt = new Date().toISOString();
  }

  private requireEnrolled(): void {
    if (!this.enrolled) throw appError('not_enrolled', 'This computer is not enrolled yet.');
  }

  private requireNoReview(): void {
    if (this.review || this.ended) throw appError('busy', 'Accept, re-record or discard the take under review first.');
  }

  private activeDeviceName(): string | null {
    if (this.device !== null) return this.devices.some((d) => d.name === this.device) ? this.device : null;
    return this.devices.find((d) => d.is_default)?.name ?? null;
  }

  private requireDevice(): void {
    if (this.activeDeviceName() === null) {
      throw appError(
        'no_device',
        this.device ? `The chosen microphone "${this.device}" is not connected.` : 'No microphone is connected.',
      );
    }
  }

  private clearMeter(): void {
    if (this.meterTimer) clearInterval(this.meterTimer);
    this.meterTimer = null;
  }

  /** After accept / skip of prompt `idx`: the next prompt, staying on the last. */
  private advance(idx: number): void {
    this.current = Math.min(idx + 1, this.prompts.length - 1);
  }

  private endPlayback(): void {
    if (this.playTimer) clearTimeout(this.playTimer);
    this.playTimer = null;
    const done = this.playDone;
    this.playDone = null;
    done?.();
  }

  private discardReview(): void {
    const r = this.review ?? this.ended;
    this.review = null;
    this.ended = null;
    this.endPlayback();
    if (!r) return;
    this.log('take.discarded');
    this.lastWipeAt = new Date().toISOString();
  }

  private fakeLevel(tick: number, elapsed: number, meter: boolean): Level {
    // A syllable-like envelope with noise; an occasional clip on the meter so the light shows.
    const env = 0.5 + 0.5 * Math.sin(tick / 3) * Math.sin(tick / 17);
    const speaking = meter ? Math.sin(tick / 40) > -0.2 : elapsed > 0.3;
    const base = speaking ? -38 + 26 * env : -62;
    const rms = base + (this.rand() - 0.5) * 4;
    const clipped = meter && tick % 90 === 45;
    const peak = clipped ? 0 : Math.min(-0.5, rms + 9 + this.rand() * 3);
    return { peak_dbfs: round1(peak), rms_dbfs: round1(rms), clipped, elapsed_s: round2(elapsed) };
  }

  private finishRecording(interrupted: Interruption | null): TakeReview {
    const rec = this.recording!;
    clearInterval(rec.timer);
    this.recording = null;
    const realS = (Date.now() - rec.startedAt) / 1000 + (interrupted ? 0.2 : 0.7);
    const duration = round2(interrupted ? realS : (this.opts.takeDurationS ?? realS));
    const n = (this.takesPerPrompt.get(rec.promptId) ?? 0) + 1;
    this.takesPerPrompt.set(rec.promptId, n);
    const clip = n === 1 && this.opts.failFirstTakeOf.includes(rec.promptId);
    const quality = fakeQuality(duration, clip, rec.promptId === 'p002' && n === 1);
    this.log('take.recorded', { prompt: rec.promptId, duration_s: duration, interrupted: interrupted !== null });
    return {
      take_id: rec.takeId,
      prompt_id: rec.promptId,
      duration_s: duration,
      waveform: fakeWaveform(duration, clip, this.rand),
      quality,
      interrupted,
    };
  }

  /**
   * Starts a background upload: after an accepted take or an enrollment (when `autoUpload`), and
   * always for retry_item (`always`).
   */
  private kickUpload(always = false): void {
    if ((!this.opts.autoUpload && !always) || !this.enrolled) return;
    if (this.currentUpload) {
      this.uploadAgain = true;
      return;
    }
    if (!this.items.some((i) => i.status === 'sealed' || i.status === 'failed')) return;
    void this.upload(() => {});
  }

  /** One upload run; again if more was accepted meanwhile. No retries: a test scripts them. */
  private async upload(onProgress: (p: UploadProgress) => void): Promise<void> {
    const run = this.runUpload(onProgress);
    this.currentUpload = run;
    try {
      await run;
    } finally {
      this.currentUpload = null;
    }
    if (this.uploadAgain && this.online) {
      this.uploadAgain = false;
      this.kickUpload(true);
    }
  }

  private async runUpload(onProgress: (p: UploadProgress) => void): Promise<void> {
    const batch = this.items.filter((i) => i.status === 'sealed' || i.status === 'failed');
    this.uploading = true;
    const total = batch.reduce((s, i) => s + i.bytes_total, 0);
    let done = 0;
    let itemsDone = 0;
    let current: QueueItem | null = null;
    const report = () =>
      onProgress({
        bytes_done: done,
        bytes_total: total,
        items_done: itemsDone,
        items_total: batch.length,
        sample_id: current?.sample_id ?? null,
        item_bytes_done: current?.bytes_done ?? 0,
        item_bytes_total: current?.bytes_total ?? 0,
      });
    report();
    this.emitQueue();
    try {
      for (const item of batch) {
        const outcome = this.uploadScript.shift() ?? 'uploaded';
        item.status = 'uploading';
        item.last_error = null;
        item.bytes_done = 0;
        current = item;
        report();
        this.emitQueue();
        // uploaded: every step; failed: refused half way; offline: nothing gets through
        const steps = outcome === 'uploaded' ? this.opts.uploadSteps : outcome === 'failed' ? Math.ceil(this.opts.uploadSteps / 2) : 0;
        const step = Math.ceil(item.bytes_total / this.opts.uploadSteps);
        for (let s = 0; s < steps; s++) {
          await this.sleep(this.opts.uploadStepMs);
          const chunk = Math.min(step, item.bytes_total - item.bytes_done);
          item.bytes_done += chunk;
          done += chunk;
          report();
          this.emitQueue();
        }
        if (outcome !== 'uploaded') {
          done -= item.bytes_done;
          item.status = 'failed';
          item.bytes_done = 0;
          item.last_error =
            outcome === 'offline' ? 'network unreachable: will retry when online' : 'the storage service reported a checksum mismatch';
          this.log(outcome === 'offline' ? 'upload.interrupted' : 'upload.failed', { sample: item.sample_id });
          this.emitQueue();
          if (outcome === 'offline') {
            this.online = false;
            return;
          }
          continue;
        }
        item.status = 'uploaded';
        item.bytes_done = item.bytes_total;
        itemsDone++;
        this.online = true;
        this.log('item.uploaded', { sample: item.sample_id });
        report();
        this.emitQueue();
      }
    } finally {
      this.uploading = false;
      this.emitQueue();
    }
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function fakeWaveform(duration: number, clip: boolean, rand: () => number): [number, number][] {
  const n = 400;
  const out: [number, number][] = [];
  // the same span as fakeQuality's speech_s
  const speechStart = 0.3 / duration;
  const speechEnd = Math.max(0.4, duration - 0.4) / duration;
  for (let i = 0; i < n; i++) {
    const x = i / n;
    let amp = 0.015 + rand() * 0.01;
    if (x > speechStart && x < speechEnd) {
      const syll = Math.abs(Math.sin(x * duration * 9)) * (0.55 + 0.35 * Math.sin(x * 13));
      amp = Math.max(amp, syll * (clip ? 1.3 : 0.7) + rand() * 0.06);
    }
    amp = Math.min(1, amp);
    out.push([round2(-amp * (0.85 + rand() * 0.15)), round2(amp)]);
  }
  return out;
}

function fakeQuality(duration: number, clip: boolean, warnSilence: boolean): QualityReport {
  const tooShort = duration < 1;
  const checks: QualityReport['checks'] = [];
  const speechS = round1(duration - 0.9);
  checks.push(
    tooShort
      ? { name: 'duration', verdict: 'fail', code: 'short', values: { seconds: duration } }
      : { name: 'duration', verdict: 'pass', code: 'ok', values: { seconds: duration } },
  );
  checks.push(
    clip
      ? { name: 'clipping', verdict: 'fail', code: 'clipped', values: { percent: 3.2 } }
      : { name: 'clipping', verdict: 'pass', code: 'none', values: {} },
  );
  if (tooShort) {
    checks.push({ name: 'speech', verdict: 'fail', code: 'none', values: {} });
  } else {
    checks.push({ name: 'speech', verdict: 'pass', code: 'ok', values: { seconds: speechS } });
    checks.push({ name: 'level', verdict: 'pass', code: 'ok', values: { dbfs: clip ? -6 : -21 } });
    checks.push({ name: 'snr', verdict: 'pass', code: 'ok', values: { db: 34 } });
    checks.push(
      warnSilence
        ? { name: 'silence', verdict: 'warn', code: 'before', values: { seconds: 1.8 } }
        : { name: 'silence', verdict: 'pass', code: 'ok', values: { before: 0.3, after: 0.4 } },
    );
  }
  checks.push({ name: 'noise', verdict: 'pass', code: 'ok', values: { dbfs: -62 } });
  const order = { pass: 0, warn: 1, fail: 2 } as const;
  const overall = checks.reduce<QualityReport['overall']>((m, c) => (order[c.verdict] > order[m] ? c.verdict : m), 'pass');
  const speech: [number, number] | null = tooShort ? null : [0.3, Math.max(0.4, duration - 0.4)];
  return {
    duration_s: duration,
    peak_dbfs: clip ? 0 : -4.5,
    rms_dbfs: clip ? -9 : -24,
    clipped_ratio: clip ? 0.032 : 0,
    noise_floor_dbfs: -62,
    speech_dbfs: clip ? -6 : -21,
    snr_db: 34,
    speech_s: speech,
    leading_silence_s: warnSilence ? 1.8 : 0.3,
    trailing_silence_s: 0.4,
    trim: [0, Math.round(duration * 16000)],
    checks,
    overall,
  };
}
