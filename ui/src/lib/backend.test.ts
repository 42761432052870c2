// tauriBackend against Tauri's own IPC mock: command names, the argument names of the generated
// command map (commands.ts), Channels, events, and error normalization.
import { Channel } from '@tauri-apps/api/core';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { COMMANDS, inTauri, tauriBackend, type Backend } from './backend';
import { COMMAND_ARGS } from './commands';
import { ScriptedBackend } from './scripted';

afterEach(() => clearMocks());

describe('tauriBackend', () => {
  it('invokes every command of the contract with its argument names', async () => {
    const seen: [string, Record<string, unknown> | undefined][] = [];
    mockIPC((cmd, args) => {
      seen.push([cmd, args as Record<string, unknown> | undefined]);
      return cmd === 'list_devices' || cmd === 'activity' ? [] : cmd === 'start_take' ? 't-1' : null;
    });
    const noop = () => {};
    const b = tauriBackend;
    await b.appState();
    await b.enroll('ABCD-EFGH', false);
    await b.previewJoin('ABCD-EFGH', true);
    await b.startDemo();
    await b.leaveDemo();
    await b.giveConsent();
    await b.listDevices();
    await b.selectDevice(null);
    await b.startMeter(noop);
    await b.stopMeter();
    await b.checkNoise();
    expect(await b.startTake('p001', noop)).toBe('t-1');
    await b.stopTake();
    await b.playTake();
    await b.stopPlayback();
    await b.acceptTake(true);
    await b.discardTake();
    await b.skipPrompt('p002', 'typo');
    await b.goToPrompt(3);
    await b.queue();
    await b.uploadNow(noop);
    await b.retryItem('s-1');
    await b.activity(50);
    await b.savePreferences('dark', 'en');
    await b.checkUpdate();
    await b.downloadUpdate(noop);
    await b.installUpdate();

    expect(seen.map(([c]) => c)).toEqual([...COMMANDS]);
    // Each command gets exactly the argument names of the Rust command table (commands.ts).
    const args = Object.fromEntries(seen.map(([c, a]) => [c, a ? Object.keys(a) : []]));
    expect(args).toEqual(Object.fromEntries(COMMANDS.map((c) => [c, [...COMMAND_ARGS[c]]])));
    expect(args).toMatchObject({ enroll: ['code', 'switch'], skip_prompt: ['promptId', 'flagReason'] });
    const get = (c: string) => seen.find(([x]) => x === c)![1]!;
    expect(get('select_device')).toEqual({ name: null });
    expect(get('skip_prompt')).toEqual({ promptId: 'p002', flagReason: 'typo' });
    expect(get('accept_take')).toEqual({ acceptFailed: true });
    expect(get('start_take').onLevel).toBeInstanceOf(Channel);
    expect(get('upload_now').onProgress).toBeInstanceOf(Channel);
  });

  it('delivers Channel messages to the callback', async () => {
    let ch: Channel<unknown> | undefined;
    mockIPC((cmd, args) => {
      if (cmd === 'start_meter') ch = (args as { onLevel: Channel<unknown> }).onLevel;
      return null;
    });
    const levels: unknown[] = [];
    await tauriBackend.startMeter((l) => levels.push(l));
    const level = { peak_dbfs: -6, rms_dbfs: -20, clipped: false, elapsed_s: 0.04 };
    ch!.onmessage(level);
    expect(levels).toEqual([level]);
  });

  it('normalizes rejections to AppError', async () => {
    const rejectWith = (value: unknown) =>
      mockIPC(() => {
        throw value;
      });
    rejectWith({ kind: 'bad_code', message: 'unknown code' });
    await expect(tauriBackend.enroll('x', false)).rejects.toEqual({ kind: 'bad_code', message: 'unknown code' });
    rejectWith({ kind: 'no_such_kind', message: 'hm' });
    await expect(tauriBackend.appState()).rejects.toEqual({ kind: 'internal', message: 'hm' });
    rejectWith('Command start_take not allowed by ACL');
    await expect(tauriBackend.stopTake()).rejects.toEqual({ kind: 'internal', message: 'Command start_take not allowed by ACL' });
    rejectWith('{"kind":"offline","message":"no network"}');
    await expect(tauriBackend.queue()).rejects.toEqual({ kind: 'offline', message: 'no network' });
    rejectWith(new Error('boom'));
    await expect(tauriBackend.queue()).rejects.toEqual({ kind: 'internal', message: 'boom' });
  });

  it('subscribes to the broadcast events', async () => {
    mockIPC(() => null, { shouldMockEvents: true });
    const queues: unknown[] = [];
    const lost: unknown[] = [];
    const states: unknown[] = [];
    const un1 = await tauriBackend.onQueueChanged((q) => queues.push(q));
    const un2 = await tauriBackend.onDeviceLost((p) => lost.push(p));
    const un3 = await tauriBackend.onStateChanged((s) => states.push(s));
    const q = { items: [], online: false, uploading: false, waiting_for_network: false, raw_on_machine: 0, last_wipe_at: null };
    const s = { mode: 'demo', enrolled: false, demo_code: null };
    await emit('queue-changed', q);
    await emit('device-lost', { message: 'gone' });
    await emit('state-changed', s);
    await vi.waitFor(() => expect(states).toHaveLength(1));
    expect(queues).toEqual([q]);
    expect(lost).toEqual([{ message: 'gone' }]);
    expect(states).toEqual([s]);
    un1();
    un2();
    un3();
  });

  it('detects the Tauri web view', () => {
    expect(inTauri({})).toBe(false);
    expect(inTauri({ __TAURI_INTERNALS__: {} })).toBe(true);
  });

  it('has the same methods as the scripted backend the UI tests use', () => {
    const scripted = new ScriptedBackend();
    const methods = Object.keys(tauriBackend).sort() as (keyof Backend)[];
    for (const m of methods) expect(typeof scripted[m], m).toBe('function');
    expect(methods).toHaveLength(COMMANDS.length + 3); // + the three event subscriptions
    scripted.dispose();
  });
});
