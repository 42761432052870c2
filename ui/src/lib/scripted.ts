// A Backend whose answers are scripted: each command takes the next reply a test queued for it
// (a value, an AppError, or a function of the command's arguments), and without one answers with
// the backend's current fixture (`state`, `queueState`, `review`, `devices`, ...). A reply that is
// an AppState (or a QueueState) becomes the current one, as the shell would answer `app_state`
// (`queue`) afterwards. Nothing here decides what the app does: enrollment, takes, quality,
// prompts and uploads are the Rust app's (crates/voxseal-app, tested there); a test sets up the
// state and the answers it needs (fixtures.ts builds them, typed by the generated bindings).
//
// Levels, upload progress and events are pushed by the test: `level()`, the reply functions'
// callbacks, `emitQueue()`, `emitState()`, `emitDeviceLost()`. Used by Vitest and by the browser
// demo of `npm run dev`.
import type { Backend } from './backend';
import type { Command, CommandArgs, CommandResults } from './commands';
import { appError } from './errors';
import * as fx from './fixtures';
import type { AppError, AppState, DeviceInfo, DeviceLost, ActivityEntry, JoinPreview, Level, NoiseCheck, QueueState, TakeReview, Unsubscribe, UpdateOffer } from './types';

/** The argument object of a command (an empty one for commands without arguments). */
export type ArgsOf<C extends Command> = CommandArgs[C] extends [infer A] ? A : Record<string, never>;

/** A scripted answer: the result, a rejection, or a function of the arguments giving either. */
export type Reply<C extends Command> =
  | { value: CommandResults[C] }
  | { error: AppError }
  | { run: (args: ArgsOf<C>) => CommandResults[C] | Promise<CommandResults[C]> };

const APP_STATE_COMMANDS: readonly Command[] = [
  'app_state',
  'enroll',
  'start_demo',
  'leave_demo',
  'give_consent',
  'select_device',
  'accept_take',
  'discard_take',
  'skip_prompt',
  'go_to_prompt',
  'save_preferences',
];
const QUEUE_COMMANDS: readonly Command[] = ['queue', 'upload_now', 'retry_item'];

/** A copy, as the value would cross IPC (JSON). */
const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

export class ScriptedBackend implements Backend {
  /** What `app_state` (and the other AppState commands without a scripted reply) answer. */
  state: AppState;
  /** What `queue` (and upload_now, retry_item without a scripted reply) answer. */
  queueState: QueueState;
  /** What `stop_take` answers. */
  review: TakeReview;
  devices: DeviceInfo[] = fx.devices();
  noise: NoiseCheck = fx.noiseCheck('good');
  activityEntries: ActivityEntry[] = [];
  preview: JoinPreview = fx.joinPreview();
  /** What `check_update` answers. */
  update: UpdateOffer | null = null;

  /** Every command invoked, in order. */
  readonly calls: Command[] = [];
  /** Every command invoked with its arguments (callbacks included), in order. */
  readonly invocations: { cmd: Command; args: Record<string, unknown> }[] = [];

  private replies = new Map<Command, Reply<Command>[]>();
  private meterSink: ((l: Level) => void) | null = null;
  private takeSink: ((l: Level) => void) | null = null;
  private playing: (() => void) | null = null;
  private queueListeners = new Set<(q: QueueState) => void>();
  private deviceListeners = new Set<(p: DeviceLost) => void>();
  private stateListeners = new Set<(s: AppState) => void>();

  constructor(init: { state?: AppState; queue?: QueueState; review?: TakeReview } = {}) {
    this.state = clone(init.state ?? fx.appState());
    this.queueState = clone(init.queue ?? fx.queueState());
    this.review = clone(init.review ?? fx.takeReview());
  }

  // ---------------------------------------------------------------- scripting

  /** The next `cmd` answers `value`. */
  reply<C extends Command>(cmd: C, value: CommandResults[C]): this {
    return this.queueReply(cmd, { value });
  }

  /** The next `cmd` rejects with `{kind, message}`. */
  fail(cmd: Command, kind: AppError['kind'], message = ''): this {
    return this.queueReply(cmd, { error: appError(kind, message) });
  }

  /** The next `cmd` runs `run` with its arguments (it may await, send progress, emit events). */
  handle<C extends Command>(cmd: C, run: (args: ArgsOf<C>) => CommandResults[C] | Promise<CommandResults[C]>): this {
    return this.queueReply(cmd, { run });
  }

  /** Replies queued and not yet used, by command (a test can check that all were used). */
  pending(): Command[] {
    return [...this.replies.entries()].filter(([, r]) => r.length > 0).map(([c]) => c);
  }

  private queueReply<C extends Command>(cmd: C, r: Reply<C>): this {
    const list = this.replies.get(cmd) ?? [];
    list.push(r as unknown as Reply<Command>);
    this.replies.set(cmd, list);
    return this;
  }

  // ---------------------------------------------------------------- pushing

  /** Sends a level to the running meter and the take being recorded. */
  level(l: Level = fx.level()): void {
    for (const sink of [this.meterSink, this.takeSink]) sink?.(clone(l));
  }

