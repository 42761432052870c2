import { vi } from 'vitest';
import { AppController } from '../lib/app.svelte';
import { MemoryBackend, type MemoryOptions } from '../lib/memoryBackend';

/** Memory backend timings small enough for tests. */
export const FAST: MemoryOptions = {
  levelIntervalMs: 2,
  noiseCheckMs: 5,
  tailMs: 2,
  takeDurationS: 2.5,
  uploadStepMs: 1,
  uploadSteps: 3,
  // Most tests look at sealed items before uploading them by hand; the tests of the automatic
  // upload turn it back on.
  autoUpload: false,
};

export function setup(options: MemoryOptions = {}): { mem: MemoryBackend; app: AppController } {
  const mem = new MemoryBackend({ ...FAST, ...options });
  const app = new AppController(mem);
  return { mem, app };
}

/** An enrolled, consented app on the session screen. */
export async function ready(options: MemoryOptions = {}): Promise<{ mem: MemoryBackend; app: AppController }> {
  const ctx = setup({ enrolled: true, consentGiven: true, ...options });
  await ctx.app.init();
  return ctx;
}

/** Records a take on the current prompt and stops it (the take is then under review). */
export async function recordTake(app: AppController): Promise<void> {
  await app.session.record();
  await vi.waitFor(() => {
    if (!app.session.level) throw new Error('no level yet');
  });
  await app.session.stop();
}

/** Lets queued microtasks and 0 ms timers run. */
export function tick(ms = 0): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
