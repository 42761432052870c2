// The real components, rendered in jsdom against a scripted backend (fixtures for the state and
// each answer): what a person (or the WebDriver end-to-end test) sees and clicks, by data-testid.
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it } from 'vitest';
import App from './App.svelte';
import { AppController } from './lib/app.svelte';
import { t } from './lib/i18n';
import { ar } from './lib/i18n/ar';
import { en } from './lib/i18n/en';
import * as fx from './lib/fixtures';
import { ScriptedBackend } from './lib/scripted';
import type { AppState, QueueState } from './lib/types';

let b: ScriptedBackend | undefined;
afterEach(() => {
  // every scripted answer was asked for
  expect(b?.pending() ?? []).toEqual([]);
  b?.dispose();
});

/** Renders the app on a scripted backend; `script` sets it up before the app starts. */
function start(state: AppState = fx.appState(), queue?: QueueState, script: (b: ScriptedBackend) => void = () => {}) {
  b = new ScriptedBackend({ state, queue });
  script(b);
  const app = new AppController(b);
  render(App, { props: { app } });
  return { app, b, user: userEvent.setup() };
}

const byId = (id: string) => screen.getByTestId(id);
const findId = (id: string) => screen.findByTestId(id);

describe('enrollment screen', () => {
  it('shows a clear error for each kind', async () => {
    const { user, b } = start();
    const input = await findId('enroll-code');
    await user.click(byId('enroll-submit'));
    expect((await findId('enroll-error')).dataset.kind).toBe('invalid_input');
    expect(byId('enroll-error').textContent).toContain(t('enroll.empty'));
    expect(b.calls).not.toContain('enroll');

    await user.type(input, 'nonsense');
    b.fail('enroll', 'bad_code', 'unknown code');
    await user.click(byId('enroll-submit'));
    await waitFor(() => expect(byId('enroll-error').dataset.kind).toBe('bad_code'));
    expect(byId('enroll-error').textContent).toContain(t('error.bad_code'));
    expect(byId('enroll-error').textContent).toContain('unknown code'); // the detail line
    expect(input.getAttribute('aria-invalid')).toBe('true');

    await user.clear(input);
    await user.type(input, 'ABCD-EFGH');
    b.fail('enroll', 'revoked');
    await user.click(byId('enroll-submit'));
    await waitFor(() => expect(byId('enroll-error').dataset.kind).toBe('revoked'));
    expect(byId('enroll-error').textContent).toContain(t('error.revoked'));

    b.fail('enroll', 'offline');
    await user.click(byId('enroll-submit'));
    await waitFor(() => expect(byId('enroll-error').dataset.kind).toBe('offline'));
    expect(b.invocations.at(-1)).toEqual({ cmd: 'enroll', args: { code: 'ABCD-EFGH', switch: false } });
  });

  it('offers the local demo code and enrolls with it', async () => {
    const { user, b } = start();
    const code = await findId('demo-code');
    expect(code.textContent).toBe(fx.DEMO_CODE);
    b.reply('enroll', fx.enrolled({ consent_given: false, mic_checked: false }));
    await user.click(byId('use-demo-code'));
    expect(await findId('consent-text')).toBeTruthy();
    expect(b.invocations.find((i) => i.cmd === 'enroll')?.args).toEqual({ code: fx.DEMO_CODE, switch: false });
    expect(screen.queryByTestId('demo-code')).toBeNull();
  });

  it('shows no demo code outside local mode', async () => {
    start(fx.appState({ mode: 'project', demo_code: null }));
    await findId('enroll-code');
    expect(screen.queryByTestId('demo-code')).toBeNull();
  });

  it('fills in a link handed over by a second launch, replacing what was typed', async () => {
    const { user, b } = start();
    const input = (await findId('enroll-code')) as HTMLInputElement;
    await user.type(input, 'half-typed');
    b.emitState(fx.appState({ enroll_link: 'voxseal://enroll?code=ABCD-EFGH-JKLM' }));
    await waitFor(() => expect(input.value).toBe('voxseal://enroll?code=ABCD-EFGH-JKLM'));
    b.emitState(fx.appState({ enroll_link: 'voxseal://enroll?code=WXYZ-EFGH-JKLM' }));
    await waitFor(() => expect(input.value).toBe('voxseal://enroll?code=WXYZ-EFGH-JKLM'));
  });

  it('says so when the project lead revokes the enrollment', async () => {
    const { b } = start(fx.appState({ mode: 'project', demo_code: null }));
    await findId('enroll-code');
    expect(screen.queryByTestId('revoked-notice')).toBeNull();
    b.emitQueue(fx.queueState([fx.queueItem('s-p001-v1')], { revoked: true }));
    const notice = await findId('revoked-notice');
    expect(notice.textContent).toContain('revoked this enrollment');
  });

  it('does not treat typing in the code field as shortcuts', async () => {
    const { user, b } = start();
    const input = await findId('enroll-code');
    await user.type(input, 'r p ');
    expect((input as HTMLTextAreaElement).value).toBe('r p ');
    expect(b.calls).not.toContain('start_take');
  });
});

