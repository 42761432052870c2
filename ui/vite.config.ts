/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';

// The Tauri shell loads ui/dist under a strict CSP (script-src 'self'; style-src 'self'):
// everything must be emitted as external files, nothing inlined.
export default defineConfig({
  // svelteTesting(): browser export conditions and auto-cleanup, in Vitest only.
  plugins: [svelte(), ...(process.env.VITEST ? [svelteTesting()] : [])],
  clearScreen: false,
  server: {
    port: 5173,
    strictPort: true,
    // Vitest only: the i18n tests read the backend's view code (crates/voxseal-app/src) and its
    // audit events (voxseal-core's store/audit_event.rs) as text, to check there are words for every
    // code it sends.
    ...(process.env.VITEST
      ? { fs: { allow: ['.', '../crates/voxseal-app/src', '../crates/voxseal-core/src/store'] } }
      : {}),
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Never inline assets as data: URLs into CSS/JS (img-src allows data:, but keep it simple)
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
    modulePreload: { polyfill: false },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    setupFiles: ['src/test/setup.ts'],
    restoreMocks: true,
  },
});
