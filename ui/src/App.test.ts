// The real components, rendered in jsdom against the in-memory backend: what a person (or the
// WebDriver end-to-end test) sees and clicks, by data-testid.
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it } from 'vitest';
import App from './App.svelte';
import { AppController } from './lib/app.svelte';
import { t } from './lib/i18n';
import { ar } from './lib/i18n/ar';
import { en } from './lib/i18n/en';
import { MemoryBackend, type MemoryOptions } from './lib/memoryBackend';
import { FAST } from './test/helpers';

let mem: MemoryBackend | undefined;
afterEach(() => mem?.dispose());

function start(options: MemoryOptions = {}) {
  mem = new MemoryBackend({ ...FAST, ...options });
  const app = new AppController(mem);
  render(App, { props: { app } });
  return { app, mem, user: userEvent.setup() };
}

const byId = (id: string) => screen.getByTestId(id);
const findId = (id: string) => screen.findByTestId(id);

describe('enrollment screen', () => {
  it('shows a clear error for each kind', async () => {
    const { user } = start();
    const input = await findId('enroll-code');
    await user.click(byId('enroll-submit'));
    expect((await findId('enroll-error')).dataset.kind).toBe('invalid_input');
    expect(byId('enroll-error').textContent).toContain(t('enroll.empty'));

    await user.type(input, 'nonsense');
    await user.click(byId('enroll-submit'));
    await waitFor(() => expect(byId('enroll-error').dataset.kind).toBe('bad_code'));
    expect(byId('enroll-error').textContent).toContain(t('error.bad_code'));
    expect(input.getAttribute('aria-invalid')).toBe('true');

    await user.clear(input);
    await user.type(input, 'ABCD-REVOKED');
    await user.click(byId('enroll-submit'));
    await waitFor(() => expect(byId('enroll-error').dataset.kind).toBe('revoked'));
    expect(byId('enroll-error').textContent).toContain(t('error.revoked'));

    await user.clear(input);
    await user.type(input, 'OFFLINE-1234');
    await user.click(byId('enroll-submit'));
    await waitFor(() => expect(byId('enroll-error').dataset.kind).toBe('offline'));
  });

  it('offers the local demo code and enrolls with it', async () => {
    const { user, mem } = start();
    const code = await findId('demo-code');
    expect(code.textContent).toBe('DEMO-7K3Q-X9PB');
    await user.click(byId('use-demo-code'));
    expect(await findId('consent-text')).toBeTruthy();
    expect(mem.calls).toContain('enroll');
    expect(screen.queryByTestId('demo-code')).toBeNull();
  });

  it('shows no demo code outside local mode', async () => {
    start({ demoCode: null });
    await findId('enroll-code');
    expect(screen.queryByTestId('demo-code')).toBeNull();
  });

  it('fills in a link handed over by a second launch, replacing what was typed', async () => {
    const { user, mem } = start();
    const input = (await findId('enroll-code')) as HTMLInputElement;
    await user.type(input, 'half-typed');
    mem.openLink('voxseal://enroll?code=ABCD-EFGH-JKLM');
    await waitFor(() => expect(input.value).toBe('voxseal://enroll?code=ABCD-EFGH-JKLM'));
    mem.openLink('voxseal://enroll?code=WXYZ-EFGH-JKLM');
    await waitFor(() => expect(input.value).toBe('voxseal://enroll?code=WXYZ-EFGH-JKLM'));
  });

  it('says so when the project lead revokes the enrollment', async () => {
    const { mem } = start();
    await findId('enroll-code');
    expect(screen.queryByTestId('revoked-notice')).toBeNull();
    mem.revoke();
    const notice = await findId('revoked-notice');
    expect(notice.textContent).toContain('revoked this enrollment');
  });

  it('does not treat typing in the code field as shortcuts', async () => {
    const { user, mem } = start();
    const input = await findId('enroll-code');
    await user.type(input, 'r p ');
    expect((input as HTMLTextAreaElement).value).toBe('r p ');
    expect(mem.calls).not.toContain('start_take');
  });
});