/** The take the next stop_take answers, for the prompt shown. */
function nextTake(b: ScriptedBackend, app: AppController, quality: Parameters<typeof fx.quality>[0] = 'pass') {
  b.review = fx.takeReview({ prompt_id: app.session.prompt?.id ?? 'p001', take_id: `t-${b.calls.length}`, quality: fx.quality(quality) });
}

/** What the activity screen is given to show (newest first). */
function activityLog(): ReturnType<typeof fx.activityEntry>[] {
  const events: [string, Record<string, string | number | boolean>][] = [
    ['enrollment.joined', { contractor: 'demo-contractor' }],
    ['consent.given', {}],
    ['mic.checked', { verdict: 'good' }],
    ['take.recorded', { prompt: 'p001', duration_s: 2.5, interrupted: false }],
    ['take.sealed', { sample: 's-p001-v1', prompt: 'p001' }],
    ['spool.wiped', {}],
    ['take.sealed', { sample: 's-p002-v1', prompt: 'p002' }],
    ['take.discarded', { why: 'rerecorded' }],
    ['item.uploaded', { sample: 's-p001-v1' }],
    ['upload.resumed', { sample: 's-p002-v1', attempt: 2 }],
    ['item.uploaded', { sample: 's-p002-v1' }],
  ];
  return events.map(([event, params], i) => fx.activityEntry(i + 1, event, params)).reverse();
}

