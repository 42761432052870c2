// The whole contractor flow through the controllers, with the backend's answers scripted:
// enroll -> consent -> mic check -> record 3 prompts -> re-record one -> upload -> 0 raw left.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ready, recordTake, setup, tick } from '../test/helpers';
import * as fx from './fixtures';
import type { ScriptedBackend } from './scripted';

let b: ScriptedBackend | undefined;
afterEach(() => {
  // every scripted answer was asked for
  expect(b?.pending() ?? []).toEqual([]);
  b?.dispose();
});

const LINK = 'voxseal://enroll?code=ABCD-EFGH-JKLM&project=demo';

describe('first run to submission', () => {
  it('goes from enrollment to an empty machine', async () => {
    const ctx = setup();
    b = ctx.b;
    const { app } = ctx;
    await app.init();
    expect(app.screen).toBe('enroll');
    expect(app.firstRun).toBe(true);

    // a refused code: an error with its kind, still on the enroll screen
    b.fail('enroll', 'bad_code', 'unknown code');
    expect(await app.enroll('not a code')).toBe(false);
    expect(app.enrollError?.kind).toBe('bad_code');
    expect(app.screen).toBe('enroll');

    b.reply('enroll', fx.enrolled({ consent_given: false, mic_checked: false }));
    expect(await app.enroll(`  ${LINK} `)).toBe(true);
    expect(b.invocations.at(-1)).toEqual({ cmd: 'enroll', args: { code: LINK, switch: false } });
    expect(app.enrollError).toBeNull();
    expect(app.screen).toBe('consent');
    expect(app.state?.project?.consent_text).toMatch(/agree/);

    b.reply('give_consent', fx.enrolled({ mic_checked: false }));
    await app.giveConsent();
    expect(app.state?.consent_given).toBe(true);
    expect(b.calls).toContain('give_consent');
    expect(app.screen).toBe('mic');

    // mic check: devices listed, meter running, choice remembered, noise verdict
    expect(app.mic.devices.length).toBeGreaterThan(1);
    b.level();
    await vi.waitFor(() => expect(app.mic.level).not.toBeNull());
    b.reply('select_device', fx.enrolled({ mic_checked: false, device: 'USB Headset' }));
    await app.mic.select('USB Headset');
    expect(b.invocations.find((i) => i.cmd === 'select_device')?.args).toEqual({ name: 'USB Headset' });
    expect(app.state?.device).toBe('USB Headset');
    expect(app.mic.metering).toBe(true);
    await app.mic.checkNoise();
    expect(app.mic.noise?.verdict).toBe('good');
    expect(app.mic.metering).toBe(true); // back on after the measurement
    await app.finishMicCheck();
    expect(app.screen).toBe('session');
    expect(app.mic.metering).toBe(false);
    expect(b.calls.at(-1)).toBe('stop_meter');

    // three prompts; the third one's take fails its checks
    const s = app.session;
    for (let i = 0; i < 3; i++) {
      expect(s.index).toBe(i);
      await recordTake(app, b, { quality: fx.quality(i === 2 ? 'clipped' : 'pass') });
      expect(s.phase).toBe('review');
      expect(s.review?.waveform.length).toBe(400);
      expect(s.review?.duration_s).toBe(2.5);
      b.reply('accept_take', fx.accepted(app.state!, i));
      if (s.failing) {
        expect(i).toBe(2);
        expect(await s.accept()).toBe('needs_confirm');
        expect(s.review).not.toBeNull();
        expect(s.confirmFailed).toBe(true);
        expect(await s.acceptAnyway()).toBe('accepted');
      } else {
        expect(await s.accept()).toBe('accepted');
      }
      expect(s.review).toBeNull();
      expect(s.phase).toBe('idle');
    }
    expect(app.state?.progress.slice(0, 3).map((p) => p.status)).toEqual(['accepted', 'accepted', 'accepted']);
    const accepts = b.invocations.filter((c) => c.cmd === 'accept_take').map((c) => c.args.acceptFailed);
    expect(accepts).toEqual([false, false, true]);

    // back to the first prompt and re-record it: the backend answers with a second version
    for (const i of [2, 1, 0]) {
      b.reply('go_to_prompt', { ...app.state!, current_prompt: i });
      await s.prev();
      expect(s.index).toBe(i);
    }
    await recordTake(app, b);
    b.reply('accept_take', fx.accepted(app.state!, 0, 2));
    expect(await s.accept()).toBe('accepted');
    const p1 = app.state!.progress[0]!;
    expect(p1.versions).toBe(2);
    expect(p1.sample_id).toBe('s-p001-v2');

    // the queue drains; nothing raw is left on the machine
    const sealed = fx.queueState(['s-p001-v1', 's-p002-v1', 's-p003-v1', 's-p001-v2'].map((id) => fx.queueItem(id)));
    b.queueState = sealed;
    expect(await app.navigate('queue')).toBe(true);
    await vi.waitFor(() => expect(app.queue.items).toHaveLength(4));
    expect(app.queue.rawOnMachine).toBe(4);
    expect(app.queue.items.every((i) => i.status === 'sealed')).toBe(true);
    b.reply('upload_now', fx.withStatus(sealed, 'uploaded'));
    await app.queue.uploadNow();
    expect(app.queue.items.map((i) => i.status)).toEqual(['uploaded', 'uploaded', 'uploaded', 'uploaded']);
    expect(app.queue.rawOnMachine).toBe(0);
    expect(app.queue.online).toBe(true);
    expect(app.queue.uploading).toBe(false);
    expect(app.queue.state?.last_wipe_at).not.toBeNull();

    // the audit trail as the backend reports it
    b.activityEntries = [fx.activityEntry(3, 'item.uploaded', { sample: 's-p001-v1' }), fx.activityEntry(2, 'consent.given'), fx.activityEntry(1, 'enrollment.joined', { contractor: 'demo-contractor' })];
    await app.navigate('activity');
    expect(b.calls.at(-1)).toBe('activity');
    const events = app.activity.entries.map((e) => e.event);
    expect(events).toEqual(['item.uploaded', 'consent.given', 'enrollment.joined']);
  });

  it('returns to where it was after a restart, and reports lost takes until dismissed', async () => {
    const ctx = setup({ state: fx.enrolled({ lost_takes: 2 }) });
    b = ctx.b;
    await ctx.app.init();
    expect(ctx.app.screen).toBe('session');
    expect(ctx.app.firstRun).toBe(false);
    expect(ctx.app.lostTakes).toBe(2);
    ctx.app.dismissLostTakes();
    expect(ctx.app.lostTakes).toBe(0);
  });

  it('asks for consent when enrolled without it', async () => {
    const ctx = setup({ state: fx.enrolled({ consent_given: false }) });
    b = ctx.b;
    await ctx.app.init();
    expect(ctx.app.screen).toBe('consent');
    // the navigation bar is not available before consent
    expect(await ctx.app.navigate('queue')).toBe(false);
  });

  it('shows each enrollment error kind; an empty field is not sent', async () => {
    const ctx = setup();
    b = ctx.b;
    await ctx.app.init();
    expect(await ctx.app.enroll('   ')).toBe(false);
    expect(ctx.app.enrollError?.kind).toBe('invalid_input');
    expect(b.calls).not.toContain('enroll');
    for (const kind of ['revoked', 'offline', 'bad_code', 'other_project', 'project_refused'] as const) {
      b.fail('enroll', kind, 'detail');
      expect(await ctx.app.enroll('ABCD-EFGH')).toBe(false);
      expect(ctx.app.enrollError?.kind).toBe(kind);
      expect(ctx.app.screen).toBe('enroll');
    }
  });

  it('applies the theme from the state and saves preferences', async () => {
    const ctx = setup({ state: fx.enrolled() });
    b = ctx.b;
    await ctx.app.init();
    expect(document.documentElement.dataset.theme).toBe('system');
    b.reply('save_preferences', fx.enrolled({ theme: 'dark' }));
    await ctx.app.savePreferences('dark', 'en');
    expect(b.invocations.at(-1)?.args).toEqual({ theme: 'dark', language: 'en' });
    expect(ctx.app.state?.theme).toBe('dark');
    expect(document.documentElement.dataset.theme).toBe('dark');
    expect(document.documentElement.lang).toBe('en');
  });
});

