import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { AppController } from './lib/app.svelte';
import { inTauri, tauriBackend, type Backend } from './lib/backend';

// In a plain browser (`npm run dev`, or a build made with VITE_FIXTURE_BACKEND=1) the app runs on
// canned fixtures, for design work (lib/demoFixtures.ts; `?fixture=session|review|queue`). A
// production build always talks to the shell, so a web view that somehow lacks the Tauri
// internals shows errors instead of silently showing fake data.
async function pickBackend(): Promise<Backend> {
  // Written inline so that the production build drops the fixtures' chunk.
  if (!(import.meta.env.DEV || import.meta.env.VITE_FIXTURE_BACKEND === '1')) return tauriBackend;
  if (inTauri(window)) return tauriBackend;
  const { demoBackend } = await import('./lib/demoFixtures');
  const backend = demoBackend(new URLSearchParams(window.location.search).get('fixture'));
  // From the devtools console: voxsealFixture.fail('enroll', 'bad_code'), voxsealFixture.emitDeviceLost('unplugged')
  (window as unknown as { voxsealFixture: unknown }).voxsealFixture = backend;
  return backend;
}

const backend = await pickBackend();
const app = new AppController(backend);
mount(App, { target: document.getElementById('app')!, props: { app } });