describe('the whole flow by clicks and keys', () => {
  it('enrolls, consents, checks the mic, records, re-records and submits', async () => {
    const { user, b, app } = start();
    await user.type(await findId('enroll-code'), 'voxseal://enroll?code=ABCD-EFGH-JKLM');
    b.reply('enroll', fx.enrolled({ consent_given: false, mic_checked: false }));
    await user.click(byId('enroll-submit'));

    // consent
    expect((await findId('consent-text')).textContent).toMatch(/I agree/);
    b.reply('give_consent', fx.enrolled({ mic_checked: false }));
    await user.click(byId('consent-accept'));

    // mic check
    const select = (await findId('device-select')) as HTMLSelectElement;
    await waitFor(() => expect(select.options.length).toBe(4)); // default + 3 devices
    const peak = byId('meter-peak');
    expect(peak.getAttribute('role')).toBe('meter');
    b.level(fx.level({ peak_dbfs: -9, clipped: true }));
    await waitFor(() => expect(Number(peak.getAttribute('aria-valuenow'))).toBe(-9));
    expect(byId('clip-indicator').dataset.lit).toBe('true');
    b.reply('select_device', fx.enrolled({ mic_checked: false, device: 'USB Headset' }));
    await user.selectOptions(select, 'USB Headset');
    await waitFor(() => expect(select.value).toBe('USB Headset'));
    await user.click(byId('noise-check'));
    expect((await findId('noise-verdict')).dataset.verdict).toBe('good');
    await user.click(byId('mic-continue'));

    // session: prompt 1 by mouse
    expect((await findId('prompt-progress')).textContent).toContain(t('session.progress', { n: 1, total: 4 }));
    expect(byId('prompt-text').textContent?.trim()).toBe('The quick brown fox jumps over the lazy dog.');
    for (const id of ['nav-session', 'nav-queue', 'nav-activity', 'nav-settings']) expect(byId(id)).toBeTruthy();
    expect(byId('nav-session').getAttribute('aria-current')).toBe('page');
    nextTake(b, app);
    await user.click(byId('record'));
    await findId('stop');
    await findId('recording-indicator');
    await user.click(byId('stop'));
    expect((await findId('quality-overall')).dataset.verdict).toBe('pass');
    expect(byId('waveform').dataset.points).toBe('400');
    expect(byId('take-duration').dataset.seconds).toBe('2.5');
    expect(within(byId('quality-list')).getAllByRole('listitem').length).toBeGreaterThan(3);
    await user.click(byId('play'));
    await waitFor(() => expect(byId('play').dataset.playing).toBe('true'));
    b.reply('accept_take', fx.accepted(app.state!, 0));
    await user.click(byId('accept'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));

    // prompt 2 by keyboard (focus is not on a button after the last action)
    nextTake(b, app);
    (document.activeElement as HTMLElement | null)?.blur();
    await fireEvent.keyDown(window, { key: ' ' });
    await findId('stop');
    await fireEvent.keyDown(window, { key: ' ' });
    await findId('quality-overall');
    (document.activeElement as HTMLElement | null)?.blur();
    b.reply('accept_take', fx.accepted(app.state!, 1));
    await fireEvent.keyDown(window, { key: 'Enter' });
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('3'));

    // prompt 3 fails its checks: Accept only explains, "Accept anyway" accepts
    nextTake(b, app, 'clipped');
    await user.click(byId('record'));
    await user.click(await findId('stop'));
    expect((await findId('quality-overall')).dataset.verdict).toBe('fail');
    expect(byId('quality-clipping').dataset.verdict).toBe('fail');
    await user.click(byId('accept'));
    expect(byId('fail-explain').getAttribute('role')).toBe('alert');
    expect(b.calls.filter((c) => c === 'accept_take')).toHaveLength(2);
    expect(byId('prompt-progress').dataset.index).toBe('3');
    b.reply('accept_take', fx.accepted(app.state!, 2));
    await user.click(byId('accept-anyway'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('4'));
    expect(b.invocations.at(-2)).toEqual({ cmd: 'accept_take', args: { acceptFailed: true } });
    expect(byId('accepted-count').dataset.count).toBe('3');

    // back to prompt 1 with the arrow key; re-record it
    for (let i = 0; i < 3; i++) {
      (document.activeElement as HTMLElement | null)?.blur();
      b.reply('go_to_prompt', { ...app.state!, current_prompt: 2 - i });
      await fireEvent.keyDown(window, { key: 'ArrowLeft' });
      await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe(String(3 - i)));
    }
    expect(byId('prompt-status').dataset.status).toBe('accepted');
    nextTake(b, app);
    await user.click(byId('record'));
    await user.click(await findId('stop'));
    await user.click(await findId('rerecord'));
    await user.click(await findId('stop'));
    b.reply('accept_take', fx.accepted(app.state!, 0, 2));
    await user.click(await findId('accept'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));
    b.reply('go_to_prompt', { ...app.state!, current_prompt: 0 });
    await user.click(byId('prev'));
    await waitFor(() => expect(byId('prompt-status').dataset.versions).toBe('2'));

    // queue
    const sealed = fx.queueState(['s-p001-v1', 's-p002-v1', 's-p003-v1', 's-p001-v2'].map((id) => fx.queueItem(id)));
    b.queueState = sealed;
    await user.click(byId('nav-queue'));
    await waitFor(() => expect(byId('raw-count').dataset.count).toBe('4'));
    expect(byId('queue-item-s-p001-v1').dataset.status).toBe('sealed');
    expect(byId('queue-item-s-p001-v2').dataset.status).toBe('sealed');
    expect(byId('queue-superseded-s-p001-v1')).toBeTruthy();
    expect(screen.queryByTestId('queue-superseded-s-p001-v2')).toBeNull();
    b.reply('upload_now', fx.withStatus(sealed, 'uploaded'));
    await user.click(byId('upload-now'));
    await waitFor(() => expect(byId('raw-count').dataset.count).toBe('0'));
    for (const id of ['s-p001-v1', 's-p002-v1', 's-p003-v1', 's-p001-v2']) {
      expect(byId(`queue-item-${id}`).dataset.status).toBe('uploaded');
    }
    expect(byId('raw-count').textContent).toContain(t('queue.rawCountNone'));
    expect(byId('last-wipe').dataset.time).toBe(sealed.last_wipe_at);
    expect(byId('queue-overall').getAttribute('aria-valuenow')).toBe('100');
    expect(screen.queryByTestId('offline-badge')).toBeNull();

    // activity
    b.activityEntries = activityLog();
    await user.click(byId('nav-activity'));
    const list = await findId('activity-list');
    expect(within(list).getAllByRole('row').length).toBeGreaterThan(10);
  });
});

