// Keyboard shortcuts: the key -> action map, where shortcuts are off, and what each one does
// on the session screen.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ready, recordTake } from '../test/helpers';
import { shortcutFor, type KeyLike } from './keyboard';
import * as fx from './fixtures';
import type { ScriptedBackend } from './scripted';

function el(html: string): HTMLElement {
  const div = document.createElement('div');
  div.innerHTML = html;
  document.body.append(div);
  return div.firstElementChild as HTMLElement;
}

describe('shortcutFor', () => {
  it.each([
    [' ', 'toggleRecord'],
    ['p', 'play'],
    ['P', 'play'],
    ['r', 'rerecord'],
    ['R', 'rerecord'],
    ['Enter', 'accept'],
    ['ArrowLeft', 'prev'],
    ['ArrowRight', 'next'],
    ['Escape', 'escape'],
    ['x', null],
    ['ArrowUp', null],
  ])('%j -> %s', (key, action) => {
    expect(shortcutFor({ key, target: document.body })).toBe(action);
  });

  it('is off while typing', () => {
    for (const html of ['<input type="text">', '<textarea></textarea>', '<select><option>a</option></select>', '<div contenteditable="true"></div>', '<input type="checkbox">']) {
      const target = el(html);
      for (const key of [' ', 'p', 'r', 'Enter', 'ArrowLeft']) {
        expect(shortcutFor({ key, target }), `${key} in ${html}`).toBeNull();
      }
      // Escape still closes dialogs from a text field
      expect(shortcutFor({ key: 'Escape', target })).toBe('escape');
    }
  });

  it('lets a focused button handle Enter and Space itself', () => {
    const button = el('<button>Play</button>');
    expect(shortcutFor({ key: 'Enter', target: button })).toBeNull();
    expect(shortcutFor({ key: ' ', target: button })).toBeNull();
    expect(shortcutFor({ key: 'p', target: button })).toBe('play');
    expect(shortcutFor({ key: 'ArrowRight', target: button })).toBe('next');
  });

  it('ignores modifiers and auto-repeat', () => {
    const k = (e: Partial<KeyLike>) => shortcutFor({ key: 'r', target: document.body, ...e });
    expect(k({ ctrlKey: true })).toBeNull();
    expect(k({ metaKey: true })).toBeNull();
    expect(k({ altKey: true })).toBeNull();
    expect(shortcutFor({ key: ' ', repeat: true })).toBeNull();
  });
});

describe('shortcuts on the session screen', () => {
  let b: ScriptedBackend | undefined;
  afterEach(() => {
    // every scripted answer was asked for
    expect(b?.pending() ?? []).toEqual([]);
    b?.dispose();
  });
  const key = (k: string) => ({ key: k, target: document.body });

  it('space records and stops, P plays, R re-records, Enter accepts, arrows navigate', async () => {
    const ctx = await ready();
    b = ctx.b;
    const { app } = ctx;
    const s = app.session;

    expect(app.handleKey(key(' '))).toBe(true);
    await vi.waitFor(() => expect(s.phase).toBe('recording'));
    expect(b.calls.at(-1)).toBe('start_take');
    b.level();
    await vi.waitFor(() => expect(s.level).not.toBeNull());
    app.handleKey(key(' '));
    await vi.waitFor(() => expect(s.phase).toBe('review'));
    expect(b.calls.at(-1)).toBe('stop_take');

    app.handleKey(key('p'));
    await vi.waitFor(() => expect(s.playing).toBe(true));
    expect(b.calls.at(-1)).toBe('play_take');

    // space on a take under review does not throw it away
    app.handleKey(key(' '));
    expect(s.phase).toBe('review');

    app.handleKey(key('R'));
    await vi.waitFor(() => expect(s.phase).toBe('recording'));
    expect(b.calls.slice(-3)).toEqual(['stop_playback', 'discard_take', 'start_take']);
    b.level();
    await vi.waitFor(() => expect(s.level).not.toBeNull());
    app.handleKey(key(' '));
    await vi.waitFor(() => expect(s.phase).toBe('review'));

    b.reply('accept_take', fx.accepted(app.state!, 0));
    app.handleKey(key('Enter'));
    await vi.waitFor(() => expect(s.phase).toBe('idle'));
    expect(b.calls.filter((c) => c === 'accept_take')).toHaveLength(1);
    expect(app.state?.progress[0]?.status).toBe('accepted');
    expect(s.index).toBe(1);

    b.reply('go_to_prompt', { ...app.state!, current_prompt: 0 });
    app.handleKey(key('ArrowLeft'));
    await vi.waitFor(() => expect(s.index).toBe(0));
    expect(b.invocations.at(-1)?.args).toEqual({ index: 0 });
    b.reply('go_to_prompt', { ...app.state!, current_prompt: 1 });
    app.handleKey(key('ArrowRight'));
    await vi.waitFor(() => expect(s.index).toBe(1));
    expect(b.calls.filter((c) => c === 'go_to_prompt')).toHaveLength(2);
  });

  it('Enter on a failing take does not accept it', async () => {
    const ctx = await ready();
    b = ctx.b;
    await recordTake(ctx.app, b, { quality: fx.quality('clipped') });
    ctx.app.handleKey(key('Enter'));
    await vi.waitFor(() => expect(ctx.app.session.confirmFailed).toBe(true));
    expect(b.calls).not.toContain('accept_take');
  });

  it('Escape closes dialogs; other shortcuts wait while one is open', async () => {
    const ctx = await ready();
    b = ctx.b;
    const { app } = ctx;
    app.session.openFlag();
    expect(app.handleKey(key(' '))).toBe(false);
    expect(app.session.phase).toBe('idle');
    expect(app.handleKey(key('Escape'))).toBe(true);
    expect(app.session.flagOpen).toBe(false);
    expect(app.handleKey(key('Escape'))).toBe(false);
  });

  it('does nothing on other screens', async () => {
    const ctx = await ready();
    b = ctx.b;
    await ctx.app.navigate('queue');
    expect(ctx.app.handleKey(key(' '))).toBe(false);
    expect(b.calls).not.toContain('start_take');
  });
});
