// What the user is typing, per channel, and the last error shown above the composer.
// Failed sends put their text back here so nothing typed is ever lost.
import { createStore } from './store';

export interface DraftsState {
  text: Readonly<Record<string, string>>;
  error: Readonly<Record<string, string | null>>;
  /** Slowmode: when (ms since epoch) we may send in a channel again, from a 429's retry_after_ms. */
  cooldown: Readonly<Record<string, number>>;
}

export const draftsStore = createStore<DraftsState>({ text: {}, error: {}, cooldown: {} });

export function setCooldown(channelId: string, until: number | null) {
  draftsStore.set((s) => {
    const cooldown = { ...s.cooldown };
    if (until === null) delete cooldown[channelId];
    else cooldown[channelId] = until;
    return { ...s, cooldown };
  });
}

export function setDraft(channelId: string, text: string) {
  draftsStore.set((s) => (s.text[channelId] === text ? s : { ...s, text: { ...s.text, [channelId]: text } }));
}

export function setComposerError(channelId: string, error: string | null) {
  draftsStore.set((s) => (s.error[channelId] === error ? s : { ...s, error: { ...s.error, [channelId]: error } }));
}

/** Puts failed text back without clobbering something new the user started typing. */
export function restoreDraft(channelId: string, text: string) {
  draftsStore.set((s) => {
    const cur = s.text[channelId] ?? '';
    const next = cur.trim() ? `${text}\n${cur}` : text;
    return { ...s, text: { ...s.text, [channelId]: next } };
  });
}
