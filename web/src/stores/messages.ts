// Per-channel message logs. Confirmed messages stay sorted by ID (BigInt order = time
// order) and unique by ID; messages we are still sending live in `pending`, keyed by
// their nonce, until the server's copy (same nonce) replaces them. Pure functions below
// do the merging so they can be unit-tested without React.
//
// A log is one contiguous stretch of history. Usually it ends at the newest message and
// live messages are appended. After a jump to an old message (a search result) it is a
// *detached* window somewhere in the past: live messages are not added (they would sit
// after a gap), pages are added at either end, and when a newer page comes back short
// the window has reached the present and is live again.
import type { Message, Reaction, UserSummary } from '@/api/types';
import { compareIds } from '@/lib/ids';
import { createStore } from './store';

export type PendingStatus = 'sending' | 'queued' | 'failed';

export interface PendingMessage {
  nonce: string;
  channel_id: string;
  content: string;
  reply_to_id: string | null;
  created_at: string;
  author: UserSummary;
  status: PendingStatus;
  error?: string;
  /** Files going with it (names shown while it sends). */
  attachments?: readonly { id: string; filename: string }[];
}

export interface ChannelLog {
  messages: Message[];
  pending: PendingMessage[];
  /** The newest page has been fetched at least once. */
  loaded: boolean;
  /** Older history may exist on the server. */
  hasMoreBefore: boolean;
  /** A window into the past: newer history exists and live messages are not added. */
  detached: boolean;
  /**
   * Bumped each time the log is replaced by another window. A page asked for under an
   * older epoch is dropped: it would join two stretches of history with a gap between.
   */
  epoch: number;
  /** Where the list should go next: a message (`id`) or the bottom (`null`); `seq` tells repeats apart. */
  focus: { id: string | null; seq: number } | null;
}

export type MessagesState = Readonly<Record<string, ChannelLog>>;

export const EMPTY_LOG: ChannelLog = Object.freeze({ messages: [], pending: [], loaded: false, hasMoreBefore: true, detached: false, epoch: 0, focus: null }) as ChannelLog;

export const messagesStore = createStore<MessagesState>({});

