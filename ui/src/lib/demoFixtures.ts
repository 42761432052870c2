// The browser demo of `npm run dev` (a plain browser, no Tauri shell): the app on a
// ScriptedBackend set up from one of these fixtures, chosen by `?fixture=<name>` in the URL. It
// shows the screens with canned data; it does not run the app: a command without a scripted
// answer answers with the fixture as it is (Record and Stop show the fixture's take, Accept leaves
// the prompts as they were). From the devtools console, `voxsealFixture` is the backend: script
// answers (`voxsealFixture.reply('accept_take', ...)`, `.fail('enroll', 'bad_code')`) or push
// events (`.emitDeviceLost('unplugged')`, `.emitQueue(...)`, `.level()`).
import * as fx from './fixtures';
import { ScriptedBackend } from './scripted';

const QUEUE = fx.queueState([
  fx.queueItem('s-p001-v1', { status: 'uploaded', bytes_done: 390_000 }),
  fx.queueItem('s-p002-v1', { status: 'failed', last_error: 'network unreachable: will retry when online' }),
  fx.queueItem('s-p003-v1'),
]);

/** The fixtures, by name (`start` when the URL names none or an unknown one). */
export const DEMO_FIXTURES: Record<string, () => ScriptedBackend> = {
  /** First start in the demo: the enroll screen with the demo code. */
  start: () => new ScriptedBackend({ state: fx.appState({ lost_takes: 1 }) }),
  /** Enrolled, on the first prompt; Record and Stop show a passing take. */
  session: () => new ScriptedBackend({ state: fx.enrolled(), queue: QUEUE }),
  /** A failing take under review (Accept explains, "Accept anyway" confirms). */
  review: () => {
    const review = fx.takeReview({ prompt_id: 'p003', quality: fx.quality('clipped') });
    return new ScriptedBackend({ state: fx.enrolled({ current_prompt: 2, review }), queue: QUEUE, review });
  },
  /** The queue offline, one item failed. */
  queue: () => new ScriptedBackend({ state: fx.enrolled(), queue: { ...QUEUE, online: false } }),
};

export function demoBackend(name: string | null): ScriptedBackend {
  const make = (name && DEMO_FIXTURES[name]) || DEMO_FIXTURES.start!;
  return make();
}