describe('the whole flow by clicks and keys', () => {
  it('enrolls, consents, checks the mic, records, re-records and submits', async () => {
    const { user, mem } = start();
    await user.type(await findId('enroll-code'), 'voxseal://enroll?code=ABCD-EFGH-JKLM');
    await user.click(byId('enroll-submit'));

    // consent
    expect((await findId('consent-text')).textContent).toMatch(/I agree/);
    await user.click(byId('consent-accept'));

    // mic check
    const select = (await findId('device-select')) as HTMLSelectElement;
    await waitFor(() => expect(select.options.length).toBe(4)); // default + 3 devices
    const peak = byId('meter-peak');
    expect(peak.getAttribute('role')).toBe('meter');
    await waitFor(() => expect(Number(peak.getAttribute('aria-valuenow'))).toBeGreaterThan(-60));
    expect(byId('clip-indicator').dataset.lit).toMatch(/true|false/);
    await user.selectOptions(select, 'USB Headset');
    await waitFor(() => expect(select.value).toBe('USB Headset'));
    await user.click(byId('noise-check'));
    expect((await findId('noise-verdict')).dataset.verdict).toBe('good');
    await user.click(byId('mic-continue'));

    // session: prompt 1 by mouse
    expect((await findId('prompt-progress')).textContent).toContain(t('session.progress', { n: 1, total: 8 }));
    expect(byId('prompt-text').textContent?.trim()).toBe('The quick brown fox jumps over the lazy dog.');
    for (const id of ['nav-session', 'nav-queue', 'nav-activity', 'nav-settings']) expect(byId(id)).toBeTruthy();
    expect(byId('nav-session').getAttribute('aria-current')).toBe('page');
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
    await user.click(byId('accept'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));

    // prompt 2 by keyboard (focus is not on a button after the last action)
    (document.activeElement as HTMLElement | null)?.blur();
    await fireEvent.keyDown(window, { key: ' ' });
    await findId('stop');
    await fireEvent.keyDown(window, { key: ' ' });
    await findId('quality-overall');
    (document.activeElement as HTMLElement | null)?.blur();
    await fireEvent.keyDown(window, { key: 'Enter' });
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('3'));

    // prompt 3 fails its checks: Accept only explains, "Accept anyway" accepts
    await user.click(byId('record'));
    await user.click(await findId('stop'));
    expect((await findId('quality-overall')).dataset.verdict).toBe('fail');
    expect(byId('quality-clipping').dataset.verdict).toBe('fail');
    const acceptsBefore = mem.calls.filter((c) => c === 'accept_take').length;
    await user.click(byId('accept'));
    expect(byId('fail-explain').getAttribute('role')).toBe('alert');
    expect(mem.calls.filter((c) => c === 'accept_take').length).toBe(acceptsBefore);
    expect(byId('prompt-progress').dataset.index).toBe('3');
    await user.click(byId('accept-anyway'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('4'));
    expect(byId('accepted-count').dataset.count).toBe('3');

    // back to prompt 1 with the arrow key; re-record it
    for (let i = 0; i < 3; i++) {
      (document.activeElement as HTMLElement | null)?.blur();
      await fireEvent.keyDown(window, { key: 'ArrowLeft' });
      await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe(String(3 - i)));
    }
    expect(byId('prompt-status').dataset.status).toBe('accepted');
    await user.click(byId('record'));
    await user.click(await findId('stop'));
    await user.click(await findId('rerecord'));
    await user.click(await findId('stop'));
    await user.click(await findId('accept'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));
    await user.click(byId('prev'));
    await waitFor(() => expect(byId('prompt-status').dataset.versions).toBe('2'));

    // queue
    await user.click(byId('nav-queue'));
    expect((await findId('raw-count')).dataset.count).toBe('4');
    expect(byId('queue-item-s-p001-v1').dataset.status).toBe('sealed');
    expect(byId('queue-item-s-p001-v2').dataset.status).toBe('sealed');
    expect(byId('queue-superseded-s-p001-v1')).toBeTruthy();
    expect(screen.queryByTestId('queue-superseded-s-p001-v2')).toBeNull();
    await user.click(byId('upload-now'));
    await waitFor(() => expect(byId('raw-count').dataset.count).toBe('0'));
    for (const id of ['s-p001-v1', 's-p002-v1', 's-p003-v1', 's-p001-v2']) {
      expect(byId(`queue-item-${id}`).dataset.status).toBe('uploaded');
    }
    expect(byId('raw-count').textContent).toContain(t('queue.rawCountNone'));
    expect(byId('last-wipe').dataset.time).not.toBe('');
    expect(byId('queue-overall').getAttribute('aria-valuenow')).toBe('100');
    expect(screen.queryByTestId('offline-badge')).toBeNull();

    // activity
    await user.click(byId('nav-activity'));
    const list = await findId('activity-list');
    expect(within(list).getAllByRole('row').length).toBeGreaterThan(10);
  });
});

