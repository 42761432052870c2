// The upload queue: offline state, per-item failure and retry, events, raw count. The backend's
// answers are scripted (fixtures); what is tested is what the controller makes of them.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ready, tick } from '../test/helpers';
import * as fx from './fixtures';
import type { ScriptedBackend } from './scripted';

let b: ScriptedBackend | undefined;
afterEach(() => {
  // every scripted answer was asked for
  expect(b?.pending() ?? []).toEqual([]);
  b?.dispose();
});

const TWO_SEALED = fx.queueState([fx.queueItem('s-p001-v1'), fx.queueItem('s-p002-v1')]);

describe('queue', () => {
  it('shows offline after a failed attempt and recovers', async () => {
    const ctx = await ready({}, { queue: TWO_SEALED });
    b = ctx.b;
    const { app } = ctx;
    await app.navigate('queue');
    expect(app.queue.online).toBe(true);
    expect(app.queue.rawOnMachine).toBe(2);

    b.reply('upload_now', fx.withStatus(TWO_SEALED, 'failed', { online: false }));
    await app.queue.uploadNow(); // offline is a state, not an error
    expect(app.queue.error).toBeNull();
    expect(app.queue.online).toBe(false);
    expect(app.queue.rawOnMachine).toBe(2);
    expect(app.queue.items.every((i) => i.status !== 'uploaded')).toBe(true);
    expect(app.queue.uploading).toBe(false);

    b.reply('upload_now', fx.withStatus(TWO_SEALED, 'uploaded'));
    await app.queue.uploadNow();
    expect(app.queue.online).toBe(true);
    expect(app.queue.rawOnMachine).toBe(0);
    expect(app.queue.overall.done).toBe(app.queue.overall.total);
  });

  it('marks a failed item with its reason and retries it', async () => {
    const ctx = await ready({}, { queue: TWO_SEALED });
    b = ctx.b;
    const { app } = ctx;
    await app.navigate('queue');
    const failed = fx.queueItem('s-p002-v1', { status: 'failed', last_error: 'the storage service reported a checksum mismatch' });
    b.reply('upload_now', fx.queueState([fx.queueItem('s-p001-v1', { status: 'uploaded' }), failed]));
    await app.queue.uploadNow();
    const shown = app.queue.items.filter((i) => i.status === 'failed');
    expect(shown).toHaveLength(1);
    expect(shown[0]!.last_error).toMatch(/checksum/);
    expect(app.queue.rawOnMachine).toBe(1);

    b.reply('retry_item', fx.queueState([fx.queueItem('s-p001-v1', { status: 'uploaded' }), { ...failed, status: 'sealed', last_error: null }], { uploading: true }));
    await app.queue.retry('s-p002-v1');
    expect(b.invocations.at(-1)).toEqual({ cmd: 'retry_item', args: { sampleId: 's-p002-v1' } });
    expect(app.queue.error).toBeNull();
    // the retry runs in the background; the queue-changed event brings the result
    b.emitQueue(fx.withStatus(TWO_SEALED, 'uploaded'));
    await vi.waitFor(() => expect(app.queue.rawOnMachine).toBe(0));
    expect(app.queue.items.every((i) => i.status === 'uploaded')).toBe(true);
  });

  it('shows an error kind when the backend refuses', async () => {
    const ctx = await ready({}, { queue: TWO_SEALED });
    b = ctx.b;
    b.fail('upload_now', 'revoked', 'enrollment revoked');
    await ctx.app.queue.uploadNow();
    expect(ctx.app.queue.error?.kind).toBe('revoked');
    expect(ctx.app.queue.uploading).toBe(false);
  });

  it('follows queue-changed events and reports progress while uploading', async () => {
    const ctx = await ready({}, { queue: TWO_SEALED });
    b = ctx.b;
    const { app } = ctx;
    await app.navigate('queue');
    let finish = () => {};
    const total = TWO_SEALED.items.reduce((s, i) => s + i.bytes_total, 0);
    b.handle('upload_now', async ({ onProgress }) => {
      const first = { ...TWO_SEALED.items[0]!, status: 'uploading' as const, bytes_done: 100_000 };
      b!.emitQueue(fx.queueState([first, TWO_SEALED.items[1]!], { uploading: true }));
      onProgress(fx.progress({ bytes_done: 100_000, bytes_total: total, items_total: 2, sample_id: first.sample_id, item_bytes_done: 100_000, item_bytes_total: first.bytes_total }));
      await new Promise<void>((r) => (finish = r));
      return fx.withStatus(TWO_SEALED, 'uploaded');
    });
    const upload = app.queue.uploadNow();
    await vi.waitFor(() => expect(app.queue.progress?.bytes_done).toBe(100_000));
    expect(app.queue.uploading).toBe(true);
    expect(app.queue.items[0]!.status).toBe('uploading');
    const o = app.queue.overall;
    expect(o.done / o.total).toBeGreaterThan(0);
    expect(o.done / o.total).toBeLessThan(1);
    expect(app.queue.itemBytes(app.queue.items[0]!)).toEqual({ done: 100_000, total: TWO_SEALED.items[0]!.bytes_total });
    finish();
    await upload;
    expect(app.queue.uploading).toBe(false);
    expect(app.queue.progress).toBeNull();
    expect(app.queue.overall.done).toBe(app.queue.overall.total);
  });

  it('shows the raw count and the last wipe the backend reports', async () => {
    const ctx = await ready();
    b = ctx.b;
    b.reply('queue', fx.queueState([], { raw_on_machine: 1 })); // a take under review is raw audio
    await ctx.app.queue.refresh();
    expect(ctx.app.queue.rawOnMachine).toBe(1);
    b.reply('queue', fx.queueState([], { raw_on_machine: 0, last_wipe_at: '2026-12-07T08:01:00Z' }));
    await ctx.app.queue.refresh();
    expect(ctx.app.queue.rawOnMachine).toBe(0);
    expect(ctx.app.queue.state?.last_wipe_at).toBe('2026-12-07T08:01:00Z');
    await tick();
  });
});
