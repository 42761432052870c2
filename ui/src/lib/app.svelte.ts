// The application controller: holds the AppState from the backend, decides which screen shows,
// owns the screen controllers, and routes keyboard shortcuts. Components only read its fields and
// call its methods, so the whole flow is testable against a scripted backend.
import type { Backend } from './backend';
import { normalizeError } from './errors';
import { direction, t, setLanguage } from './i18n';
import { shortcutFor, type KeyLike, type ShortcutAction } from './keyboard';
import { applyTheme } from './theme';
import type { AppError, AppState, JoinPreview, Theme, Unsubscribe } from './types';
import { ActivityController } from './activity.svelte';
import { MicController } from './mic.svelte';
import { QueueController } from './queue.svelte';
import { SessionController } from './session.svelte';
import { UpdateController } from './update.svelte';

export type Screen = 'loading' | 'enroll' | 'consent' | 'mic' | 'session' | 'queue' | 'activity' | 'settings';
/** Screens reachable from the navigation bar once enrolled and consented. */
export const NAV_SCREENS = ['session', 'queue', 'activity', 'settings'] as const;
export type NavScreen = (typeof NAV_SCREENS)[number];

export class AppController {
  state = $state<AppState | null>(null);
  screen = $state<Screen>('loading');
  /** An unexpected error shown in the banner. */
  error = $state<AppError | null>(null);
  /** The enrollment screen's error. */
  enrollError = $state<AppError | null>(null);
  enrolling = $state(false);
  /** The project an enrollment link would install, shown before the code is used. */
  preview = $state<JoinPreview | null>(null);
  /** Text for the polite live region (screen readers). */
  status = $state('');
  /** Unaccepted takes lost to a crash (notice until dismissed). */
  lostTakes = $state(0);
  /** Set when a microphone disappears. */
  deviceLost = $state<string | null>(null);
  /** First run: after consent the mic check comes before the first session. */
  firstRun = $state(false);
  /** An enrolled contractor opened the enroll screen on purpose (a new link): it has a way back. */
  joining = $state(false);
  /** The last handed-over link that opened the enroll screen (each link opens it once). */
  private offeredLink: string | null = null;

  readonly mic: MicController;
  readonly session: SessionController;
  readonly queue: QueueController;
  readonly activity: ActivityController;
  readonly update: UpdateController;
  private unsubscribers: Unsubscribe[] = [];

  constructor(readonly backend: Backend) {
    this.mic = new MicController(this);
    this.session = new SessionController(this);
    this.queue = new QueueController(this);
    this.activity = new ActivityController(this);
    this.update = new UpdateController(backend);
  }

  get enrolledAndConsented(): boolean {
    return !!this.state?.enrolled && !!this.state.consent_given;
  }

  /** Loads the state, subscribes to events and shows the first screen. */
  async init(): Promise<void> {
    try {
      this.unsubscribers.push(await this.backend.onQueueChanged((q) => this.queue.apply(q)));
      this.unsubscribers.push(await this.backend.onDeviceLost((p) => void this.onDeviceLost(p.message)));
      this.unsubscribers.push(await this.backend.onStateChanged((s) => void this.onStateChanged(s)));
    } catch (e) {
      this.fail(e);
    }
    try {
      const s = await this.backend.appState();
      this.setState(s);
      this.lostTakes = s.lost_takes;
      this.firstRun = !s.enrolled || !s.consent_given || !s.mic_checked;
      this.session.restore(s.review);
      const home = this.home();
      // Enrolled and consented but the microphone was never checked: the mic check first.
      await this.show(home === 'session' && !s.mic_checked ? 'mic' : home);
      if (this.enrolledAndConsented) void this.queue.refresh();
      await this.offerLink(s);
      void this.update.check();
    } catch (e) {
      this.fail(e);
      this.screen = 'enroll';
    }
  }

  dispose(): void {
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
    this.session.dispose();
    this.queue.dispose();
  }

  /** Applies a fresh AppState (theme and language follow it). */
  setState(s: AppState): void {
    this.state = s;
    applyTheme(s.theme);
    setLanguage(s.language);
  }

  private home(): Screen {
    const s = this.state;
    if (!s?.enrolled) return 'enroll';
    if (!s.consent_given) return 'consent';
    return 'session';
  }

  /** Switches screens, starting and stopping what each needs (the mic meter, loading lists). */
  async show(screen: Screen): Promise<boolean> {
    if (screen === this.screen) return true;
    if (this.session.busy) {
      this.announce(t('session.stopFirst'));
      return false;
    }
    const before = this.screen;
    this.screen = screen;
    if (before === 'mic') await this.mic.close();
    if (screen === 'mic') await this.mic.open();
    if (screen === 'queue') await this.queue.refresh();
    if (screen === 'activity') await this.activity.load();
    if (screen === 'settings') await this.mic.refreshDevices();
    return true;
  }

  navigate(screen: NavScreen | 'mic'): Promise<boolean> {
    if (!this.enrolledAndConsented) return Promise.resolve(false);
    return this.show(screen);
  }

  /** A project: fetches and verifies the link's project and shows it before anything is used up. */
  async previewJoin(code: string, switchProject = false): Promise<boolean> {
    this.preview = null;
    return this.withCode(code, async (c) => {
      this.preview = await this.backend.previewJoin(c, switchProject);
    });
  }

  cancelJoin(): void {
    this.preview = null;
  }

  /**
   * An enrolled contractor enters a new enrollment link (a new code after a revocation, or
   * another project): the enroll screen, with a way back. Not in the demo.
   */
  async startJoin(): Promise<boolean> {
    if (!this.state?.enrolled || this.state.mode === 'demo') return false;
    this.enrollError = null;
    this.preview = null;
    this.joining = true;
    if (await this.show('enroll')) return true;
    this.joining = false;
    return false;
  }

