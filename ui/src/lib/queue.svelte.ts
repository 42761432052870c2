// The outbox: sealed / uploading / uploaded / failed items, the overall progress, the offline
// state, and how many raw recordings are still on this machine.
import type { AppController } from './app.svelte';
import { normalizeError } from './errors';
import { t } from './i18n';
import type { AppError, QueueItem, QueueState, UploadProgress } from './types';

/**
 * While an upload runs, the queue is re-read at most this often (item statuses; the per-item
 * bytes of the item being sent come with upload_now's progress).
 */
export const QUEUE_POLL_MS = 400;

export class QueueController {
  state = $state<QueueState | null>(null);
  /** The running upload_now's progress (null when none runs from this window). */
  progress = $state<UploadProgress | null>(null);
  error = $state<AppError | null>(null);
  private lastPoll = 0;
  /** When the running upload_now began (for the time left). */
  private startedAt: number | null = null;
  /** When this window first saw the background upload run, and its bytes then (time left). */
  private background = $state<{ at: number; done: number } | null>(null);
  private polling = false;
  /** A re-read scheduled while the backend uploads by itself (no progress channel then). */
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
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

  /** An upload runs, but nothing has left for a while: the network is gone. */
  get waitingForNetwork(): boolean {
    if (this.progress) return this.progress.waiting_for_network;
    return (this.state?.uploading ?? false) && (this.state?.waiting_for_network ?? false);
  }

  /**
   * Seconds left at the rate bytes were acknowledged since the running upload began (upload_now)
   * or was first seen (background); null before there is a rate to go by, and while waiting for
   * the network.
   */
  get etaSeconds(): number | null {
    const from = this.progress ? this.startedAt && { at: this.startedAt, done: 0 } : this.background;
    if (!from || this.waitingForNetwork) return null;
    const { done, total } = this.overall;
    const elapsed = (Date.now() - from.at) / 1000;
    const sent = done - from.done;
    if (elapsed < 2 || sent <= 0) return null;
    return ((total - done) * elapsed) / sent;
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

  /** Bytes sent of one item: upload_now's progress for the item being sent, else the queue's. */
  itemBytes(item: QueueItem): { done: number; total: number } {
    if (item.status === 'uploaded') return { done: item.bytes_total, total: item.bytes_total };
    const p = this.progress;
    if (p && p.sample_id === item.sample_id && p.item_bytes_total > 0) {
      return { done: p.item_bytes_done, total: p.item_bytes_total };
    }
    return { done: item.bytes_done, total: item.bytes_total };
  }

  /** From the queue-changed event, or any command's result. */
  apply(q: QueueState): void {
    this.seq++;
    this.state = q;
    if (!q.uploading || this.progress) this.background = null;
    else this.background ??= { at: Date.now(), done: this.overall.done };
    // The backend uploads by itself after every accepted take: follow it while the queue shows.
    if (q.uploading && !this.progress && !this.pollTimer && this.app.screen === 'queue') {
      this.pollTimer = setTimeout(() => {
        this.pollTimer = null;
        void this.refresh();
      }, QUEUE_POLL_MS);
    }
  }

  dispose(): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
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
    this.progress = {
      bytes_done: 0,
      bytes_total: 0,
      items_done: 0,
      items_total: this.pending,
      sample_id: null,
      item_bytes_done: 0,
      item_bytes_total: 0,
      waiting_for_network: false,
    };
    this.startedAt = Date.now();
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
      this.startedAt = null;
    }
  }

  private onProgress(p: UploadProgress): void {
    const moved = p.sample_id !== this.progress?.sample_id || p.items_done !== this.progress?.items_done;
    this.progress = p;
    // The channel carries the current item's bytes; item statuses come from the queue, re-read
    // when the upload moves to another item and now and then.
    const now = Date.now();
    if (!this.polling && (moved || now - this.lastPoll >= QUEUE_POLL_MS)) {
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
