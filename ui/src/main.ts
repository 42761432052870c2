import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { AppController } from './lib/app.svelte';
import { inTauri, tauriBackend, type Backend } from './lib/backend';

// The in-memory backend is for design work in a plain browser (`npm run dev`, or a build made
// with VITE_MEMORY_BACKEND=1). A production build always talks to the shell, so a web view that
// somehow lacks the Tauri internals shows errors instead of silently showing fake data.
async function pickBackend(): Promise<Backend> {
  // Written inline so that the production build drops the memory backend's chunk.
  if (!(import.meta.env.DEV || import.meta.env.VITE_MEMORY_BACKEND === '1')) return tauriBackend;
  if (inTauri(window)) return tauriBackend;
  const { MemoryBackend } = await import('./lib/memoryBackend');
  const memory = new MemoryBackend({ lostTakes: 1 });
  // From the devtools console: voxsealMemory.scriptUploads('offline'), voxsealMemory.unplug('USB Headset')
  (window as unknown as { voxsealMemory: unknown }).voxsealMemory = memory;
  return memory;
}

const backend = await pickBackend();
const app = new AppController(backend);
mount(App, { target: document.getElementById('app')!, props: { app } });