describe('notices and states', () => {
  it('shows the lost-takes notice until dismissed', async () => {
    const { user } = start({ enrolled: true, consentGiven: true, lostTakes: 2 });
    const notice = await findId('lost-takes-notice');
    expect(notice.dataset.count).toBe('2');
    expect(notice.textContent).toContain(t('notice.lostTakes', { count: 2 }));
    await user.click(byId('lost-takes-dismiss'));
    expect(screen.queryByTestId('lost-takes-notice')).toBeNull();
  });

  it('shows the offline badge after a failed upload attempt', async () => {
    const { user, mem } = start({ enrolled: true, consentGiven: true, failFirstTakeOf: [] });
    await user.click(await findId('record'));
    await user.click(await findId('stop'));
    await user.click(await findId('accept'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));
    mem.scriptUploads('offline');
    await user.click(byId('nav-queue'));
    expect(screen.queryByTestId('offline-badge')).toBeNull();
    await user.click(await findId('upload-now'));
    expect((await findId('offline-badge')).textContent).toContain(t('queue.offlineBadge'));
    expect(byId('raw-count').dataset.count).toBe('1');
    await user.click(byId('upload-now'));
    await waitFor(() => expect(screen.queryByTestId('offline-badge')).toBeNull());
    expect(byId('raw-count').dataset.count).toBe('0');
  });

  it('offers retry on a failed item', async () => {
    const { user } = start({ enrolled: true, consentGiven: true, failFirstTakeOf: [], uploads: ['failed'] });
    await user.click(await findId('record'));
    await user.click(await findId('stop'));
    await user.click(await findId('accept'));
    await user.click(byId('nav-queue'));
    await user.click(await findId('upload-now'));
    await waitFor(() => expect(byId('queue-item-s-p001-v1').dataset.status).toBe('failed'));
    expect(byId('queue-error-s-p001-v1').textContent).toMatch(/checksum/);
    await user.click(byId('retry-s-p001-v1'));
    await waitFor(() => expect(byId('queue-item-s-p001-v1').dataset.status).toBe('uploaded'));
  });

  it('tells when the microphone is unplugged', async () => {
    const { mem } = start({ enrolled: true, consentGiven: true });
    await findId('record');
    mem.unplug('Built-in Microphone');
    expect((await findId('device-lost-notice')).textContent).toContain(t('device.lost'));
  });

  it('skip dialog: focus in the reason field, Escape closes, flagging works', async () => {
    const { user } = start({ enrolled: true, consentGiven: true });
    await user.click(await findId('skip'));
    const dialog = await findId('flag-dialog');
    expect(dialog.getAttribute('role')).toBe('dialog');
    expect(dialog.getAttribute('aria-modal')).toBe('true');
    expect(document.activeElement).toBe(byId('flag-reason'));
    await user.keyboard('{Escape}');
    expect(screen.queryByTestId('flag-dialog')).toBeNull();

    await user.click(byId('skip'));
    await user.type(await findId('flag-reason'), 'the word "teh" is a typo');
    await user.click(byId('flag-submit'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));
    await user.click(byId('prev'));
    await waitFor(() => expect(byId('prompt-status').dataset.status).toBe('flagged'));
    expect(byId('prompt-status').textContent).toContain('teh');
  });

  it('settings switch the theme', async () => {
    const { user } = start({ enrolled: true, consentGiven: true });
    await user.click(await findId('nav-settings'));
    await user.click(await findId('theme-dark'));
    await waitFor(() => expect(document.documentElement.dataset.theme).toBe('dark'));
    await user.click(byId('theme-light'));
    await waitFor(() => expect(document.documentElement.dataset.theme).toBe('light'));
    expect((byId('language-select') as HTMLSelectElement).value).toBe('en');
    await user.click(byId('open-mic-check'));
    expect(await findId('noise-check')).toBeTruthy();
  });

  it('announces state changes in a polite live region', async () => {
    const { user } = start({ enrolled: true, consentGiven: true });
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
    const { user } = start({ enrolled: true, consentGiven: true, prompts: ARABIC_PROMPTS });
    await user.click(await findId('nav-settings'));
    expect(document.documentElement.dir).not.toBe('rtl');
    await user.selectOptions(byId('language-select'), 'ar');
    await waitFor(() => expect(document.documentElement.dir).toBe('rtl'));
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
    await user.click(byId('accept'));
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));

    // queue and activity
    await user.click(byId('nav-queue'));
    const item = await findId('queue-item-s-p001-v1');
    expect(item.textContent).toContain(`«\u2068${ARABIC_PROMPTS[0]!.text}\u2069»`);
    expect(englishOnPage()).toEqual([]);
    await user.click(byId('nav-activity'));
    const list = await findId('activity-list');
    expect(within(list).getByText('خُتمت العيّنة s-p001-v1 للعبارة p001')).toBeTruthy();
    expect(within(list).getAllByText(ar['activity.spool.wiped'] as string).length).toBeGreaterThan(0);
    expect(englishOnPage()).toEqual([]);
  });

  it('starts right to left when Arabic was saved, and the arrows follow the mirrored layout', async () => {
    const { user } = start({ enrolled: true, consentGiven: true, prompts: ARABIC_PROMPTS, language: 'ar' });
    await findId('prompt-text');
    expect(document.documentElement.dir).toBe('rtl');
    expect(byId('record').textContent).toContain(ar['session.record'] as string);
    await user.keyboard('{ArrowLeft}'); // left is forward when the page reads right to left
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('2'));
    await user.keyboard('{ArrowRight}');
    await waitFor(() => expect(byId('prompt-progress').dataset.index).toBe('1'));
  });
});

