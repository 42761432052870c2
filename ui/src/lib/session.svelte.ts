// The recording session: the current prompt, record / stop / play / re-record / accept /
// skip-and-flag / navigation, and the take under review with its quality verdicts.
// A take whose overall verdict is "fail" is accepted only through acceptAnyway().
import type { AppController } from './app.svelte';
import { normalizeError } from './errors';
import { t } from './i18n';
import type { AppError, Level, Prompt, PromptProgress, TakeReview } from './types';

export type Phase = 'idle' | 'starting' | 'recording' | 'stopping' | 'review' | 'saving';
export type AcceptResult = 'accepted' | 'needs_confirm' | 'none' | 'error';

export class SessionController {
  phase = $state<Phase>('idle');
  review = $state<TakeReview | null>(null);
  level = $state<Level | null>(null);
  playing = $state(false);
  error = $state<AppError | null>(null);
  /** Accept was asked for on a failing take: show why and offer "Accept anyway". */
  confirmFailed = $state(false);
  /** Navigation asked for while a take waits for review: confirm discarding it. */
  pendingNav = $state<number | null>(null);
  /** The skip / flag dialog. */
  flagOpen = $state(false);
  /** Bumped by every play and stop, so a finished play_take only clears its own playback. */
  private playSeq = 0;

  constructor(private readonly app: AppController) {}

  get prompts(): Prompt[] {
    return this.app.state?.prompts ?? [];
  }
  get total(): number {
    return this.prompts.length;
  }
  /** Index of the prompt shown (clamped into range). */
  get index(): number {
    const i = this.app.state?.current_prompt ?? 0;
    return Math.max(0, Math.min(i, this.total - 1));
  }
  get prompt(): Prompt | null {
    return this.prompts[this.index] ?? null;
  }
  get progress(): PromptProgress | null {
    const p = this.prompt;
    return p ? (this.app.state?.progress.find((x) => x.prompt_id === p.id) ?? null) : null;
  }
  get acceptedCount(): number {
    return (this.app.state?.progress ?? []).filter((p) => p.status === 'accepted').length;
  }
  /** Prompts that are accepted, skipped or flagged. */
  get doneCount(): number {
    return (this.app.state?.progress ?? []).filter((p) => p.status !== 'todo').length;
  }
  get allDone(): boolean {
    return this.total > 0 && this.doneCount === this.total;
  }
  /** Recording or waiting for the backend: navigation and other actions wait. */
  get busy(): boolean {
    return this.phase === 'starting' || this.phase === 'recording' || this.phase === 'stopping' || this.phase === 'saving';
  }
  get failing(): boolean {
    return this.review?.quality.overall === 'fail';
  }

  async record(): Promise<void> {
    const prompt = this.prompt;
    if (this.phase !== 'idle' || !prompt) return;
    this.error = null;
    this.confirmFailed = false;
    this.level = null;
    this.phase = 'starting';
    try {
      await this.app.backend.startTake(prompt.id, (l) => {
        if (this.phase === 'starting' || this.phase === 'recording' || this.phase === 'stopping') this.level = l;
      });
      if (this.phase === 'starting') {
        this.phase = 'recording';
        this.app.announce(t('session.recording'));
      }
    } catch (e) {
      this.phase = 'idle';
      this.handle(e);
    }
  }

  async stop(): Promise<void> {
    if (this.phase !== 'recording') return;
    this.phase = 'stopping';
    try {
      const review = await this.app.backend.stopTake();
      this.review = review;
      this.phase = 'review';
      this.app.announce(
        t('session.takeDone', {
          seconds: review.duration_s.toFixed(1),
          verdict: t(`verdict.${review.quality.overall}`),
        }),
      );
    } catch (e) {
      this.phase = 'idle';
      this.handle(e);
    } finally {
      this.level = null;
    }
  }

  /** Space: start or stop a recording. On a take under review it only explains what to do. */
  async toggleRecord(): Promise<void> {
    if (this.phase === 'recording') return this.stop();
    if (this.phase === 'idle') return this.record();
    if (this.phase === 'review') this.app.announce(t('session.hint.review'));
  }

  /**
   * P / Play: starts playing the take under review (or stops it). Returns once playback has
   * started; play_take resolves when playback ends or is stopped, which clears `playing`.
   */
  async togglePlay(): Promise<void> {
    if (this.playing) return this.stopPlayback();
    if (this.phase !== 'review' || !this.review) return;
    const mine = ++this.playSeq;
    this.playing = true;
    void this.app.backend.playTake().then(
      () => {
        if (mine === this.playSeq) this.playing = false;
      },
      (e: unknown) => {
        if (mine === this.playSeq) this.playing = false;
        this.handle(e);
      },
    );
  }

  async stopPlayback(): Promise<void> {
    if (!this.playing) return;
    this.playing = false;
    this.playSeq++;
    try {
      await this.app.backend.stopPlayback();
    } catch {
      /* already stopped */
    }
  }

