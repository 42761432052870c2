// Session rules: a failing take needs an explicit confirmation, navigation away from a take
// under review asks first, skipping and flagging, re-recording, and losing the microphone. The
// backend's answers are scripted (fixtures): quality verdicts, progress and the next prompt are
// the Rust app's (crates/voxseal-app), not decided here.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ready, recordTake } from '../test/helpers';
import * as fx from './fixtures';
import type { ScriptedBackend } from './scripted';

let b: ScriptedBackend | undefined;
afterEach(() => {
  // every scripted answer was asked for
  expect(b?.pending() ?? []).toEqual([]);
  b?.dispose();
});

const at = (s: ReturnType<typeof fx.enrolled>, i: number) => ({ ...s, current_prompt: i });

describe('session', () => {
  it('never accepts a failing take without the explicit confirmation', async () => {
    const ctx = await ready();
    b = ctx.b;
    const s = ctx.app.session;
    await recordTake(ctx.app, b, { quality: fx.quality('clipped') });
    expect(s.review?.quality.overall).toBe('fail');

    // Enter / Accept only explains
    expect(await s.accept()).toBe('needs_confirm');
    expect(b.calls).not.toContain('accept_take');
    expect(s.confirmFailed).toBe(true);
    expect(s.phase).toBe('review');
    expect(ctx.app.state?.progress[0]?.status).toBe('todo');

    // re-recording discards and records again; a passing take is accepted by Accept
    b.review = fx.takeReview({ take_id: 't-2' });
    await s.rerecord();
    expect(b.calls.slice(-2)).toEqual(['discard_take', 'start_take']);
    expect(s.phase).toBe('recording');
    b.level();
    await vi.waitFor(() => expect(s.level).not.toBeNull());
    await s.stop();
    expect(s.review?.quality.overall).toBe('pass');
    expect(s.confirmFailed).toBe(false);
    b.reply('accept_take', fx.accepted(ctx.app.state!, 0));
    expect(await s.accept()).toBe('accepted');
    expect(b.invocations.at(-2)).toEqual({ cmd: 'accept_take', args: { acceptFailed: false } });
    expect(ctx.app.state?.progress[0]?.status).toBe('accepted');
    expect(s.index).toBe(1);
  });

  it('accepts a failing take with "Accept anyway", saying so to the backend', async () => {
    const ctx = await ready();
    b = ctx.b;
    await recordTake(ctx.app, b, { quality: fx.quality('clipped') });
    b.reply('accept_take', fx.accepted(ctx.app.state!, 0));
    expect(await ctx.app.session.acceptAnyway()).toBe('accepted');
    expect(b.invocations.find((i) => i.cmd === 'accept_take')?.args).toEqual({ acceptFailed: true });
  });

  it('shows the confirmation when the backend refuses a failing take (quality_failed)', async () => {
    const ctx = await ready();
    b = ctx.b;
    await recordTake(ctx.app, b);
    b.fail('accept_take', 'quality_failed');
    expect(await ctx.app.session.accept()).toBe('error');
    expect(ctx.app.session.error?.kind).toBe('quality_failed');
    expect(ctx.app.session.confirmFailed).toBe(true);
    expect(ctx.app.session.phase).toBe('review');
  });

  it('accepts a take with warnings directly', async () => {
    const ctx = await ready();
    b = ctx.b;
    await recordTake(ctx.app, b, { quality: fx.quality('warn') });
    expect(ctx.app.session.review?.quality.overall).toBe('warn');
    b.reply('accept_take', fx.accepted(ctx.app.state!, 0));
    expect(await ctx.app.session.accept()).toBe('accepted');
  });

  it('a too-short take is failing: Accept only explains', async () => {
    const ctx = await ready();
    b = ctx.b;
    await recordTake(ctx.app, b, { duration_s: 0.4, quality: fx.quality('short', 0.4) });
    expect(ctx.app.session.failing).toBe(true);
    expect(await ctx.app.session.accept()).toBe('needs_confirm');
  });

  it('asks before leaving a take under review, and discards it on confirmation', async () => {
    const ctx = await ready();
    b = ctx.b;
    const s = ctx.app.session;
    await recordTake(ctx.app, b);
    await s.next();
    expect(s.pendingNav).toBe(1);
    expect(s.index).toBe(0);
    expect(ctx.app.dialogOpen).toBe(true);
    s.cancelNav();
    expect(s.pendingNav).toBeNull();
    expect(s.review).not.toBeNull();

    await s.next();
    b.reply('go_to_prompt', at(ctx.app.state!, 1));
    await s.confirmNav();
    expect(s.review).toBeNull();
    expect(s.index).toBe(1);
    expect(b.calls.slice(-2)).toEqual(['discard_take', 'go_to_prompt']);
    expect(b.invocations.at(-1)?.args).toEqual({ index: 1 });
  });

  it('does not navigate while recording', async () => {
    const ctx = await ready();
    b = ctx.b;
    const s = ctx.app.session;
    await s.record();
    await s.next();
    expect(s.index).toBe(0);
    expect(b.calls).not.toContain('go_to_prompt');
    expect(await ctx.app.navigate('queue')).toBe(false);
    expect(ctx.app.screen).toBe('session');
    await s.stop();
  });

  it('skips, and flags with a reason', async () => {
    const ctx = await ready();
    b = ctx.b;
    const s = ctx.app.session;
    s.openFlag();
    expect(s.flagOpen).toBe(true);
    b.reply('skip_prompt', fx.withProgress(ctx.app.state!, 0, { status: 'skipped' }, 1));
    await s.skip('   ');
    expect(s.flagOpen).toBe(false);
    expect(b.invocations.at(-1)).toEqual({ cmd: 'skip_prompt', args: { promptId: 'p001', flagReason: null } });
    expect(ctx.app.state?.progress[0]).toMatchObject({ status: 'skipped', flag_reason: null });
    expect(s.index).toBe(1);

    b.reply('skip_prompt', fx.withProgress(ctx.app.state!, 1, { status: 'flagged', flag_reason: 'typo: "teh"' }, 2));
    await s.skip('  typo: "teh" ');
    expect(b.invocations.at(-1)?.args).toEqual({ promptId: 'p002', flagReason: 'typo: "teh"' });
    expect(ctx.app.state?.progress[1]).toMatchObject({ status: 'flagged', flag_reason: 'typo: "teh"' });
    expect(s.index).toBe(2);
  });

  it('plays the take and stops playing', async () => {
    const ctx = await ready();
    b = ctx.b;
    const s = ctx.app.session;
    await s.togglePlay(); // nothing to play
    expect(b.calls).not.toContain('play_take');
    await recordTake(ctx.app, b);
    await s.togglePlay();
    expect(s.playing).toBe(true);
    await s.togglePlay();
    expect(s.playing).toBe(false);
    expect(b.calls.filter((c) => c === 'play_take' || c === 'stop_playback')).toEqual(['play_take', 'stop_playback']);
  });

  it('keeps the part recorded when the microphone is unplugged', async () => {
    const ctx = await ready();
    b = ctx.b;
    const s = ctx.app.session;
    await s.record();
    b.level();
    await vi.waitFor(() => expect(s.level).not.toBeNull());
    const detail = 'The microphone "Built-in Microphone" was disconnected.';
    b.review = fx.takeReview({ duration_s: 1.2, interrupted: { kind: 'device_lost', detail } });
    b.emitDeviceLost(detail);
    await vi.waitFor(() => expect(s.phase).toBe('review'));
    expect(b.calls).toContain('stop_take'); // the controller ends the take itself
    expect(s.review?.interrupted).toEqual({ kind: 'device_lost', detail });
    expect(ctx.app.deviceLost).toMatch(/disconnected/);
    // recording again works from the review
    await s.rerecord();
    expect(s.phase).toBe('recording');
    await s.stop();
  });

  it('respects the remembered device: no silent fallback when it is unplugged', async () => {
    const ctx = await ready({ device: 'USB Headset' });
    b = ctx.b;
    b.devices = fx.devices().filter((d) => d.name !== 'USB Headset');
    b.fail('start_take', 'no_device', 'The chosen microphone "USB Headset" is not connected.');
    await ctx.app.session.record();
    expect(ctx.app.session.phase).toBe('idle');
    expect(ctx.app.session.error?.kind).toBe('no_device');
    await ctx.app.mic.refreshDevices();
    expect(ctx.app.mic.selectedAvailable).toBe(false);
    b.devices = fx.devices();
    await ctx.app.mic.refreshDevices();
    expect(ctx.app.mic.selectedAvailable).toBe(true);
    await ctx.app.session.record();
    expect(ctx.app.session.phase).toBe('recording');
    await ctx.app.session.stop();
  });
});