describe('notices and states', () => {
  const ONE_SEALED = fx.queueState([fx.queueItem('s-p001-v1')]);

  it('shows the lost-takes notice until dismissed', async () => {
    const { user } = start(fx.enrolled({ lost_takes: 2 }));
    const notice = await findId('lost-takes-notice');
    expect(notice.dataset.count).toBe('2');
    expect(notice.textContent).toContain(t('notice.lostTakes', { count: 2 }));
    await user.click(byId('lost-takes-dismiss'));
    expect(screen.queryByTestId('lost-takes-notice')).toBeNull();
  });

  it('shows the offline badge after a failed upload attempt', async () => {
    const { user, b } = start(fx.enrolled(), ONE_SEALED);
    await user.click(await findId('nav-queue'));
    expect((await findId('raw-count')).dataset.count).toBe('1');
    expect(screen.queryByTestId('offline-badge')).toBeNull();
    b.reply('upload_now', fx.withStatus(ONE_SEALED, 'failed', { online: false }));
    await user.click(await findId('upload-now'));
    expect((await findId('offline-badge')).textContent).toContain(t('queue.offlineBadge'));
    expect(byId('raw-count').dataset.count).toBe('1');
    b.reply('upload_now', fx.withStatus(ONE_SEALED, 'uploaded'));
    await user.click(byId('upload-now'));
    await waitFor(() => expect(screen.queryByTestId('offline-badge')).toBeNull());
    expect(byId('raw-count').dataset.count).toBe('0');
  });

  it('says when an upload waits for the network, and the time left while it moves', async () => {
    const { user, b } = start(fx.enrolled(), ONE_SEALED);
    await user.click(await findId('nav-queue'));
    const total = ONE_SEALED.items[0]!.bytes_total;
    const item = { sample_id: 's-p001-v1', items_total: 1, bytes_total: total, item_bytes_total: total };
    let step = (_p: Parameters<typeof fx.progress>[0]) => {};
    let finish = () => {};
    b.handle('upload_now', async ({ onProgress }) => {
      step = (p) => onProgress(fx.progress({ ...item, ...p }));
      await new Promise<void>((r) => (finish = r));
      return fx.withStatus(ONE_SEALED, 'uploaded');
    });
    const started = Date.now();
    await user.click(byId('upload-now'));
    await waitFor(() => expect(b.calls).toContain('upload_now'));
    // A quarter acknowledged in 40 s (the clock moved on): about two minutes left.
    const now = Date.now;
    Date.now = () => started + 40_000;
    try {
      step({ bytes_done: total / 4, item_bytes_done: total / 4 });
      expect((await findId('queue-eta')).textContent).toBe(t('queue.etaMinutes', { count: 2 }));
      expect(screen.queryByTestId('waiting-for-network')).toBeNull();
      // The link goes away: the notice, and no guess at the time left.
      step({ bytes_done: total / 4, item_bytes_done: total / 4, waiting_for_network: true });
      expect((await findId('waiting-for-network')).textContent).toBe(t('queue.waitingForNetwork'));
      expect(screen.queryByTestId('queue-eta')).toBeNull();
      expect(screen.queryByTestId('offline-notice')).toBeNull();
      step({ bytes_done: total / 2, item_bytes_done: total / 2 });
      await waitFor(() => expect(screen.queryByTestId('waiting-for-network')).toBeNull());
    } finally {
      Date.now = now;
    }
    finish();
    await waitFor(() => expect(byId('raw-count').dataset.count).toBe('0'));
  });

  it('says so when the background upload waits for the network', async () => {
    const { user, b } = start(fx.enrolled(), ONE_SEALED);
    await user.click(await findId('nav-queue'));
    b.emitQueue(fx.queueState(ONE_SEALED.items, { uploading: true, waiting_for_network: true }));
    expect((await findId('waiting-for-network')).textContent).toBe(t('queue.waitingForNetwork'));
    b.emitQueue(fx.queueState(ONE_SEALED.items, { uploading: true }));
    await waitFor(() => expect(screen.queryByTestId('waiting-for-network')).toBeNull());
  });

  it('says the time left of a background upload from the bytes acknowledged since it was seen', async () => {
    const { user, b } = start(fx.enrolled(), ONE_SEALED);
    await user.click(await findId('nav-queue'));
    const total = ONE_SEALED.items[0]!.bytes_total;
    const at = (done: number, extra: { waiting_for_network?: boolean } = {}) =>
      fx.queueState([fx.queueItem('s-p001-v1', { status: 'uploading', bytes_done: done })], { uploading: true, ...extra });
    const now = Date.now;
    const started = now();
    try {
      Date.now = () => started;
      b.emitQueue(at(total / 8)); // first seen an eighth in: the rate counts from here
      await findId('queue-overall');
      expect(screen.queryByTestId('queue-eta')).toBeNull();
      // Another quarter acknowledged in 40 s: five eighths left, about 100 s.
      Date.now = () => started + 40_000;
      b.emitQueue(at((3 * total) / 8));
      expect((await findId('queue-eta')).textContent).toBe(t('queue.etaMinutes', { count: 2 }));
      b.emitQueue(at((3 * total) / 8, { waiting_for_network: true }));
      await findId('waiting-for-network');
      expect(screen.queryByTestId('queue-eta')).toBeNull();
    } finally {
      Date.now = now;
    }
    b.emitQueue(fx.withStatus(ONE_SEALED, 'uploaded'));
    await waitFor(() => expect(screen.queryByTestId('queue-eta')).toBeNull());
  });

  it('offers retry on a failed item', async () => {
    const { user, b } = start(fx.enrolled(), ONE_SEALED);
    await user.click(await findId('nav-queue'));
    const failed = fx.queueItem('s-p001-v1', { status: 'failed', last_error: 'the storage service reported a checksum mismatch' });
    b.reply('upload_now', fx.queueState([failed]));
    await user.click(await findId('upload-now'));
    await waitFor(() => expect(byId('queue-item-s-p001-v1').dataset.status).toBe('failed'));
    expect(byId('queue-error-s-p001-v1').textContent).toMatch(/checksum/);
    b.reply('retry_item', fx.queueState([{ ...failed, status: 'sealed', last_error: null }], { uploading: true }));
    await user.click(byId('retry-s-p001-v1'));
    await waitFor(() => expect(b!.calls).toContain('retry_item'));
    expect(b.invocations.find((i) => i.cmd === 'retry_item')?.args).toEqual({ sampleId: 's-p001-v1' });
    b.emitQueue(fx.withStatus(ONE_SEALED, 'uploaded'));
    await waitFor(() => expect(byId('queue-item-s-p001-v1').dataset.status).toBe('uploaded'));
    expect(screen.queryByTestId('retry-s-p001-v1')).toBeNull();
  });

  it('tells when the microphone is unplugged', async () => {
    const { b } = start(fx.enrolled());
    await findId('record');
    b.emitDeviceLost('The microphone "Built-in Microphone" was disconnected.');
    expect((await findId('device-lost-notice')).textContent).toContain(t('device.lost'));
  });

  it('skip dialog: focus in the reason field, Escape closes, flagging works', async () => {
    const { user, b, app } = start(fx.enrolled());
    await user.click(await findId('skip'));
    const dialog = await findId('flag-dialog');
    expect(dialog.getAttribute('role')).toBe('dialog');
    expect(dialog.getAttribute('aria-modal')).toBe('true');
    expect(document.activeElement).toBe(byId('flag-reason'));
    await user.keyboard('{Escape}');
    expect(screen.queryByTestId('flag-dialog')).toBeNull();
    expect(b.calls).not.toContain('skip_prompt');

    await user.click(byId('skip'));
    await user.type(await findId('flag-reason'), 'the word "teh" is a typo');
    b.reply('skip_prompt', fx.withProgress(app.state!, 0, { status: 'flagged', flag_reason: 'the word "teh" is a typo' }, 1));
    await user.click(byId('flag-submit'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));
    expect(b.invocations.at(-1)?.args).toEqual({ promptId: 'p001', flagReason: 'the word "teh" is a typo' });
    b.reply('go_to_prompt', { ...app.state!, current_prompt: 0 });
    await user.click(byId('prev'));
    await waitFor(() => expect(byId('prompt-status').dataset.status).toBe('flagged'));
    expect(byId('prompt-status').textContent).toContain('teh');
  });

  it('settings switch the theme', async () => {
    const { user, b } = start(fx.enrolled());
    await user.click(await findId('nav-settings'));
    b.reply('save_preferences', fx.enrolled({ theme: 'dark' }));
    await user.click(await findId('theme-dark'));
    await waitFor(() => expect(document.documentElement.dataset.theme).toBe('dark'));
    expect(b.invocations.at(-1)?.args).toEqual({ theme: 'dark', language: 'en' });
    b.reply('save_preferences', fx.enrolled({ theme: 'light' }));
    await user.click(byId('theme-light'));
    await waitFor(() => expect(document.documentElement.dataset.theme).toBe('light'));
    expect((byId('language-select') as HTMLSelectElement).value).toBe('en');
    await user.click(byId('open-mic-check'));
    expect(await findId('noise-check')).toBeTruthy();
  });

  it('announces state changes in a polite live region', async () => {
    const { user } = start(fx.enrolled());
    const status = await findId('status');
    expect(status.getAttribute('aria-live')).toBe('polite');
    await user.click(await findId('record'));
    await waitFor(() => expect(status.textContent).toBe(t('session.recording')));
    await user.click(await findId('stop'));
  });
});

