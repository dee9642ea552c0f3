// The background tab says idle (so its user gets pushes elsewhere) and comes
// back as what the user chose; a status the user picked is never overridden.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startAutoIdle, type Status } from '@/lib/autoIdle';

function fakeDoc() {
  const fns = new Set<() => void>();
  const doc = {
    visibilityState: 'visible',
    addEventListener: (_: 'visibilitychange', fn: () => void) => void fns.add(fn),
    removeEventListener: (_: 'visibilitychange', fn: () => void) => void fns.delete(fn),
  };
  const set = (state: 'visible' | 'hidden') => {
    doc.visibilityState = state;
    for (const fn of fns) fn();
  };
  return { doc, set, listeners: () => fns.size };
}

describe('auto idle', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('goes idle after a while hidden and back to online when seen', () => {
    const { doc, set } = fakeDoc();
    const sent: Status[] = [];
    const a = startAutoIdle(doc, (s) => sent.push(s), 1000);
    set('hidden');
    vi.advanceTimersByTime(999);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual(['idle']);
    set('hidden');
    vi.advanceTimersByTime(5000);
    expect(sent).toEqual(['idle']);
    set('visible');
    expect(sent).toEqual(['idle', 'online']);
    a.stop();
  });

  it('a short look away changes nothing', () => {
    const { doc, set } = fakeDoc();
    const sent: Status[] = [];
    startAutoIdle(doc, (s) => sent.push(s), 1000);
    set('hidden');
    vi.advanceTimersByTime(500);
    set('visible');
    vi.advanceTimersByTime(5000);
    expect(sent).toEqual([]);
  });

  it('leaves a status the user chose alone', () => {
    const { doc, set } = fakeDoc();
    const sent: Status[] = [];
    const a = startAutoIdle(doc, (s) => sent.push(s), 1000);
    a.choose('dnd');
    set('hidden');
    vi.advanceTimersByTime(2000);
    set('visible');
    expect(sent).toEqual([]);
    // Chosen while away: back in view, nothing more is sent (the choice was).
    a.choose('online');
    set('hidden');
    vi.advanceTimersByTime(2000);
    expect(sent).toEqual(['idle']);
    a.choose('invisible');
    set('visible');
    expect(sent).toEqual(['idle']);
  });

  it('stops listening', () => {
    const { doc, set, listeners } = fakeDoc();
    const sent: Status[] = [];
    const a = startAutoIdle(doc, (s) => sent.push(s), 1000);
    expect(listeners()).toBe(1);
    set('hidden');
    a.stop();
    vi.advanceTimersByTime(2000);
    expect(sent).toEqual([]);
    expect(listeners()).toBe(0);
  });
});
