import { AppController } from '../lib/app.svelte';
import * as fx from '../lib/fixtures';
import { ScriptedBackend } from '../lib/scripted';
import type { AppState, QueueState, TakeReview } from '../lib/types';

export interface Init {
  state?: AppState;
  queue?: QueueState;
  review?: TakeReview;
}

/** A scripted backend (the first start in the demo unless `init` says otherwise) and an app on it. */
export function setup(init: Init = {}): { b: ScriptedBackend; app: AppController } {
  const b = new ScriptedBackend(init);
  const app = new AppController(b);
  return { b, app };
}

/** An enrolled, consented app on the session screen (the state patched by `state`). */
export async function ready(state: Partial<AppState> = {}, init: Omit<Init, 'state'> = {}): Promise<{ b: ScriptedBackend; app: AppController }> {
  const ctx = setup({ ...init, state: fx.enrolled(state) });
  await ctx.app.init();
  return ctx;
}

/**
 * Records a take on the current prompt (one level arrives) and stops it: stop_take answers
 * `review` (default: a passing take of the current prompt). The take is then under review.
 */
export async function recordTake(app: AppController, b: ScriptedBackend, review: Partial<TakeReview> = {}): Promise<void> {
  const prompt = app.state?.prompts[app.session.index]?.id ?? 'p001';
  b.review = fx.takeReview({ prompt_id: prompt, take_id: `t-${b.calls.length}`, ...review });
  await app.session.record();
  b.level();
  await app.session.stop();
}

/** Lets queued microtasks and 0 ms timers run. */
export function tick(ms = 0): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
