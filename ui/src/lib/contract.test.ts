// The revised parts of the IPC contract, through the controllers, with the backend's answers
// scripted: mic_checked / review / demo_code in AppState, no_consent and busy, play_take resolving
// at the end of playback, the automatic upload with per-item progress, and the state-changed
// event.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ready, recordTake, setup } from '../test/helpers';
import { AppController } from './app.svelte';
import * as fx from './fixtures';
import type { ScriptedBackend } from './scripted';

let b: ScriptedBackend | undefined;
afterEach(() => {
  // every scripted answer was asked for
  expect(b?.pending() ?? []).toEqual([]);
  b?.dispose();
});

describe('AppState additions', () => {
  it('offers the demo code in local mode until enrolled', async () => {
    const ctx = setup();
    b = ctx.b;
    await ctx.app.init();
    expect(ctx.app.state?.demo_code).toBe(fx.DEMO_CODE);
    b.reply('enroll', fx.enrolled({ consent_given: false, mic_checked: false }));
    expect(await ctx.app.enroll(fx.DEMO_CODE)).toBe(true);
    expect(b.invocations.at(-1)).toEqual({ cmd: 'enroll', args: { code: fx.DEMO_CODE, switch: false } });
    expect(ctx.app.state?.demo_code).toBeNull();
    expect(ctx.app.screen).toBe('consent');
  });

  it('checks the microphone first when it was never checked', async () => {
    const ctx = setup({ state: fx.enrolled({ mic_checked: false }) });
    b = ctx.b;
    await ctx.app.init();
    expect(ctx.app.screen).toBe('mic');
    expect(ctx.app.firstRun).toBe(true);
    await ctx.app.mic.checkNoise();
    expect(ctx.app.mic.noise?.verdict).toBe('good');
    await ctx.app.finishMicCheck();
    expect(ctx.app.screen).toBe('session');
  });

  it('goes straight to the prompts when the mic was checked before', async () => {
    const ctx = setup({ state: fx.enrolled({ mic_checked: true }) });
    b = ctx.b;
    await ctx.app.init();
    expect(ctx.app.screen).toBe('session');
    expect(ctx.app.firstRun).toBe(false);
  });

  it('gives the take under review back to a reloaded view', async () => {
    const take = fx.takeReview({ take_id: 't-41' });
    const ctx = setup({ state: fx.enrolled({ review: take }) });
    b = ctx.b;
    const reloaded = new AppController(b);
    await reloaded.init();
    expect(reloaded.screen).toBe('session');
    expect(reloaded.session.phase).toBe('review');
    expect(reloaded.session.review?.take_id).toBe('t-41');
    b.reply('accept_take', fx.accepted(reloaded.state!, 0));
    expect(await reloaded.session.accept()).toBe('accepted');
    expect(reloaded.state?.review).toBeNull();
    expect(reloaded.session.phase).toBe('idle');
    reloaded.dispose();
  });
});

describe('errors', () => {
  it('shows the consent screen when recording is refused for want of consent (no_consent)', async () => {
    const ctx = await ready();
    b = ctx.b;
    b.fail('start_take', 'no_consent');
    b.state = fx.enrolled({ consent_given: false });
    await ctx.app.session.record();
    expect(ctx.app.session.error?.kind).toBe('no_consent');
    await vi.waitFor(() => expect(ctx.app.screen).toBe('consent'));
  });

  it('discards the take under review before skipping (the backend is busy with one)', async () => {
    const ctx = await ready();
    b = ctx.b;
    await recordTake(ctx.app, b);
    b.reply('skip_prompt', fx.withProgress(ctx.app.state!, 0, { status: 'skipped' }, 1));
    await ctx.app.session.skip(null); // discard_take, then skip_prompt
    expect(b.calls.slice(-2)).toEqual(['discard_take', 'skip_prompt']);
    expect(ctx.app.session.error).toBeNull();
    expect(ctx.app.session.index).toBe(1);
  });

  it('names needs_passphrase on the enrollment screen', async () => {
    const ctx = setup();
    b = ctx.b;
    await ctx.app.init();
    b.fail('enroll', 'needs_passphrase', 'no keychain');
    expect(await ctx.app.enroll('ABCD-EFGH')).toBe(false);
    expect(ctx.app.enrollError?.kind).toBe('needs_passphrase');
    expect(ctx.app.screen).toBe('enroll');
  });
});

