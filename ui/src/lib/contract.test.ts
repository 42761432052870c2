// The revised parts of the IPC contract, through the controllers and the in-memory backend:
// mic_checked / review / demo_code in AppState, no_consent and busy, play_take resolving at the
// end of playback, the automatic upload with per-item progress, and the state-changed event.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ready, recordTake, setup } from '../test/helpers';
import { AppController } from './app.svelte';
import { DEMO_CODE, type MemoryBackend } from './memoryBackend';
import type { UploadProgress } from './types';

let mem: MemoryBackend | undefined;
afterEach(() => mem?.dispose());

describe('AppState additions', () => {
  it('offers the demo code in local mode until enrolled', async () => {
    const ctx = setup();
    mem = ctx.mem;
    await ctx.app.init();
    expect(ctx.app.state?.demo_code).toBe(DEMO_CODE);
    expect(await ctx.app.enroll(DEMO_CODE)).toBe(true);
    expect(ctx.app.state?.demo_code).toBeNull();
  });

  it('checks the microphone first when it was never checked, and remembers the check', async () => {
    const ctx = setup({ enrolled: true, consentGiven: true, micChecked: false });
    mem = ctx.mem;
    await ctx.app.init();
    expect(ctx.app.screen).toBe('mic');
    expect(ctx.app.firstRun).toBe(true);
    expect(ctx.app.state?.mic_checked).toBe(false);
    await ctx.app.mic.checkNoise();
    expect((await mem.appState()).mic_checked).toBe(true);
    await ctx.app.finishMicCheck();
    expect(ctx.app.screen).toBe('session');
  });

  it('gives the take under review back to a reloaded view', async () => {
    const ctx = await ready();
    mem = ctx.mem;
    await recordTake(ctx.app);
    const take = ctx.app.session.review!;
    ctx.app.dispose();

    const reloaded = new AppController(mem);
    await reloaded.init();
    expect(reloaded.screen).toBe('session');
    expect(reloaded.session.phase).toBe('review');
    expect(reloaded.session.review?.take_id).toBe(take.take_id);
    expect(await reloaded.session.accept()).toBe('accepted');
    expect(reloaded.state?.review).toBeNull();
    reloaded.dispose();
  });
});

describe('errors', () => {
  it('refuses to record before consent (no_consent) and shows the consent screen', async () => {
    const ctx = setup({ enrolled: true, consentGiven: false });
    mem = ctx.mem;
    await expect(mem.startTake('p001', () => {})).rejects.toMatchObject({ kind: 'no_consent' });
    await ctx.app.init();
    ctx.app.screen = 'session'; // as if the consent had been withdrawn behind the view's back
    await ctx.app.session.record();
    expect(ctx.app.session.error?.kind).toBe('no_consent');
    await vi.waitFor(() => expect(ctx.app.screen).toBe('consent'));
  });

  it('is busy while a take is under review; the controller discards first', async () => {
    const ctx = await ready();
    mem = ctx.mem;
    await recordTake(ctx.app);
    await expect(mem.startTake('p001', () => {})).rejects.toMatchObject({ kind: 'busy' });
    await expect(mem.goToPrompt(2)).rejects.toMatchObject({ kind: 'busy' });
    await expect(mem.skipPrompt('p001', null)).rejects.toMatchObject({ kind: 'busy' });

    await ctx.app.session.skip(null); // discard_take, then skip_prompt
    expect(mem.calls.slice(-2)).toEqual(['discard_take', 'skip_prompt']);
    expect(ctx.app.session.error).toBeNull();
    expect(ctx.app.session.index).toBe(1);
  });

  it('names needs_passphrase on the enrollment screen', async () => {
    const ctx = setup();
    mem = ctx.mem;
    await ctx.app.init();
    expect(await ctx.app.enroll('ABCD-PASSPHRASE')).toBe(false);
    expect(ctx.app.enrollError?.kind).toBe('needs_passphrase');
  });
});

