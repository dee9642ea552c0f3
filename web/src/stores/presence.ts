// Presence dots and "X is typing…". Typing entries expire on their own (the server
// sends TYPING_START only; a client re-sends every ~8 s while typing).
import type { PresenceStatus } from '@/api/types';
import { createStore } from './store';

export const presenceStore = createStore<Readonly<Record<string, PresenceStatus>>>({});

export const TYPING_TTL_MS = 10_000;

/** channel id -> user id -> expiry (ms epoch). */
export const typingStore = createStore<Readonly<Record<string, Readonly<Record<string, number>>>>>({});

export function setPresence(userId: string, status: PresenceStatus) {
  presenceStore.set((s) => (s[userId] === status ? s : { ...s, [userId]: status }));
}

export function startTyping(channelId: string, userId: string, now = Date.now()) {
  typingStore.set((s) => ({ ...s, [channelId]: { ...(s[channelId] ?? {}), [userId]: now + TYPING_TTL_MS } }));
}

export function stopTyping(channelId: string, userId: string) {
  typingStore.set((s) => {
    if (!s[channelId]?.[userId]) return s;
    const c = { ...s[channelId] };
    delete c[userId];
    return { ...s, [channelId]: c };
  });
}

/** Drops expired entries; called on a timer. */
export function sweepTyping(now = Date.now()) {
  typingStore.set((s) => {
    let changed = false;
    const next: Record<string, Record<string, number>> = {};
    for (const [ch, users] of Object.entries(s)) {
      const keep: Record<string, number> = {};
      for (const [u, exp] of Object.entries(users)) {
        if (exp > now) keep[u] = exp;
        else changed = true;
      }
      next[ch] = keep;
    }
    return changed ? next : s;
  });
}