describe('in Arabic, right to left', () => {
  const ARABIC_PROMPTS = [
    { id: 'p001', text: 'ذهب الولد إلى المدرسة صباحًا.', note: 'اقرأ ببطء.' },
    { id: 'p002', text: 'The quick brown fox jumps over the lazy dog.', note: null },
  ];

  /** English sentences of the dictionary (placeholders cut out) found in the page's text. */
  function englishOnPage(): string[] {
    const page = document.body.textContent ?? '';
    const found: string[] = [];
    for (const value of Object.values(en)) {
      for (const form of typeof value === 'string' ? [value] : Object.values(value)) {
        for (const piece of form.split(/\{\w+\}/)) {
          if (piece.trim().length >= 8 && /[a-z]{3}/.test(piece) && page.includes(piece.trim())) found.push(piece.trim());
        }
      }
    }
    return found;
  }

  it('switches from Settings: the document turns right to left and every screen speaks Arabic', async () => {
    const { user, b, app } = start(fx.enrolled({ prompts: ARABIC_PROMPTS }));
    await user.click(await findId('nav-settings'));
    expect(document.documentElement.dir).not.toBe('rtl');
    b.reply('save_preferences', fx.enrolled({ prompts: ARABIC_PROMPTS, language: 'ar' }));
    await user.selectOptions(byId('language-select'), 'ar');
    await waitFor(() => expect(document.documentElement.dir).toBe('rtl'));
    expect(b.invocations.at(-1)?.args).toEqual({ theme: 'system', language: 'ar' });
    expect(document.documentElement.lang).toBe('ar');
    // the screen already shown re-renders in Arabic, without a reload
    expect(byId('nav-settings').textContent).toContain(ar['nav.settings'] as string);
    expect((byId('language-select') as HTMLSelectElement).value).toBe('ar');

    // record the Arabic prompt: it keeps its own direction
    await user.click(byId('nav-session'));
    const prompt = await findId('prompt-text');
    expect(prompt.getAttribute('dir')).toBe('auto');
    expect(prompt.textContent?.trim()).toBe(ARABIC_PROMPTS[0]!.text);
    expect(byId('prompt-progress').textContent).toContain('العبارة 1 من 2');
    await user.click(byId('record'));
    await user.click(await findId('stop'));
    await findId('quality-overall');
    expect(byId('quality-duration').textContent).toContain(ar['check.duration'] as string);
    expect(byId('quality-speech').textContent).toMatch(/رُصد .* ث من الكلام/);
    expect(englishOnPage()).toEqual([]);
    b.reply('accept_take', fx.accepted(app.state!, 0));
    await user.click(byId('accept'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));

    // queue and activity
    b.queueState = fx.queueState([fx.queueItem('s-p001-v1')]);
    await user.click(byId('nav-queue'));
    const item = await findId('queue-item-s-p001-v1');
    expect(item.textContent).toContain(`«\u2068${ARABIC_PROMPTS[0]!.text}\u2069»`);
    expect(englishOnPage()).toEqual([]);
    b.activityEntries = [fx.activityEntry(2, 'spool.wiped'), fx.activityEntry(1, 'take.sealed', { sample: 's-p001-v1', prompt: 'p001' })];
    await user.click(byId('nav-activity'));
    const list = await findId('activity-list');
    expect(within(list).getByText('خُتمت العيّنة s-p001-v1 للعبارة p001')).toBeTruthy();
    expect(within(list).getAllByText(ar['activity.spool.wiped'] as string).length).toBeGreaterThan(0);
    expect(englishOnPage()).toEqual([]);
  });

  it('starts right to left when Arabic was saved, and the arrows follow the mirrored layout', async () => {
    const { user, b, app } = start(fx.enrolled({ prompts: ARABIC_PROMPTS, language: 'ar' }));
    await findId('prompt-text');
    expect(document.documentElement.dir).toBe('rtl');
    expect(byId('record').textContent).toContain(ar['session.record'] as string);
    b.reply('go_to_prompt', { ...app.state!, current_prompt: 1 });
    await user.keyboard('{ArrowLeft}'); // left is forward when the page reads right to left
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));
    expect(b.invocations.at(-1)?.args).toEqual({ index: 1 });
    b.reply('go_to_prompt', { ...app.state!, current_prompt: 0 });
    await user.keyboard('{ArrowRight}');
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('1'));
  });
});