  /** Ends the running play_take (playback reached the end of the take). */
  finishPlayback(): void {
    const done = this.playing;
    this.playing = null;
    done?.();
  }

  emitQueue(q: QueueState = this.queueState): void {
    this.queueState = clone(q);
    for (const l of this.queueListeners) l(clone(q));
  }

  emitState(s: AppState = this.state): void {
    this.state = clone(s);
    for (const l of this.stateListeners) l(clone(s));
  }

  emitDeviceLost(message: string): void {
    for (const l of this.deviceListeners) l({ message });
  }

  /** Stops listening (call in afterEach). */
  dispose(): void {
    this.finishPlayback();
    this.queueListeners.clear();
    this.deviceListeners.clear();
    this.stateListeners.clear();
  }

  // ---------------------------------------------------------------- the answers

  private async run<C extends Command>(cmd: C, args: ArgsOf<C>, fallback: () => CommandResults[C] | Promise<CommandResults[C]>): Promise<CommandResults[C]> {
    this.calls.push(cmd);
    this.invocations.push({ cmd, args: args as Record<string, unknown> });
    await Promise.resolve();
    const next = this.replies.get(cmd)?.shift() as Reply<C> | undefined;
    let result: CommandResults[C];
    if (!next) result = await fallback();
    else if ('error' in next) throw clone(next.error);
    else if ('value' in next) result = clone(next.value);
    else result = await next.run(args);
    if (APP_STATE_COMMANDS.includes(cmd)) this.state = clone(result as AppState);
    if (QUEUE_COMMANDS.includes(cmd)) this.queueState = clone(result as QueueState);
    return clone(result);
  }

  appState = () => this.run('app_state', {}, () => this.state);
  enroll = (code: string, switchProject: boolean) => this.run('enroll', { code, switch: switchProject }, () => this.state);
  previewJoin = (code: string, switchProject: boolean) => this.run('preview_join', { code, switch: switchProject }, () => this.preview);
  startDemo = () => this.run('start_demo', {}, () => this.state);
  leaveDemo = () => this.run('leave_demo', {}, () => this.state);
  giveConsent = () => this.run('give_consent', {}, () => this.state);
  listDevices = () => this.run('list_devices', {}, () => this.devices);
  selectDevice = (name: string | null) => this.run('select_device', { name }, () => this.state);
  startMeter = (onLevel: (l: Level) => void) =>
    this.run('start_meter', { onLevel }, () => {
      this.meterSink = onLevel;
    });
  stopMeter = () =>
    this.run('stop_meter', {}, () => {
      this.meterSink = null;
    });
  checkNoise = () => this.run('check_noise', {}, () => this.noise);
  startTake = (promptId: string, onLevel: (l: Level) => void) =>
    this.run('start_take', { promptId, onLevel }, () => {
      this.takeSink = onLevel;
      return this.review.take_id;
    });
  stopTake = () =>
    this.run('stop_take', {}, () => {
      this.takeSink = null;
      return this.review;
    });
  /** Resolves when stop_playback is called or the test calls finishPlayback(). */
  playTake = () =>
    this.run('play_take', {}, () => {
      this.finishPlayback();
      return new Promise<void>((resolve) => (this.playing = resolve));
    });
  stopPlayback = () => this.run('stop_playback', {}, () => this.finishPlayback());
  acceptTake = (acceptFailed: boolean) => this.run('accept_take', { acceptFailed }, () => this.state);
  discardTake = () => this.run('discard_take', {}, () => this.state);
  skipPrompt = (promptId: string, flagReason: string | null) => this.run('skip_prompt', { promptId, flagReason }, () => this.state);
  goToPrompt = (index: number) => this.run('go_to_prompt', { index }, () => this.state);
  queue = () => this.run('queue', {}, () => this.queueState);
  uploadNow = (onProgress: Parameters<Backend['uploadNow']>[0]) => this.run('upload_now', { onProgress }, () => this.queueState);
  retryItem = (sampleId: string) => this.run('retry_item', { sampleId }, () => this.queueState);
  activity = (limit: number) => this.run('activity', { limit }, () => this.activityEntries.slice(0, limit));
  savePreferences = (theme: string, language: string) => this.run('save_preferences', { theme, language }, () => this.state);
  checkUpdate = () => this.run('check_update', {}, () => this.update);
  downloadUpdate = (onProgress: Parameters<Backend['downloadUpdate']>[0]) =>
    this.run('download_update', { onProgress }, () => {
      throw appError('invalid_input', 'no update download was scripted');
    });
  installUpdate = () => this.run('install_update', {}, () => {});

  onQueueChanged = async (handler: (q: QueueState) => void): Promise<Unsubscribe> => {
    this.queueListeners.add(handler);
    return () => this.queueListeners.delete(handler);
  };
  onDeviceLost = async (handler: (p: DeviceLost) => void): Promise<Unsubscribe> => {
    this.deviceListeners.add(handler);
    return () => this.deviceListeners.delete(handler);
  };
  onStateChanged = async (handler: (s: AppState) => void): Promise<Unsubscribe> => {
    this.stateListeners.add(handler);
    return () => this.stateListeners.delete(handler);
  };
}