describe('prompts', () => {
  it('moves current_prompt on after accept and skip, staying on the last', async () => {
    const ctx = await ready({ failFirstTakeOf: [] });
    mem = ctx.mem;
    const s = ctx.app.session;
    await s.goTo(s.total - 2);
    await recordTake(ctx.app);
    await s.accept();
    expect(s.index).toBe(s.total - 1);
    await s.skip(null);
    expect(s.index).toBe(s.total - 1);
    expect(ctx.app.state?.progress.at(-1)?.status).toBe('skipped');
  });
});

describe('playback', () => {
  it('plays until the end of the take', async () => {
    const ctx = await ready({ takeDurationS: 0.05 });
    mem = ctx.mem;
    await recordTake(ctx.app);
    await ctx.app.session.togglePlay();
    expect(ctx.app.session.playing).toBe(true);
    await vi.waitFor(() => expect(ctx.app.session.playing).toBe(false));
    expect(mem.calls).not.toContain('stop_playback');
  });

  it('a stopped playback does not end the next one', async () => {
    const ctx = await ready({ takeDurationS: 5 });
    mem = ctx.mem;
    const s = ctx.app.session;
    await recordTake(ctx.app);
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
  it('uploads after every accepted take, by itself', async () => {
    const ctx = await ready({ failFirstTakeOf: [], autoUpload: true });
    mem = ctx.mem;
    const { app } = ctx;
    await app.navigate('queue');
    await app.navigate('session');
    for (let i = 0; i < 2; i++) {
      await recordTake(app);
      expect(await app.session.accept()).toBe('accepted');
    }
    await vi.waitFor(() => expect(app.queue.items.map((i) => i.status)).toEqual(['uploaded', 'uploaded']));
    expect(app.queue.rawOnMachine).toBe(0);
    expect(mem.calls).not.toContain('upload_now');
  });

  it('shows an offline attempt from the queue-changed events, and the upload that follows it', async () => {
    // The shell retries by itself (tested in Rust); here the next attempt is upload_now.
    const ctx = await ready({ failFirstTakeOf: [], autoUpload: true, uploads: ['offline'] });
    mem = ctx.mem;
    const { app } = ctx;
    await recordTake(app);
    await app.session.accept();
    await vi.waitFor(() => expect(app.queue.online).toBe(false));
    expect(app.queue.rawOnMachine).toBe(1);
    expect(app.queue.items[0]!.status).toBe('failed');
    await app.queue.uploadNow();
    expect(app.queue.rawOnMachine).toBe(0);
    expect(app.queue.online).toBe(true);
  });

  it('shows the bytes of the item being sent from upload_now progress', async () => {
    const ctx = await ready({ failFirstTakeOf: [], uploadStepMs: 15, uploadSteps: 4 });
    mem = ctx.mem;
    const { app } = ctx;
    await recordTake(app);
    await app.session.accept();
    await app.navigate('queue');
    const seen: UploadProgress[] = [];
    const upload = app.queue.uploadNow();
    await vi.waitFor(
      () => {
        const p = app.queue.progress;
        if (p) seen.push(p);
        expect(app.queue.progress).toBeNull();
      },
      { interval: 3, timeout: 3000 },
    );
    await upload;
    const item = app.queue.items[0]!;
    const mid = seen.find((p) => p.sample_id === item.sample_id && p.item_bytes_done > 0 && p.item_bytes_done < p.item_bytes_total);
    expect(mid).toBeDefined();
    expect(mid!.item_bytes_total).toBe(item.bytes_total);
    expect(app.queue.itemBytes(item)).toEqual({ done: item.bytes_total, total: item.bytes_total });
  });
});

describe('state-changed', () => {
  it('sends a revoked contractor back to the enrollment screen', async () => {
    const ctx = await ready();
    mem = ctx.mem;
    expect(ctx.app.screen).toBe('session');
    mem.revoke();
    await vi.waitFor(() => expect(ctx.app.screen).toBe('enroll'));
    expect(ctx.app.state?.enrolled).toBe(false);
  });
});