describe('prompts', () => {
  it('shows the prompt the backend names as current, kept in range', async () => {
    const ctx = await ready();
    b = ctx.b;
    const s = ctx.app.session;
    await recordTake(ctx.app, b);
    b.reply('accept_take', { ...fx.accepted(ctx.app.state!, 2), current_prompt: 3 });
    await s.accept();
    expect(s.index).toBe(3);
    expect(s.prompt?.id).toBe('p004');
    b.emitState({ ...ctx.app.state!, current_prompt: 99 });
    await vi.waitFor(() => expect(ctx.app.state?.current_prompt).toBe(99));
    expect(s.index).toBe(s.total - 1);
  });
});

describe('playback', () => {
  it('plays until the end of the take', async () => {
    const ctx = await ready();
    b = ctx.b;
    await recordTake(ctx.app, b);
    await ctx.app.session.togglePlay();
    expect(ctx.app.session.playing).toBe(true);
    b.finishPlayback();
    await vi.waitFor(() => expect(ctx.app.session.playing).toBe(false));
    expect(b.calls).not.toContain('stop_playback');
  });

  it('a stopped playback does not end the next one', async () => {
    const ctx = await ready();
    b = ctx.b;
    const s = ctx.app.session;
    await recordTake(ctx.app, b);
    await s.togglePlay();
    await s.togglePlay(); // stop: the first play_take resolves now
    await s.togglePlay();
    await new Promise((r) => setTimeout(r, 10));
    expect(s.playing).toBe(true);
    await s.togglePlay();
    expect(s.playing).toBe(false);
  });
});

describe('automatic upload', () => {
  it('shows the uploads the backend makes by itself after accepted takes', async () => {
    const ctx = await ready();
    b = ctx.b;
    const { app } = ctx;
    await app.navigate('queue');
    await app.navigate('session');
    const items = [fx.queueItem('s-p001-v1'), fx.queueItem('s-p002-v1')];
    for (let i = 0; i < 2; i++) {
      await recordTake(app, b);
      b.reply('accept_take', fx.accepted(app.state!, i));
      b.reply('queue', fx.queueState(items.slice(0, i + 1)));
      expect(await app.session.accept()).toBe('accepted');
    }
    await vi.waitFor(() => expect(app.queue.items).toHaveLength(2));
    b.emitQueue(fx.withStatus(fx.queueState(items), 'uploaded'));
    await vi.waitFor(() => expect(app.queue.items.map((i) => i.status)).toEqual(['uploaded', 'uploaded']));
    expect(app.queue.rawOnMachine).toBe(0);
    expect(b.calls).not.toContain('upload_now');
  });

  it('shows an offline attempt from the queue-changed events, and the upload that follows it', async () => {
    // The shell retries by itself (tested in Rust); here the next attempt is upload_now.
    const ctx = await ready();
    b = ctx.b;
    const { app } = ctx;
    const queue = fx.queueState([fx.queueItem('s-p001-v1')]);
    b.emitQueue(fx.withStatus(queue, 'failed', { online: false }));
    await vi.waitFor(() => expect(app.queue.online).toBe(false));
    expect(app.queue.rawOnMachine).toBe(1);
    expect(app.queue.items[0]!.status).toBe('failed');
    b.reply('upload_now', fx.withStatus(queue, 'uploaded'));
    await app.queue.uploadNow();
    expect(app.queue.rawOnMachine).toBe(0);
    expect(app.queue.online).toBe(true);
  });

  it('shows the bytes of the item being sent from upload_now progress', async () => {
    const item = fx.queueItem('s-p001-v1', { bytes_total: 400_000 });
    const ctx = await ready({}, { queue: fx.queueState([item]) });
    b = ctx.b;
    const { app } = ctx;
    await app.navigate('queue');
    let finish = () => {};
    b.handle('upload_now', async ({ onProgress }) => {
      onProgress(fx.progress({ bytes_done: 150_000, bytes_total: 400_000, items_total: 1, sample_id: item.sample_id, item_bytes_done: 150_000, item_bytes_total: 400_000 }));
      await new Promise<void>((r) => (finish = r));
      return fx.withStatus(fx.queueState([item]), 'uploaded');
    });
    const upload = app.queue.uploadNow();
    await vi.waitFor(() => expect(app.queue.itemBytes(app.queue.items[0]!)).toEqual({ done: 150_000, total: 400_000 }));
    finish();
    await upload;
    expect(app.queue.progress).toBeNull();
    expect(app.queue.itemBytes(app.queue.items[0]!)).toEqual({ done: 400_000, total: 400_000 });
  });
});

describe('state-changed', () => {
  it('sends a revoked contractor back to the enrollment screen', async () => {
    const ctx = await ready();
    b = ctx.b;
    expect(ctx.app.screen).toBe('session');
    b.emitState(fx.appState({ mode: 'project', demo_code: null }));
    await vi.waitFor(() => expect(ctx.app.screen).toBe('enroll'));
    expect(ctx.app.state?.enrolled).toBe(false);
  });
});