describe('updates', () => {
  const OFFER = { version: '0.2.0', current_version: '0.1.0', notes: null };

  it('offers a verified update and installs it only when asked', async () => {
    const { user, b } = start(fx.appState(), undefined, (b) => {
      b.update = OFFER;
      b.handle('download_update', ({ onProgress }) => {
        onProgress({ done: 1024, total: 2048 });
        onProgress({ done: 2048, total: 2048 });
        return OFFER;
      });
    });
    const notice = await findId('update-notice');
    expect(notice.dataset.phase).toBe('offered');
    expect(notice.textContent).toContain('0.2.0');
    await user.click(byId('update-download'));
    await waitFor(() => expect(byId('update-notice').dataset.phase).toBe('verified'));
    expect(b.calls).not.toContain('install_update');
    await user.click(byId('update-install'));
    await waitFor(() => expect(b.calls).toContain('install_update'));
  });

  it('says so when an update is refused, and installs nothing', async () => {
    const { user, b } = start(fx.appState(), undefined, (b) => {
      b.update = OFFER;
      b.fail('download_update', 'update_refused', 'not signed with the update key');
    });
    await user.click(await findId('update-download'));
    const error = await findId('update-error');
    expect(error.dataset.kind).toBe('update_refused');
    expect(error.textContent).toContain(t('error.update_refused'));
    expect(screen.queryByTestId('update-install')).toBeNull();
    expect(b.calls).not.toContain('install_update');
  });

  it('shows nothing when there is no update', async () => {
    const { b } = start();
    await findId('enroll-code');
    await waitFor(() => expect(b.calls).toContain('check_update'));
    expect(screen.queryByTestId('update-notice')).toBeNull();
  });
});