  /** R: throw the take under review away and record again (or record a new version). */
  async rerecord(): Promise<void> {
    if (this.phase === 'review') {
      if (!(await this.discard())) return;
    }
    if (this.phase === 'idle') await this.record();
  }

  /** Enter / Accept: a failing take is not accepted here; see acceptAnyway(). */
  async accept(): Promise<AcceptResult> {
    if (this.phase !== 'review' || !this.review) return 'none';
    if (this.failing) {
      this.confirmFailed = true;
      this.app.announce(t('session.failNeedsConfirm'));
      return 'needs_confirm';
    }
    return this.save(false);
  }

  /** The explicit confirmation for a take that failed its checks. */
  async acceptAnyway(): Promise<AcceptResult> {
    if (this.phase !== 'review' || !this.review) return 'none';
    return this.save(true);
  }

  private async save(acceptFailed: boolean): Promise<AcceptResult> {
    await this.stopPlayback();
    this.phase = 'saving';
    try {
      const s = await this.app.backend.acceptTake(acceptFailed);
      const accepted = this.prompt;
      this.app.setState(s);
      this.review = null;
      this.confirmFailed = false;
      this.error = null;
      this.phase = 'idle';
      const prog = s.progress.find((p) => p.prompt_id === accepted?.id);
      this.app.announce(t('session.accepted', { version: prog?.versions ?? 1 }));
      void this.app.queue.refresh();
      return 'accepted';
    } catch (e) {
      this.phase = 'review';
      const err = this.handle(e);
      if (err.kind === 'quality_failed') this.confirmFailed = true;
      return 'error';
    }
  }

  /** Throws the take under review away. */
  async discard(): Promise<boolean> {
    if (this.phase !== 'review') return true;
    await this.stopPlayback();
    try {
      this.app.setState(await this.app.backend.discardTake());
      this.review = null;
      this.confirmFailed = false;
      this.phase = 'idle';
      this.app.announce(t('session.discarded'));
      return true;
    } catch (e) {
      const err = this.handle(e);
      if (err.kind === 'no_take') {
        this.review = null;
        this.phase = 'idle';
        return true;
      }
      return false;
    }
  }

  openFlag(): void {
    if (this.busy || !this.prompt) return;
    this.flagOpen = true;
  }

  closeFlag(): void {
    this.flagOpen = false;
  }

  /** Skips the prompt; a non-empty reason flags it as bad. */
  async skip(reason: string | null): Promise<void> {
    const prompt = this.prompt;
    if (this.busy || !prompt) return;
    this.flagOpen = false;
    if (!(await this.discard())) return;
    const why = reason?.trim() ? reason.trim() : null;
    try {
      this.app.setState(await this.app.backend.skipPrompt(prompt.id, why));
      this.error = null;
      this.app.announce(t(why ? 'session.flagged' : 'session.skipped'));
    } catch (e) {
      this.handle(e);
    }
  }

  async goTo(index: number): Promise<void> {
    if (this.busy) {
      this.app.announce(t('session.stopFirst'));
      return;
    }
    if (index < 0 || index >= this.total || index === this.index) return;
    if (this.phase === 'review') {
      this.pendingNav = index;
      return;
    }
    try {
      this.app.setState(await this.app.backend.goToPrompt(index));
      this.error = null;
      this.confirmFailed = false;
      this.app.announce(t('session.progress', { n: this.index + 1, total: this.total }));
    } catch (e) {
      this.handle(e);
    }
  }

  prev(): Promise<void> {
    return this.goTo(this.index - 1);
  }

  next(): Promise<void> {
    return this.goTo(this.index + 1);
  }

  /** Confirms leaving a take under review: it is discarded. */
  async confirmNav(): Promise<void> {
    const target = this.pendingNav;
    this.pendingNav = null;
    if (target === null) return;
    if (await this.discard()) await this.goTo(target);
  }

  cancelNav(): void {
    this.pendingNav = null;
  }

  /** The microphone went away: end a running take so the part recorded can be reviewed. */
  async onDeviceLost(): Promise<void> {
    if (this.phase === 'recording') await this.stop();
    else if (this.phase === 'starting') this.phase = 'idle';
  }

  /** After a reload: the take the backend still holds under review comes back. */
  restore(review: TakeReview | null): void {
    if (!review || this.phase !== 'idle') return;
    this.review = review;
    this.phase = 'review';
  }

  /** Forgets the session's local state (the enrollment or consent went away). */
  reset(): void {
    this.playSeq++;
    this.playing = false;
    this.review = null;
    this.level = null;
    this.phase = 'idle';
    this.confirmFailed = false;
    this.pendingNav = null;
    this.flagOpen = false;
  }

  dispose(): void {
    this.playSeq++;
    this.playing = false;
  }

  private handle(e: unknown): AppError {
    const err = normalizeError(e);
    this.error = err;
    this.app.announce(t(`error.${err.kind}`));
    if (err.kind === 'not_enrolled' || err.kind === 'revoked' || err.kind === 'no_consent') this.app.fail(err);
    return err;
  }
}
