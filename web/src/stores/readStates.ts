// Unread markers and mention counts. A channel is unread when its newest message ID is
// above our last-read ID. Mention counts come from the server (READY, READ_STATE_UPDATE)
// and are bumped locally for live messages that mention us in channels we aren't reading.
import type { Message, ReadState } from '@/api/types';
import { compareIds, maxId } from '@/lib/ids';
import { createStore } from './store';

export interface ReadEntry {
  last_read_id: string | null;
  mention_count: number;
}

export interface ReadStatesState {
  byChannel: Readonly<Record<string, ReadEntry>>;
  /** Newest message ID known per channel (from READY's channels and live events). */
  lastMessage: Readonly<Record<string, string>>;
}

export const readStatesStore = createStore<ReadStatesState>({ byChannel: {}, lastMessage: {} });

const NONE: ReadEntry = { last_read_id: null, mention_count: 0 };

export function entry(s: ReadStatesState, channelId: string): ReadEntry {
  return s.byChannel[channelId] ?? NONE;
}

export function isUnread(s: ReadStatesState, channelId: string): boolean {
  const last = s.lastMessage[channelId];
  if (!last) return false;
  const read = s.byChannel[channelId]?.last_read_id;
  return !read || compareIds(last, read) > 0;
}

export function mentionCount(s: ReadStatesState, channelId: string): number {
  return s.byChannel[channelId]?.mention_count ?? 0;
}

/** Replaces everything from READY (read_states + each channel's last_message_id). */
export function fromReady(readStates: readonly ReadState[], lastMessageIds: Record<string, string>): ReadStatesState {
  const byChannel: Record<string, ReadEntry> = {};
  for (const r of readStates) byChannel[r.channel_id] = { last_read_id: r.last_read_id ?? null, mention_count: r.mention_count ?? 0 };
  return { byChannel, lastMessage: { ...lastMessageIds } };
}

/** READ_STATE_UPDATE (e.g. we read the channel on another device) or our own ack. */
export function applyReadState(s: ReadStatesState, r: ReadState): ReadStatesState {
  const cur = entry(s, r.channel_id);
  // Never move the marker backwards: events from two devices can cross.
  if (cur.last_read_id && r.last_read_id && compareIds(r.last_read_id, cur.last_read_id) < 0) return s;
  const last = r.last_read_id ?? cur.last_read_id;
  const mentions = r.mention_count ?? 0;
  if (last === cur.last_read_id && mentions === cur.mention_count && s.byChannel[r.channel_id]) return s;
  return { ...s, byChannel: { ...s.byChannel, [r.channel_id]: { last_read_id: last, mention_count: mentions } } };
}

/** We have seen everything up to messageId in this channel. */
export function ack(s: ReadStatesState, channelId: string, messageId: string): ReadStatesState {
  return applyReadState(s, { channel_id: channelId, last_read_id: messageId, mention_count: 0 });
}

export interface Me {
  id: string;
  roleIds?: readonly string[];
}

export function mentionsMe(m: Pick<Message, 'mentions' | 'content'> & Partial<Pick<Message, 'mention_roles' | 'mention_everyone'>>, me: Me): boolean {
  if (m.mentions?.includes(me.id)) return true;
  if (m.mention_everyone) return true;
  if (m.mention_roles?.some((r) => me.roleIds?.includes(r))) return true;
  const c = m.content ?? '';
  if (c.includes(`<@${me.id}>`) || c.includes(`<@!${me.id}>`)) return true;
  if (/(^|[^\w`])@everyone\b/.test(c)) return true;
  return !!me.roleIds?.some((r) => c.includes(`<@&${r}>`));
}

/**
 * A live MESSAGE_CREATE. `reading` is true when the user is looking at the channel right
 * now (it is open, scrolled to the bottom and the tab is focused): then it stays read.
 */
export function onMessage(s: ReadStatesState, m: Message, me: Me, opts: { reading: boolean; isDm?: boolean }): ReadStatesState {
  const prev = s.lastMessage[m.channel_id];
  const lastMessage = !prev || compareIds(m.id, prev) > 0 ? { ...s.lastMessage, [m.channel_id]: m.id } : s.lastMessage;
  let next: ReadStatesState = lastMessage === s.lastMessage ? s : { ...s, lastMessage };
  if (m.author.id === me.id || opts.reading) return ack(next, m.channel_id, maxId(m.id, prev) ?? m.id);
  const cur = entry(next, m.channel_id);
  // Already read past it (late duplicate): don't count it.
  if (cur.last_read_id && compareIds(m.id, cur.last_read_id) <= 0) return next;
  if (opts.isDm || mentionsMe(m, me)) {
    next = { ...next, byChannel: { ...next.byChannel, [m.channel_id]: { ...cur, mention_count: cur.mention_count + 1 } } };
  }
  return next;
}

/** Total mentions across a set of channels (for the community icon badge). */
export function sumMentions(s: ReadStatesState, channelIds: readonly string[]): number {
  let n = 0;
  for (const id of channelIds) n += s.byChannel[id]?.mention_count ?? 0;
  return n;
}

export function anyUnread(s: ReadStatesState, channelIds: readonly string[]): boolean {
  return channelIds.some((id) => isUnread(s, id));
}

/** Records a channel's newest message ID without touching read markers or mentions. */
export function noteLastMessage(s: ReadStatesState, channelId: string, id: string): ReadStatesState {
  const prev = s.lastMessage[channelId];
  if (prev && compareIds(prev, id) >= 0) return s;
  return { ...s, lastMessage: { ...s.lastMessage, [channelId]: id } };
}
