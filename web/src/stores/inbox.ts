// The notifications inbox: the unread count behind the bell (READY's
// `notifications_unread`, then the `unread_count` every NOTIFICATION_* dispatch carries)
// and the entries fetched so far, newest first. The server's count is the truth: a local
// change (marking one read before the PUT answers) is overwritten by the next dispatch.
import type { InboxNotification, NotificationPage, NotificationReadEvent } from '@/api/types';
import { compareIds } from '@/lib/ids';
import { createStore } from './store';

export interface InboxState {
  unread: number;
  /** Newest first, unique by id. */
  items: readonly InboxNotification[];
  /** Where the next older page starts; null once the last page is in. */
  nextBefore: string | null;
  /** The first page for `unreadOnly` has been fetched (and nothing since made it stale). */
  loaded: boolean;
  unreadOnly: boolean;
}

export const EMPTY_INBOX: InboxState = Object.freeze({ unread: 0, items: [], nextBefore: null, loaded: false, unreadOnly: false }) as InboxState;

export const inboxStore = createStore<InboxState>(EMPTY_INBOX);

/**
 * READY: a new gateway session. Entries fetched before may have changed while we were
 * away, so the list is fetched again when next shown; the filter choice stays.
 */
export function fromReady(s: InboxState, unread: number): InboxState {
  return { ...EMPTY_INBOX, unreadOnly: s.unreadOnly, unread: Math.max(0, unread) };
}

export function setUnread(s: InboxState, unread: number): InboxState {
  const n = Math.max(0, unread);
  return n === s.unread ? s : { ...s, unread: n };
}

/** Inserts or replaces entries, keeping newest-first id order. */
export function mergeItems(list: readonly InboxNotification[], incoming: readonly InboxNotification[]): InboxNotification[] {
  if (incoming.length === 0) return list as InboxNotification[];
  const byId = new Map<string, InboxNotification>();
  for (const n of list) byId.set(n.id, n);
  for (const n of incoming) byId.set(n.id, n);
  return [...byId.values()].sort((a, b) => compareIds(b.id, a.id));
}

/** A fetched page: the first replaces what was listed (the filter may have changed), later ones append. */
export function applyPage(s: InboxState, page: NotificationPage, opts: { first: boolean; unreadOnly: boolean }): InboxState {
  const items = mergeItems(opts.first ? [] : s.items, page.notifications ?? []);
  return { ...s, items, nextBefore: page.next_before ?? null, loaded: true, unreadOnly: opts.unreadOnly, unread: Math.max(0, page.unread_count ?? s.unread) };
}

/**
 * NOTIFICATION_CREATE. Listed only once the inbox has a first page (otherwise that
 * fetch brings it); the count is the server's when it sends one.
 */
export function applyCreate(s: InboxState, n: InboxNotification, unreadCount?: number | null): InboxState {
  const known = s.items.some((x) => x.id === n.id);
  const unread = typeof unreadCount === 'number' ? Math.max(0, unreadCount) : known || n.read ? s.unread : s.unread + 1;
  const items = s.loaded && !known ? mergeItems(s.items, [n]) : s.items;
  if (items === s.items && unread === s.unread) return s;
  return { ...s, items, unread };
}

/** Marks the matching entries read; `read(n)` decides which. */
function markRead(s: InboxState, read: (n: InboxNotification) => boolean): { items: readonly InboxNotification[]; changed: number } {
  let changed = 0;
  const items = s.items.map((n) => {
    if (n.read || !read(n)) return n;
    changed++;
    return { ...n, read: true };
  });
  return { items: changed ? items : s.items, changed };
}

/**
 * NOTIFICATION_READ: every one (`all`), else the ids when it lists them (reading a channel
 * up to a message reads only those), else the channel's; then the server's count.
 */
export function applyRead(s: InboxState, ev: NotificationReadEvent): InboxState {
  const ids = new Set((ev.ids ?? []).map(String));
  const read = ev.all ? () => true : ids.size > 0 ? (n: InboxNotification) => ids.has(n.id) : (n: InboxNotification) => !!ev.channel_id && n.channel_id === ev.channel_id;
  const { items } = markRead(s, read);
  const unread = typeof ev.unread_count === 'number' ? Math.max(0, ev.unread_count) : s.unread;
  if (items === s.items && unread === s.unread) return s;
  return { ...s, items, unread };
}

/** Our own click, before the PUT answers: shown read at once, one fewer unread. */
export function markOneRead(s: InboxState, id: string): InboxState {
  const { items, changed } = markRead(s, (n) => n.id === id);
  if (!changed) return s;
  return { ...s, items, unread: Math.max(0, s.unread - changed) };
}

/** "Mark all read", before the PUT answers. */
export function markAllRead(s: InboxState): InboxState {
  const { items } = markRead(s, () => true);
  if (items === s.items && s.unread === 0) return s;
  return { ...s, items, unread: 0 };
}

/** Drops the listed entries `drop` picks, lowering the count by the unread ones among them. */
function dropWhere(s: InboxState, drop: (n: InboxNotification) => boolean): InboxState {
  let unreadGone = 0;
  const items = s.items.filter((n) => {
    const d = drop(n);
    if (d && !n.read) unreadGone++;
    return !d;
  });
  if (items.length === s.items.length) return s;
  return { ...s, items, unread: Math.max(0, s.unread - unreadGone) };
}

/**
 * Messages were deleted: their notifications go away on the server. No dispatch says so,
 * so listed entries are dropped here and the count lowered for the unread ones we knew of
 * (the next dispatch or fetch brings the exact count).
 */
export function dropMessages(s: InboxState, channelId: string, messageIds: readonly string[]): InboxState {
  if (s.items.length === 0 || messageIds.length === 0) return s;
  const gone = new Set(messageIds);
  return dropWhere(s, (n) => n.channel_id === channelId && !!n.message && gone.has(n.message.id));
}

/** Channels we can no longer see (or left with their community): the server stops listing and counting them. */
export function dropChannels(s: InboxState, channelIds: readonly string[]): InboxState {
  if (s.items.length === 0 || channelIds.length === 0) return s;
  const gone = new Set(channelIds);
  return dropWhere(s, (n) => gone.has(n.channel_id));
}

/** The filter changed: the list must be fetched again for it. */
export function setUnreadOnly(s: InboxState, unreadOnly: boolean): InboxState {
  if (s.unreadOnly === unreadOnly) return s;
  return { ...s, unreadOnly, items: [], nextBefore: null, loaded: false };
}

/** Text for the bell's badge: "99+" past 99, nothing at 0. */
export function badgeText(unread: number): string {
  if (unread <= 0) return '';
  return unread > 99 ? '99+' : String(unread);
}