describe('joining a project, or trying the demo', () => {
  const PROJECT_START = fx.appState({ mode: 'project', demo_code: null });
  const JOIN = 'voxseal://enroll?broker=https://b.example.com&code=ABCD-EFGH-JKLM';

  it('shows the verified project before the code is used, then joins', async () => {
    const ctx = setup({ state: PROJECT_START });
    b = ctx.b;
    const { app } = ctx;
    await app.init();
    expect(app.screen).toBe('enroll');
    expect(app.state?.mode).toBe('project');
    expect(app.state?.demo_code).toBeNull();

    expect(await app.previewJoin(JOIN)).toBe(true);
    expect(b.invocations.at(-1)).toEqual({ cmd: 'preview_join', args: { code: JOIN, switch: false } });
    expect(app.preview?.project.name).toBe('Demo Voice Project');
    expect(app.preview?.project.consent_text).toMatch(/agree/);
    expect(b.calls).not.toContain('enroll');
    expect(app.state?.enrolled).toBe(false);

    b.reply('enroll', fx.enrolled({ mode: 'project', consent_given: false, mic_checked: false }));
    expect(await app.enroll(JOIN)).toBe(true);
    expect(app.preview).toBeNull();
    expect(app.screen).toBe('consent');
  });

  it('a refused link shows its error and nothing else', async () => {
    const ctx = setup({ state: PROJECT_START });
    b = ctx.b;
    await ctx.app.init();
    b.fail('preview_join', 'project_refused', 'bad signature');
    expect(await ctx.app.previewJoin(JOIN)).toBe(false);
    expect(ctx.app.enrollError?.kind).toBe('project_refused');
    expect(ctx.app.preview).toBeNull();
  });

  it('an enrolled contractor enters a new link from Settings, and can go back', async () => {
    const ctx = await ready({ mode: 'project' });
    b = ctx.b;
    const { app } = ctx;
    expect(app.screen).toBe('session');
    expect(await app.startJoin()).toBe(true);
    expect(app.screen).toBe('enroll');
    expect(app.joining).toBe(true);
    // Escape (or Back) returns without changing anything.
    expect(app.runShortcut('escape')).toBe(true);
    await vi.waitFor(() => expect(app.screen).toBe('session'));
    expect(app.joining).toBe(false);
    expect(b.calls).not.toContain('enroll');

    await app.startJoin();
    const link = 'voxseal://enroll?broker=https://b.example.com&code=ABCD-EFGH-NEW1';
    expect(await app.previewJoin(link)).toBe(true);
    b.reply('enroll', fx.enrolled({ mode: 'project' }));
    expect(await app.enroll(link)).toBe(true);
    expect(app.joining).toBe(false);
    expect(app.screen).toBe('session');
  });

  it('a link handed over while enrolled opens the enroll screen with it, once', async () => {
    const ctx = await ready({ mode: 'project' });
    b = ctx.b;
    const { app } = ctx;
    const link = 'voxseal://enroll?broker=https://b.example.com&code=ABCD-EFGH-NEW2';
    b.emitState({ ...app.state!, enroll_link: link });
    await vi.waitFor(() => expect(app.screen).toBe('enroll'));
    expect(app.joining).toBe(true);
    expect(app.state?.enroll_link).toBe(link);
    await app.cancelJoining();
    expect(app.screen).toBe('session');
    // The same state again (any later state-changed) does not reopen it.
    b.emitState({ ...app.state!, enroll_link: link });
    await tick();
    expect(app.screen).toBe('session');
  });

  it('the demo offers no new link', async () => {
    const ctx = await ready({ mode: 'demo' });
    b = ctx.b;
    expect(await ctx.app.startJoin()).toBe(false);
    expect(ctx.app.screen).toBe('session');
  });

  it('Try a demo switches to the demo and Leave the demo back', async () => {
    const ctx = setup({ state: PROJECT_START });
    b = ctx.b;
    const { app } = ctx;
    await app.init();
    expect(app.state?.demo_available).toBe(true);
    b.reply('start_demo', fx.appState({ mode: 'demo' }));
    await app.startDemo();
    expect(app.state?.mode).toBe('demo');
    expect(app.state?.demo_code).not.toBeNull();
    expect(app.screen).toBe('enroll');
    b.reply('leave_demo', PROJECT_START);
    await app.leaveDemo();
    expect(app.state?.mode).toBe('project');
    expect(app.state?.demo_code).toBeNull();
    expect(app.screen).toBe('enroll');
  });
});