describe('updates', () => {
  it('offers a verified update and installs it only when asked', async () => {
    const { user, mem } = start({ update: { version: '0.2.0' } });
    const notice = await findId('update-notice');
    expect(notice.dataset.phase).toBe('offered');
    expect(notice.textContent).toContain('0.2.0');
    await user.click(byId('update-download'));
    await waitFor(() => expect(byId('update-notice').dataset.phase).toBe('verified'));
    expect(mem.calls).not.toContain('install_update');
    await user.click(byId('update-install'));
    await waitFor(() => expect(mem.calls).toContain('install_update'));
  });

  it('says so when an update is refused, and installs nothing', async () => {
    const { user, mem } = start({ update: { version: '0.2.0', refused: true } });
    await user.click(await findId('update-download'));
    const error = await findId('update-error');
    expect(error.dataset.kind).toBe('update_refused');
    expect(error.textContent).toContain(t('error.update_refused'));
    expect(screen.queryByTestId('update-install')).toBeNull();
    expect(mem.calls).not.toContain('install_update');
  });

  it('shows nothing when there is no update', async () => {
    const { mem } = start();
    await findId('enroll-code');
    await waitFor(() => expect(mem.calls).toContain('check_update'));
    expect(screen.queryByTestId('update-notice')).toBeNull();
  });
});
