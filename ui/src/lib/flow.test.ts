// The whole contractor flow through the controllers, against the in-memory backend:
// enroll -> consent -> mic check -> record 3 prompts -> re-record one -> upload -> 0 raw left.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ready, recordTake, setup, tick } from '../test/helpers';
import type { MemoryBackend } from './memoryBackend';

let mem: MemoryBackend | undefined;
afterEach(() => mem?.dispose());

describe('first run to submission', () => {
  it('goes from enrollment to an empty machine', async () => {
    const ctx = setup();
    mem = ctx.mem;
    const { app } = ctx;
    await app.init();
    expect(app.screen).toBe('enroll');
    expect(app.firstRun).toBe(true);

    // a wrong code: an error with its kind, still on the enroll screen
    expect(await app.enroll('not a code')).toBe(false);
    expect(app.enrollError?.kind).toBe('bad_code');
    expect(app.screen).toBe('enroll');

    // a link works as well as a code
    expect(await app.enroll('voxseal://enroll?code=ABCD-EFGH-JKLM&project=demo')).toBe(true);
    expect(app.enrollError).toBeNull();
    expect(app.screen).toBe('consent');
    expect(app.state?.project?.consent_text).toMatch(/agree/);

    await app.giveConsent();
    expect(app.state?.consent_given).toBe(true);
    expect(mem.calls).toContain('give_consent');
    expect(app.screen).toBe('mic');

    // mic check: devices listed, meter running, choice remembered, noise verdict
    expect(app.mic.devices.length).toBeGreaterThan(1);
    await vi.waitFor(() => expect(app.mic.level).not.toBeNull());
    await app.mic.select('USB Headset');
    expect(app.state?.device).toBe('USB Headset');
    expect(app.mic.metering).toBe(true);
    await app.mic.checkNoise();
    expect(app.mic.noise?.verdict).toBe('good');
    expect(app.mic.metering).toBe(true); // back on after the measurement
    await app.finishMicCheck();
    expect(app.screen).toBe('session');
    expect(app.mic.metering).toBe(false);
    expect(mem.calls.at(-1)).toBe('stop_meter');

    // three prompts; the third one's first take fails its checks (memory backend default)
    const s = app.session;
    for (let i = 0; i < 3; i++) {
      expect(s.index).toBe(i);
      await recordTake(app);
      expect(s.phase).toBe('review');
      expect(s.review?.waveform.length).toBe(400);
      expect(s.review?.duration_s).toBe(2.5);
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
    expect(mem.manifests.map((m) => m.accepted_failed)).toEqual([false, false, true]);

    // back to the first prompt and re-record it: a second version superseding the first
    await s.prev();
    await s.prev();
    await s.prev();
    expect(s.index).toBe(0);
    await recordTake(app);
    expect(await s.accept()).toBe('accepted');
    const p1 = app.state!.progress[0]!;
    expect(p1.versions).toBe(2);
    expect(p1.sample_id).toBe('s-p001-v2');
    expect(mem.manifests.at(-1)).toMatchObject({ sample_id: 's-p001-v2', supersedes: 's-p001-v1', version: 2 });

    // the queue drains; nothing raw is left on the machine
    expect(await app.navigate('queue')).toBe(true);
    expect(app.queue.items).toHaveLength(4);
    expect(app.queue.rawOnMachine).toBe(4);
    expect(app.queue.items.every((i) => i.status === 'sealed')).toBe(true);
    await app.queue.uploadNow();
    expect(app.queue.items.map((i) => i.status)).toEqual(['uploaded', 'uploaded', 'uploaded', 'uploaded']);
    expect(app.queue.rawOnMachine).toBe(0);
    expect(app.queue.online).toBe(true);
    expect(app.queue.uploading).toBe(false);
    expect(app.queue.state?.last_wipe_at).not.toBeNull();

    // the audit trail tells the story
    await app.navigate('activity');
    const events = app.activity.entries.map((e) => e.event);
    expect(events).toContain('consent.given');
    expect(events).toContain('item.uploaded');
    expect(app.activity.entries[0]!.seq).toBeGreaterThan(app.activity.entries.at(-1)!.seq); // newest first
  });

  it('returns to where it was after a restart, and reports lost takes once', async () => {
    const ctx = setup({ enrolled: true, consentGiven: true, lostTakes: 2 });
    mem = ctx.mem;
    await ctx.app.init();
    expect(ctx.app.screen).toBe('session');
    expect(ctx.app.firstRun).toBe(false);
    expect(ctx.app.lostTakes).toBe(2);
    ctx.app.dismissLostTakes();
    expect(ctx.app.lostTakes).toBe(0);
    // reported once: a second start-up does not repeat it
    const again = (await ctx.mem.appState()).lost_takes;
    expect(again).toBe(0);
  });

  it('asks for consent when enrolled without it', async () => {
    const ctx = setup({ enrolled: true, consentGiven: false });
    mem = ctx.mem;
    await ctx.app.init();
    expect(ctx.app.screen).toBe('consent');
    // the navigation bar is not available before consent
    expect(await ctx.app.navigate('queue')).toBe(false);
  });

  it('shows each enrollment error kind', async () => {
    const ctx = setup();
    mem = ctx.mem;
    await ctx.app.init();
    const cases: [string, string][] = [
      ['', 'invalid_input'],
      ['ABCD-REVOKED1', 'revoked'],
      ['OFFLINE-ABCD', 'offline'],
      ['https://example.com/enroll?code=ABCD-EFGH', 'bad_code'],
      ['xyz', 'bad_code'],
    ];
    for (const [code, kind] of cases) {
      expect(await ctx.app.enroll(code)).toBe(false);
      expect(ctx.app.enrollError?.kind).toBe(kind);
    }
  });

  it('applies the theme from the state and saves preferences', async () => {
    const ctx = setup({ enrolled: true, consentGiven: true });
    mem = ctx.mem;
    await ctx.app.init();
    expect(document.documentElement.dataset.theme).toBe('system');
    await ctx.app.savePreferences('dark', 'en');
    expect(ctx.app.state?.theme).toBe('dark');
    expect(document.documentElement.dataset.theme).toBe('dark');
    expect(document.documentElement.lang).toBe('en');
  });
});

describe('joining a project, or trying the demo', () => {
  it('shows the verified project before the code is used, then joins', async () => {
    const ctx = setup({ mode: 'project', demoCode: null });
    mem = ctx.mem;
    const { app } = ctx;
    await app.init();
    expect(app.screen).toBe('enroll');
    expect(app.state?.mode).toBe('project');
    expect(app.state?.demo_code).toBeNull();

    expect(await app.previewJoin('voxseal://enroll?broker=https://b.example.com&code=ABCD-EFGH-JKLM')).toBe(true);
    expect(app.preview?.project.name).toBe('Demo Voice Project');
    expect(app.preview?.project.consent_text).toMatch(/agree/);
    expect(mem.calls).toContain('preview_join');
    expect(mem.calls).not.toContain('enroll');
    expect(app.state?.enrolled).toBe(false);

    expect(await app.enroll('voxseal://enroll?broker=https://b.example.com&code=ABCD-EFGH-JKLM')).toBe(true);
    expect(app.preview).toBeNull();
    expect(app.screen).toBe('consent');
  });

  it('a refused link shows its error and nothing else', async () => {
    const ctx = setup({ mode: 'project' });
    mem = ctx.mem;
    await ctx.app.init();
    expect(await ctx.app.previewJoin('not a code')).toBe(false);
    expect(ctx.app.enrollError?.kind).toBe('bad_code');
    expect(ctx.app.preview).toBeNull();
  });

  it('an enrolled contractor enters a new link from Settings, and can go back', async () => {
    const ctx = await ready({ mode: 'project', demoCode: null });
    mem = ctx.mem;
    const { app } = ctx;
    expect(app.screen).toBe('session');
    expect(await app.startJoin()).toBe(true);
    expect(app.screen).toBe('enroll');
    expect(app.joining).toBe(true);
    // Escape (or Back) returns without changing anything.
    expect(app.runShortcut('escape')).toBe(true);
    await vi.waitFor(() => expect(app.screen).toBe('session'));
    expect(app.joining).toBe(false);
    expect(mem.calls).not.toContain('enroll');

    await app.startJoin();
    const link = 'voxseal://enroll?broker=https://b.example.com&code=ABCD-EFGH-NEW1';
    expect(await app.previewJoin(link)).toBe(true);
    expect(await app.enroll(link)).toBe(true);
    expect(app.joining).toBe(false);
    expect(app.screen).toBe('session');
  });

  it('a link handed over while enrolled opens the enroll screen with it, once', async () => {
    const ctx = await ready({ mode: 'project', demoCode: null });
    mem = ctx.mem;
    const { app } = ctx;
    const link = 'voxseal://enroll?broker=https://b.example.com&code=ABCD-EFGH-NEW2';
    mem.openLink(link);
    await vi.waitFor(() => expect(app.screen).toBe('enroll'));
    expect(app.joining).toBe(true);
    expect(app.state?.enroll_link).toBe(link);
    await app.cancelJoining();
    expect(app.screen).toBe('session');
    // The same state again (any later state-changed) does not reopen it.
    mem.openLink(link);
    await tick();
    expect(app.screen).toBe('session');
  });

  it('the demo offers no new link', async () => {
    const ctx = await ready({ mode: 'demo' });
    mem = ctx.mem;
    expect(await ctx.app.startJoin()).toBe(false);
    expect(ctx.app.screen).toBe('session');
  });

  it('Try a demo switches to the demo and Leave the demo back', async () => {
    const ctx = setup({ mode: 'project' });
    mem = ctx.mem;
    const { app } = ctx;
    await app.init();
    expect(app.state?.demo_available).toBe(true);
    await app.startDemo();
    expect(app.state?.mode).toBe('demo');
    expect(app.state?.demo_code).not.toBeNull();
    expect(app.screen).toBe('enroll');
    await app.leaveDemo();
    expect(app.state?.mode).toBe('project');
    expect(app.state?.demo_code).toBeNull();
  });
});
