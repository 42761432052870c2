// Session rules: a failing take needs an explicit confirmation, navigation away from a take
// under review asks first, skipping and flagging, re-recording, and losing the microphone.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ready, recordTake } from '../test/helpers';
import type { MemoryBackend } from './memoryBackend';

let mem: MemoryBackend | undefined;
afterEach(() => mem?.dispose());

describe('session', () => {
  it('never accepts a failing take without the explicit confirmation', async () => {
    const ctx = await ready({ failFirstTakeOf: ['p001'] });
    mem = ctx.mem;
    const s = ctx.app.session;
    await recordTake(ctx.app);
    expect(s.review?.quality.overall).toBe('fail');
    expect(s.review?.quality.checks.find((c) => c.name === 'clipping')?.verdict).toBe('fail');

    // Enter / Accept only explains
    expect(await s.accept()).toBe('needs_confirm');
    expect(mem.calls).not.toContain('accept_take');
    expect(s.confirmFailed).toBe(true);
    expect(s.phase).toBe('review');
    expect(ctx.app.state?.progress[0]?.status).toBe('todo');

    // the backend refuses it too (defence in depth): the error kind is shown
    await expect(mem.acceptTake(false)).rejects.toMatchObject({ kind: 'quality_failed' });

    // re-recording gives a passing take, which Accept takes
    await s.rerecord();
    expect(mem.calls).toContain('discard_take');
    expect(s.phase).toBe('recording');
    await vi.waitFor(() => expect(s.level).not.toBeNull());
    await s.stop();
    expect(s.review?.quality.overall).not.toBe('fail');
    expect(s.confirmFailed).toBe(false);
    expect(await s.accept()).toBe('accepted');
    expect(ctx.app.state?.progress[0]?.status).toBe('accepted');
  });

  it('accepts a failing take with "Accept anyway" and records that', async () => {
    const ctx = await ready({ failFirstTakeOf: ['p001'] });
    mem = ctx.mem;
    await recordTake(ctx.app);
    expect(await ctx.app.session.acceptAnyway()).toBe('accepted');
    expect(mem.manifests[0]).toMatchObject({ prompt_id: 'p001', accepted_failed: true });
  });

  it('accepts a take with warnings directly', async () => {
    const ctx = await ready({ failFirstTakeOf: [] });
    mem = ctx.mem;
    await ctx.app.session.goTo(1); // p002's first take has a silence warning
    await recordTake(ctx.app);
    expect(ctx.app.session.review?.quality.overall).toBe('warn');
    expect(await ctx.app.session.accept()).toBe('accepted');
  });

  it('a too-short take fails with a human reason', async () => {
    const ctx = await ready({ takeDurationS: 0.4, failFirstTakeOf: [] });
    mem = ctx.mem;
    await recordTake(ctx.app);
    const dur = ctx.app.session.review!.quality.checks.find((c) => c.name === 'duration')!;
    expect(dur.verdict).toBe('fail');
    expect(dur.code).toBe('short');
  });

  it('asks before leaving a take under review, and discards it on confirmation', async () => {
    const ctx = await ready();
    mem = ctx.mem;
    const s = ctx.app.session;
    await recordTake(ctx.app);
    await s.next();
    expect(s.pendingNav).toBe(1);
    expect(s.index).toBe(0);
    expect(ctx.app.dialogOpen).toBe(true);
    s.cancelNav();
    expect(s.pendingNav).toBeNull();
    expect(s.review).not.toBeNull();

    await s.next();
    await s.confirmNav();
    expect(s.review).toBeNull();
    expect(s.index).toBe(1);
    expect(mem.calls).toContain('discard_take');
  });

  it('does not navigate while recording', async () => {
    const ctx = await ready();
    mem = ctx.mem;
    const s = ctx.app.session;
    await s.record();
    await s.next();
    expect(s.index).toBe(0);
    expect(await ctx.app.navigate('queue')).toBe(false);
    expect(ctx.app.screen).toBe('session');
    await s.stop();
  });

  it('skips, and flags with a reason', async () => {
    const ctx = await ready();
    mem = ctx.mem;
    const s = ctx.app.session;
    s.openFlag();
    expect(s.flagOpen).toBe(true);
    await s.skip('   ');
    expect(s.flagOpen).toBe(false);
    expect(ctx.app.state?.progress[0]).toMatchObject({ status: 'skipped', flag_reason: null });
    expect(s.index).toBe(1);

    await s.skip('typo: "teh"');
    expect(ctx.app.state?.progress[1]).toMatchObject({ status: 'flagged', flag_reason: 'typo: "teh"' });
    expect(s.index).toBe(2);
  });

  it('plays the take and stops playing', async () => {
    const ctx = await ready();
    mem = ctx.mem;
    const s = ctx.app.session;
    await s.togglePlay(); // nothing to play
    expect(mem.calls).not.toContain('play_take');
    await recordTake(ctx.app);
    await s.togglePlay();
    expect(s.playing).toBe(true);
    await s.togglePlay();
    expect(s.playing).toBe(false);
    expect(mem.calls.filter((c) => c === 'play_take' || c === 'stop_playback')).toEqual(['play_take', 'stop_playback']);
  });

  it('keeps the part recorded when the microphone is unplugged', async () => {
    const ctx = await ready();
    mem = ctx.mem;
    const s = ctx.app.session;
    await s.record();
    await vi.waitFor(() => expect(s.level).not.toBeNull());
    mem.unplug('Built-in Microphone');
    await vi.waitFor(() => expect(s.phase).toBe('review'));
    expect(s.review?.interrupted).toEqual({ kind: 'device_lost', detail: expect.stringMatching(/disconnected/) });
    expect(ctx.app.deviceLost).toMatch(/disconnected/);
    // the rest of the devices is still there; recording again uses the new default
    await s.rerecord();
    expect(s.phase).toBe('recording');
    await s.stop();
  });

  it('respects the remembered device: no silent fallback when it is unplugged', async () => {
    const ctx = await ready();
    mem = ctx.mem;
    await ctx.app.mic.select('USB Headset');
    mem.unplug('USB Headset');
    await ctx.app.session.record();
    expect(ctx.app.session.phase).toBe('idle');
    expect(ctx.app.session.error?.kind).toBe('no_device');
    await ctx.app.mic.refreshDevices();
    expect(ctx.app.mic.selectedAvailable).toBe(false);
    mem.plug({ name: 'USB Headset', id: 'usb', is_default: false, sample_rate: 44100, channels: 1, format: 'i16' });
    await ctx.app.session.record();
    expect(ctx.app.session.phase).toBe('recording');
    await ctx.app.session.stop();
  });
});