/** Index of the first message whose id is >= id (binary search). */
export function lowerBound(list: readonly Message[], id: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareIds(list[mid].id, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inserts or replaces one message, keeping ID order. Returns the same array if nothing changed. */
export function insertMessage(list: readonly Message[], m: Message): Message[] {
  const n = list.length;
  // Common case: the newest message goes to the end.
  if (n === 0 || compareIds(list[n - 1].id, m.id) < 0) return [...list, m];
  const i = lowerBound(list, m.id);
  if (i < n && list[i].id === m.id) {
    if (list[i] === m) return list as Message[];
    const copy = list.slice();
    copy[i] = m;
    return copy;
  }
  const copy = list.slice();
  copy.splice(i, 0, m);
  return copy;
}

/** Merges a batch (any order, maybe overlapping) into a sorted, de-duplicated list. */
export function mergeMessages(list: readonly Message[], incoming: readonly Message[]): Message[] {
  if (incoming.length === 0) return list as Message[];
  const byId = new Map<string, Message>();
  for (const m of list) byId.set(m.id, m);
  for (const m of incoming) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => compareIds(a.id, b.id));
}

function log(state: MessagesState, channelId: string): ChannelLog {
  return state[channelId] ?? EMPTY_LOG;
}

function withLog(state: MessagesState, channelId: string, next: ChannelLog): MessagesState {
  return { ...state, [channelId]: next };
}

/** MESSAGE_CREATE or a POST answer: add it once, and retire the pending copy with the same nonce. */
export function applyCreate(state: MessagesState, m: Message): MessagesState {
  const l = log(state, m.channel_id);
  const pending = m.nonce ? l.pending.filter((p) => p.nonce !== m.nonce) : l.pending;
  // A detached window does not reach the present: the message belongs after a gap. The
  // window pages forward to it (or the user jumps to the present) instead.
  if (l.detached) return pending === l.pending ? state : withLog(state, m.channel_id, { ...l, pending });
  let messages = l.messages;
  // Same nonce from the same author already confirmed under another id: never show twice.
  const dupByNonce =
    m.nonce != null && !messages.some((x) => x.id === m.id) && messages.some((x) => x.nonce === m.nonce && x.author.id === m.author.id);
  if (!dupByNonce) messages = insertMessage(messages, m);
  if (messages === l.messages && pending === l.pending) return state;
  return withLog(state, m.channel_id, { ...l, messages, pending });
}

/** MESSAGE_UPDATE: the event may carry the whole message or only changed fields. */
export function applyUpdate(state: MessagesState, patch: Partial<Message> & { id: string; channel_id: string }): MessagesState {
  const l = state[patch.channel_id];
  if (!l) return state;
  const i = lowerBound(l.messages, patch.id);
  if (i >= l.messages.length || l.messages[i].id !== patch.id) return state;
  const messages = l.messages.slice();
  messages[i] = { ...messages[i], ...patch } as Message;
  return withLog(state, patch.channel_id, { ...l, messages });
}

export function applyDelete(state: MessagesState, channelId: string, id: string): MessagesState {
  const l = state[channelId];
  if (!l) return state;
  const i = lowerBound(l.messages, id);
  if (i >= l.messages.length || l.messages[i].id !== id) return state;
  const messages = l.messages.slice();
  messages.splice(i, 1);
  return withLog(state, channelId, { ...l, messages });
}

/** MESSAGE_DELETE_BULK: drops every listed id from the channel's log in one update. */
export function applyDeleteMany(state: MessagesState, channelId: string, ids: readonly string[]): MessagesState {
  const l = state[channelId];
  if (!l || ids.length === 0) return state;
  const gone = new Set(ids);
  const messages = l.messages.filter((m) => !gone.has(m.id));
  if (messages.length === l.messages.length) return state;
  return withLog(state, channelId, { ...l, messages });
}

export interface ReactionEvent {
  channel_id: string;
  message_id: string;
  user_id: string;
  emoji: string;
}

/** REACTION_ADD / REACTION_REMOVE. Our own reaction is idempotent (we may have applied it optimistically). */
export function applyReaction(state: MessagesState, ev: ReactionEvent, meId: string | null, add: boolean): MessagesState {
  const l = state[ev.channel_id];
  if (!l) return state;
  const i = lowerBound(l.messages, ev.message_id);
  const msg = l.messages[i];
  if (!msg || msg.id !== ev.message_id) return state;
  const mine = ev.user_id === meId;
  const reactions: Reaction[] = msg.reactions ? msg.reactions.slice() : [];
  const j = reactions.findIndex((r) => r.emoji === ev.emoji);
  const cur = j >= 0 ? reactions[j] : { emoji: ev.emoji, count: 0, me: false };
  if (mine && cur.me === add) return state;
  const next = { ...cur, count: Math.max(0, cur.count + (add ? 1 : -1)), me: mine ? add : cur.me };
  if (j >= 0) {
    if (next.count === 0) reactions.splice(j, 1);
    else reactions[j] = next;
  } else if (next.count > 0) reactions.push(next);
  const messages = l.messages.slice();
  messages[i] = { ...msg, reactions };
  return withLog(state, ev.channel_id, { ...l, messages });
}

/** Pending copies whose nonce came back in a page are retired. */
function retirePending(pending: PendingMessage[], page: readonly Message[]): PendingMessage[] {
  const nonces = new Set(page.map((m) => m.nonce).filter(Boolean));
  return nonces.size ? pending.filter((p) => !nonces.has(p.nonce)) : pending;
}

/**
 * A page of history: `before` pages are newest-first from the server; order does not matter here.
 * `epoch` is the log's epoch when the page was asked for: a page for a replaced window is dropped.
 */
export function applyPage(state: MessagesState, channelId: string, page: readonly Message[], opts: { older?: boolean; limit?: number; initial?: boolean; epoch?: number }): MessagesState {
  const l = log(state, channelId);
  if (opts.epoch !== undefined && opts.epoch !== l.epoch) return state;
  // The newest page never goes into a window of the past (that would leave a gap).
  if (opts.initial && l.detached) return state;
  const messages = mergeMessages(l.messages, page);
  let hasMoreBefore = l.hasMoreBefore;
  if (opts.older || opts.initial) hasMoreBefore = page.length >= (opts.limit ?? 50);
  return withLog(state, channelId, { ...l, messages, pending: retirePending(l.pending, page), loaded: l.loaded || !!opts.initial, hasMoreBefore });
}

/**
 * `messages?around=<target>`: the log becomes a window centred on the target (whatever it
 * held is dropped). The server sends ceil(limit/2) messages up to and including the target
 * and floor(limit/2) after it; a short newer half means the window reaches the present, so
 * it is live at once (the caller then fetches what came meanwhile). A count that is off
 * only costs one more page request, never a gap.
 */
export function applyAround(state: MessagesState, channelId: string, page: readonly Message[], opts: { limit: number; targetId: string; seq: number }): MessagesState {
  const l = log(state, channelId);
  const half = Math.floor(opts.limit / 2);
  const newer = page.filter((m) => compareIds(m.id, opts.targetId) > 0).length;
  const older = page.length - newer;
  return withLog(state, channelId, {
    messages: mergeMessages([], page),
    pending: retirePending(l.pending, page),
    loaded: true,
    hasMoreBefore: older >= Math.max(1, half),
    detached: newer >= Math.max(1, half),
    epoch: l.epoch + 1,
    focus: { id: opts.targetId, seq: opts.seq },
  });
}

/**
 * A page after the newest message of a detached window (`after` pages come oldest first).
 * A short page means it reached the present: the window is live again.
 */
export function applyNewer(state: MessagesState, channelId: string, page: readonly Message[], opts: { limit: number; epoch: number }): MessagesState {
  const l = state[channelId];
  if (!l || l.epoch !== opts.epoch || !l.detached) return state;
  return withLog(state, channelId, {
    ...l,
    messages: mergeMessages(l.messages, page),
    pending: retirePending(l.pending, page),
    detached: page.length >= opts.limit,
  });
}

/** "Jump to present": the newest page replaces whatever window the log held. */
export function applyPresent(state: MessagesState, channelId: string, page: readonly Message[], opts: { limit: number; seq: number }): MessagesState {
  const l = log(state, channelId);
  return withLog(state, channelId, {
    messages: mergeMessages([], page),
    pending: retirePending(l.pending, page),
    loaded: true,
    hasMoreBefore: page.length >= opts.limit,
    detached: false,
    epoch: l.epoch + 1,
    focus: { id: null, seq: opts.seq },
  });
}

/** The list went where `focus` asked: forget it, so opening the channel again lands as usual. */
export function clearFocus(state: MessagesState, channelId: string, seq: number): MessagesState {
  const l = state[channelId];
  if (!l?.focus || l.focus.seq !== seq) return state;
  return withLog(state, channelId, { ...l, focus: null });
}

/** Asks the list to scroll to a message it already holds. */
export function setFocus(state: MessagesState, channelId: string, id: string | null, seq: number): MessagesState {
  const l = state[channelId];
  if (!l) return state;
  return withLog(state, channelId, { ...l, focus: { id, seq } });
}

export function addPending(state: MessagesState, p: PendingMessage): MessagesState {
  const l = log(state, p.channel_id);
  if (l.pending.some((x) => x.nonce === p.nonce)) return state;
  return withLog(state, p.channel_id, { ...l, pending: [...l.pending, p] });
}

export function updatePending(state: MessagesState, channelId: string, nonce: string, patch: Partial<PendingMessage>): MessagesState {
  const l = state[channelId];
  if (!l) return state;
  const i = l.pending.findIndex((p) => p.nonce === nonce);
  if (i < 0) return state;
  const pending = l.pending.slice();
  pending[i] = { ...pending[i], ...patch };
  return withLog(state, channelId, { ...l, pending });
}

export function removePending(state: MessagesState, channelId: string, nonce: string): MessagesState {
  const l = state[channelId];
  if (!l || !l.pending.some((p) => p.nonce === nonce)) return state;
  return withLog(state, channelId, { ...l, pending: l.pending.filter((p) => p.nonce !== nonce) });
}

export function dropChannel(state: MessagesState, channelId: string): MessagesState {
  if (!(channelId in state)) return state;
  const next = { ...state };
  delete next[channelId];
  return next;
}

export function newestId(l: ChannelLog | undefined): string | null {
  if (!l || l.messages.length === 0) return null;
  return l.messages[l.messages.length - 1].id;
}

export function findMessage(state: MessagesState, channelId: string, id: string): Message | undefined {
  const l = state[channelId];
  if (!l) return undefined;
  const i = lowerBound(l.messages, id);
  return l.messages[i]?.id === id ? l.messages[i] : undefined;
}