  /** Leaves the enroll screen opened by [`startJoin`] without changing anything. */
  async cancelJoining(): Promise<void> {
    if (!this.joining) return;
    this.joining = false;
    this.preview = null;
    this.enrollError = null;
    await this.show(this.home());
  }

  /** A link handed over while enrolled opens the enroll screen with it, once per link. */
  private async offerLink(s: AppState): Promise<void> {
    const link = s.enroll_link;
    if (!link || !s.enrolled || link === this.offeredLink) return;
    this.offeredLink = link;
    if (!(await this.startJoin())) this.announce(t('enroll.linkWaiting'));
  }

  async startDemo(): Promise<void> {
    await this.switchMode(() => this.backend.startDemo());
  }

  async leaveDemo(): Promise<void> {
    await this.switchMode(() => this.backend.leaveDemo());
  }

  private async switchMode(call: () => Promise<AppState>): Promise<void> {
    this.enrollError = null;
    this.preview = null;
    this.joining = false;
    try {
      this.setState(await call());
      this.firstRun = true;
      this.screen = 'loading';
      await this.show(this.home());
    } catch (e) {
      this.fail(e);
    }
  }

  async enroll(code: string, switchProject = false): Promise<boolean> {
    return this.withCode(code, async (c) => {
      this.setState(await this.backend.enroll(c, switchProject));
      this.preview = null;
      this.joining = false;
      this.announce(t('enroll.done'));
      await this.show(this.home());
    });
  }

  /** Runs `step` with a non-empty code while `enrolling`; its error goes to the enroll screen. */
  private async withCode(code: string, step: (code: string) => Promise<void>): Promise<boolean> {
    this.enrollError = null;
    if (code.trim() === '') {
      this.enrollError = { kind: 'invalid_input', message: '' };
      return false;
    }
    this.enrolling = true;
    try {
      await step(code.trim());
      return true;
    } catch (e) {
      this.enrollError = normalizeError(e);
      this.announce(t(`error.${this.enrollError.kind}`));
      return false;
    } finally {
      this.enrolling = false;
    }
  }

  async giveConsent(): Promise<void> {
    try {
      this.setState(await this.backend.giveConsent());
      this.announce(t('consent.recorded'));
      await this.show('mic');
    } catch (e) {
      this.fail(e);
    }
  }

  /** Leaves the mic check (the first time: on to the first prompt). */
  async finishMicCheck(): Promise<void> {
    const next = this.firstRun ? 'session' : 'settings';
    this.firstRun = false;
    await this.show(next);
  }

  async savePreferences(theme: Theme, language: string): Promise<void> {
    try {
      this.setState(await this.backend.savePreferences(theme, language));
      this.announce(t('settings.saved'));
    } catch (e) {
      this.fail(e);
    }
  }

  dismissLostTakes(): void {
    this.lostTakes = 0;
  }

  dismissError(): void {
    this.error = null;
  }

  dismissDeviceLost(): void {
    this.deviceLost = null;
  }

  announce(text: string): void {
    // Re-setting the same text would not be announced again: clear first.
    this.status = '';
    queueMicrotask(() => (this.status = text));
  }

  /** Records an unexpected error; a lost enrollment sends the user back to the enroll screen. */
  fail(e: unknown): AppError {
    const err = normalizeError(e);
    this.error = err;
    this.announce(t(`error.${err.kind}`));
    if (err.kind === 'not_enrolled' || err.kind === 'revoked' || err.kind === 'no_consent') void this.reload();
    return err;
  }

  async reload(): Promise<void> {
    try {
      this.setState(await this.backend.appState());
      const home = this.home();
      if (home !== 'session') await this.show(home);
    } catch {
      /* the banner already shows the first error */
    }
  }

  /** The backend changed the state by itself (e.g. it noticed a revocation). */
  private async onStateChanged(s: AppState): Promise<void> {
    this.setState(s);
    await this.offerLink(s);
    const home = this.home();
    if (home !== 'session' && this.screen !== home) {
      this.session.reset();
      await this.show(home);
    }
  }

  private async onDeviceLost(message: string): Promise<void> {
    this.deviceLost = message;
    this.announce(t('device.lost'));
    await this.session.onDeviceLost();
    await this.mic.onDeviceLost();
  }

  /** True when a modal dialog is open (shortcuts other than Escape are off). */
  get dialogOpen(): boolean {
    return this.session.flagOpen || this.session.pendingNav !== null;
  }

  /**
   * Handles a keydown; returns true when it was a shortcut (the caller then prevents the
   * default action).
   */
  handleKey(e: KeyLike): boolean {
    const action = shortcutFor(e, direction() === 'rtl');
    if (!action) return false;
    return this.runShortcut(action);
  }

  runShortcut(action: ShortcutAction): boolean {
    if (action === 'escape') {
      if (this.joining && this.screen === 'enroll') {
        void this.cancelJoining();
        return true;
      }
      if (this.session.flagOpen) {
        this.session.closeFlag();
        return true;
      }
      if (this.session.pendingNav !== null) {
        this.session.cancelNav();
        return true;
      }
      return false;
    }
    if (this.dialogOpen || this.screen !== 'session') return false;
    const s = this.session;
    switch (action) {
      case 'toggleRecord':
        void s.toggleRecord();
        return true;
      case 'play':
        void s.togglePlay();
        return true;
      case 'rerecord':
        void s.rerecord();
        return true;
      case 'accept':
        void s.accept();
        return true;
      case 'prev':
        void s.prev();
        return true;
      case 'next':
        void s.next();
        return true;
    }
  }
}
