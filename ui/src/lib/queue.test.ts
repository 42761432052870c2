// The upload queue: offline state, per-item failure and retry, events, raw count.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ready, recordTake } from '../test/helpers';
import type { AppController } from './app.svelte';
import type { MemoryBackend } from './memoryBackend';

let mem: MemoryBackend | undefined;
afterEach(() => mem?.dispose());

async function acceptTwo(app: AppController): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await recordTake(app);
    expect(await app.session.accept()).toBe('accepted');
  }
}

describe('queue', () => {
  it('shows offline after a failed attempt and recovers', async () => {
    const ctx = await ready({ failFirstTakeOf: [] });
    mem = ctx.mem;
    const { app } = ctx;
    await acceptTwo(app);
    await app.navigate('queue');
    expect(app.queue.online).toBe(true);

    mem.scriptUploads('offline');
    await app.queue.uploadNow(); // offline is a state, not an error
    expect(app.queue.error).toBeNull();
    expect(app.queue.online).toBe(false);
    expect(app.queue.rawOnMachine).toBe(2);
    expect(app.queue.items.every((i) => i.status !== 'uploaded')).toBe(true);

    await app.queue.uploadNow();
    expect(app.queue.online).toBe(true);
    expect(app.queue.rawOnMachine).toBe(0);
  });

  it('marks a failed item with its reason and retries it', async () => {
    const ctx = await ready({ failFirstTakeOf: [], uploads: ['failed'] });
    mem = ctx.mem;
    const { app } = ctx;
    await acceptTwo(app);
    await app.navigate('queue');
    await app.queue.uploadNow();
    const failed = app.queue.items.filter((i) => i.status === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.last_error).toMatch(/checksum/);
    expect(app.queue.rawOnMachine).toBe(1);

    await app.queue.retry(failed[0]!.sample_id);
    // the retry runs in the background; the queue-changed event brings the result
    await vi.waitFor(() => expect(app.queue.rawOnMachine).toBe(0));
    expect(app.queue.items.every((i) => i.status === 'uploaded')).toBe(true);
  });

  it('follows queue-changed events and reports progress while uploading', async () => {
    const ctx = await ready({ failFirstTakeOf: [], uploadStepMs: 20 });
    mem = ctx.mem;
    const { app } = ctx;
    await acceptTwo(app);
    await app.navigate('queue');
    const seen = new Set<string>();
    const fractions: number[] = [];
    const upload = app.queue.uploadNow();
    await vi.waitFor(() => {
      for (const i of app.queue.items) seen.add(i.status);
      const o = app.queue.overall;
      if (o.total > 0) fractions.push(o.done / o.total);
      expect(app.queue.uploading).toBe(false);
    }, { interval: 5, timeout: 3000 });
    await upload;
    expect(seen.has('uploading')).toBe(true);
    expect(fractions.some((f) => f > 0 && f < 1)).toBe(true);
    expect(app.queue.overall.done).toBe(app.queue.overall.total);
  });

  it('counts the take under review as raw audio on the machine', async () => {
    const ctx = await ready();
    mem = ctx.mem;
    await recordTake(ctx.app);
    await ctx.app.queue.refresh();
    expect(ctx.app.queue.rawOnMachine).toBe(1);
    await ctx.app.session.discard();
    await ctx.app.queue.refresh();
    expect(ctx.app.queue.rawOnMachine).toBe(0);
    expect(ctx.app.queue.state?.last_wipe_at).not.toBeNull();
  });
});
