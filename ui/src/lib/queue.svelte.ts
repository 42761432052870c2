// The outbox: sealed / uploading / uploaded / failed items, the overall progress, the offline
// state, and how many raw recordings are still on this machine.
import type { AppController } from './app.svelte';
import { normalizeError } from './errors';
import { t } from './i18n';
import type { AppError, QueueItem, QueueState, UploadProgress } from './types';

/** While upload_now runs, the queue is re-read at most this often for per-item bars. */
export const QUEUE_POLL_MS = 400;

export class QueueController {
  state = $state<QueueState | null>(null);
  /** The running upload_now's progress (null when none runs from this window). */
  progress = $state<UploadProgress | null>(null);
  error = $state<AppError | null>(null);
  private lastPoll = 0;
  private polling = false;
  /** Bumped by every applied state, so a slower, older read never overwrites a newer one. */
  private seq = 0;

  constructor(private readonly app: AppController) {}

  get items(): QueueItem[] {
    return this.state?.items ?? [];
  }

  get online(): boolean {
    return this.state?.online ?? true;
  }

  get uploading(): boolean {
    return this.progress !== null || (this.state?.uploading ?? false);
  }

  get rawOnMachine(): number {
    return this.state?.raw_on_machine ?? 0;
  }

  /** Items not yet uploaded (what "Upload now" would send). */
  get pending(): number {
    return this.items.filter((i) => i.status !== 'uploaded').length;
  }

  /** Overall progress 0..1: the running upload's, else bytes over all items. */
  get overall(): { done: number; total: number } {
    if (this.progress) return { done: this.progress.bytes_done, total: this.progress.bytes_total };
    const total = this.items.reduce((s, i) => s + i.bytes_total, 0);
    const done = this.items.reduce((s, i) => s + (i.status === 'uploaded' ? i.bytes_total : i.bytes_done), 0);
    return { done, total };
  }

  count(status: QueueItem['status']): number {
    return this.items.filter((i) => i.status === status).length;
  }

  /** From the queue-changed event, or any command's result. */
  apply(q: QueueState): void {
    this.seq++;
    this.state = q;
  }

  async refresh(): Promise<void> {
    const mine = ++this.seq;
    try {
      const q = await this.app.backend.queue();
      if (mine === this.seq) this.apply(q);
    } catch (e) {
      this.error = normalizeError(e);
    }
  }

  async uploadNow(): Promise<void> {
    if (this.progress) return;
    this.error = null;
    this.progress = { bytes_done: 0, bytes_total: 0, items_done: 0, items_total: this.pending };
    this.app.announce(t('queue.uploadStarted'));
    try {
      const q = await this.app.backend.uploadNow((p) => this.onProgress(p));
      this.apply(q);
      this.app.announce(q.online ? t('queue.uploadFinished', { count: q.raw_on_machine }) : t('queue.offline'));
    } catch (e) {
      this.error = normalizeError(e);
      this.app.announce(t(`error.${this.error.kind}`));
    } finally {
      this.progress = null;
    }
  }

  private onProgress(p: UploadProgress): void {
    this.progress = p;
    // The channel carries totals only; re-read the queue now and then for the per-item bars.
    const now = Date.now();
    if (!this.polling && now - this.lastPoll >= QUEUE_POLL_MS) {
      this.lastPoll = now;
      this.polling = true;
      void this.refresh().finally(() => (this.polling = false));
    }
  }

  async retry(sampleId: string): Promise<void> {
    this.error = null;
    try {
      this.apply(await this.app.backend.retryItem(sampleId));
      this.app.announce(t('queue.retrying'));
    } catch (e) {
      this.error = normalizeError(e);
    }
  }
}
