// The browser demo's fixtures (npm run dev) open the screens they are named for.
import { describe, expect, it } from 'vitest';
import { AppController } from './app.svelte';
import { DEMO_FIXTURES, demoBackend } from './demoFixtures';

describe('demo fixtures', () => {
  it('each opens its screen', async () => {
    const screens: Record<string, string> = {};
    for (const name of Object.keys(DEMO_FIXTURES)) {
      const b = demoBackend(name);
      const app = new AppController(b);
      await app.init();
      if (name === 'queue') await app.navigate('queue');
      screens[name] = `${app.screen}:${app.session.phase}:${app.queue.online}`;
      app.dispose();
      b.dispose();
    }
    expect(screens).toEqual({
      start: 'enroll:idle:true',
      session: 'session:idle:true',
      review: 'session:review:true',
      queue: 'queue:idle:false',
    });
  });

  it('falls back to the first start for an unknown name', async () => {
    const app = new AppController(demoBackend('nonsense'));
    await app.init();
    expect(app.screen).toBe('enroll');
    expect(app.state?.demo_code).not.toBeNull();
    app.dispose();
  });
});
