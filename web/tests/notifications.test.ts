// Notifications: the inbox store (unread count from READY and the NOTIFICATION_*
// dispatches, pages merged newest first), settings resolution and how it is put into
// words, the REST bodies the settings screens send, and the client's dispatch wiring.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { InboxNotification, Message, NotificationPage, NotificationSettings } from '@/api/types';
import { setAuthHandlers, setBaseUrl } from '@/lib/api';
import { HearthClient } from '@/lib/client';
import {
  DELETED_PREVIEW,
  FOREVER_MS,
  channelBody,
  communityBody,
  describeKind,
  describeMute,
  describeResolved,
  loadInbox,
  loadOlderInbox,
  mentionedRole,
  mutedUntilFor,
  placeText,
  previewText,
  readAllNotifications,
  readNotification,
  refreshUnreadCount,
  resetChannelSettings,
  saveAccountSettings,
  saveChannelSettings,
  saveCommunitySettings,
  setInboxUnreadOnly,
  startMuteClock,
} from '@/lib/notifications';
import * as I from '@/stores/inbox';
import * as S from '@/stores/notificationSettings';
import { messagesStore } from '@/stores/messages';

const bob = { id: '2', username: 'bob', display_name: 'Bob', avatar_url: null };
const message = (id: string, extra: Partial<Message> = {}): Message => ({
  id,
  channel_id: '50',
  community_id: '9',
  author: bob,
  content: `hey <@1> ${id}`,
  created_at: '2025-06-01T00:00:00Z',
  edited_at: null,
  reply_to_id: null,
  mentions: ['1'],
  mention_roles: [],
  mention_everyone: false,
  attachments: [],
  embeds: [],
  reactions: [],
  pinned: false,
  nonce: null,
  ...extra,
});
const note = (id: string, extra: Partial<InboxNotification> = {}): InboxNotification => ({
  id,
  kind: 'mention',
  channel_id: '50',
  community_id: '9',
  message: message(`${id}00`),
  created_at: '2025-06-01T00:00:00Z',
  read: false,
  ...extra,
});
const page = (notifications: InboxNotification[], unread_count: number, next_before: string | null = null): NotificationPage => ({ notifications, unread_count, next_before });
const ids = (s: I.InboxState) => s.items.map((n) => n.id);

describe('inbox store', () => {
  it('takes the unread count from READY and keeps the filter, forgetting listed entries', () => {
    let s = I.applyPage(I.EMPTY_INBOX, page([note('1')], 1), { first: true, unreadOnly: true });
    s = I.fromReady(s, 4);
    expect(s).toEqual({ ...I.EMPTY_INBOX, unread: 4, unreadOnly: true });
    expect(I.fromReady(s, -3).unread).toBe(0);
  });

  it('NOTIFICATION_CREATE: the server count wins; listed only once a first page is in', () => {
    let s = I.fromReady(I.EMPTY_INBOX, 2);
    s = I.applyCreate(s, note('10'), 3);
    expect(s.unread).toBe(3);
    expect(s.items).toEqual([]);
    s = I.applyPage(s, page([note('10'), note('8')], 3), { first: true, unreadOnly: false });
    s = I.applyCreate(s, note('12'), 4);
    expect(ids(s)).toEqual(['12', '10', '8']);
    expect(s.unread).toBe(4);
    // A redelivery with no count changes nothing; a new one without a count adds one.
    expect(I.applyCreate(s, note('12'))).toBe(s);
    expect(I.applyCreate(s, note('13')).unread).toBe(5);
  });

  it('orders by snowflake value, not by string', () => {
    let s = I.applyPage(I.EMPTY_INBOX, page([note('9'), note('10')], 2), { first: true, unreadOnly: false });
    s = I.applyCreate(s, note('9007199254740993'), 3);
    expect(ids(s)).toEqual(['9007199254740993', '10', '9']);
  });

  it('NOTIFICATION_READ by ids, by channel and for all, with the server count', () => {
    const first = I.applyPage(I.EMPTY_INBOX, page([note('3'), note('2', { channel_id: '51' }), note('1')], 3), { first: true, unreadOnly: false });
    let s = I.applyRead(first, { ids: ['3'], channel_id: null, all: false, unread_count: 2 });
    expect(s.items.map((n) => n.read)).toEqual([true, false, false]);
    expect(s.unread).toBe(2);
    s = I.applyRead(s, { ids: [], channel_id: '51', all: false, unread_count: 1 });
    expect(s.items.map((n) => n.read)).toEqual([true, true, false]);
    s = I.applyRead(s, { all: true, unread_count: 0 });
    expect(s.items.every((n) => n.read)).toBe(true);
    expect(s.unread).toBe(0);
    // The count is the server's even when nothing listed matched.
    expect(I.applyRead(first, { ids: ['99'], unread_count: 7 }).unread).toBe(7);
    // Reading a channel up to a message names the ones it read: a newer one stays unread.
    const upTo = I.applyRead(first, { ids: ['1'], channel_id: '50', all: false, unread_count: 2 });
    expect(upTo.items.map((n) => n.read)).toEqual([false, false, true]);
  });

  it('marking one read locally lowers the count once; mark all read zeroes it', () => {
    let s = I.applyPage(I.EMPTY_INBOX, page([note('3'), note('2')], 5), { first: true, unreadOnly: false });
    s = I.markOneRead(s, '3');
    expect(s.unread).toBe(4);
    expect(I.markOneRead(s, '3')).toBe(s);
    expect(I.markOneRead(s, 'unknown')).toBe(s);
    s = I.markAllRead(s);
    expect(s.unread).toBe(0);
    expect(s.items.every((n) => n.read)).toBe(true);
  });

  it('pages: the first replaces, older ones append without duplicates, next_before follows', () => {
    let s = I.applyPage(I.EMPTY_INBOX, page([note('30'), note('29')], 9, '29'), { first: true, unreadOnly: false });
    expect(s.nextBefore).toBe('29');
    // A notification created between the two fetches shifts the second page by one.
    s = I.applyPage(s, page([note('29'), note('28'), note('27')], 9, null), { first: false, unreadOnly: false });
    expect(ids(s)).toEqual(['30', '29', '28', '27']);
    expect(s.nextBefore).toBeNull();
    s = I.applyPage(s, page([note('31')], 1, null), { first: true, unreadOnly: true });
    expect(ids(s)).toEqual(['31']);
    expect(s.unreadOnly).toBe(true);
  });

  it('changing the filter empties the list until it is fetched again', () => {
    const s = I.applyPage(I.EMPTY_INBOX, page([note('1')], 1, '1'), { first: true, unreadOnly: false });
    const t = I.setUnreadOnly(s, true);
    expect(t).toMatchObject({ items: [], loaded: false, nextBefore: null, unreadOnly: true, unread: 1 });
    expect(I.setUnreadOnly(t, true)).toBe(t);
  });

  it('deleted messages and channels we lost drop their entries, and the unread among them from the count', () => {
    let s = I.applyPage(I.EMPTY_INBOX, page([note('3'), note('2', { read: true }), note('1', { channel_id: '51' })], 2), { first: true, unreadOnly: false });
    s = I.dropMessages(s, '50', ['300', '200']);
    expect(ids(s)).toEqual(['1']);
    expect(s.unread).toBe(1);
    expect(I.dropMessages(s, '50', ['100'])).toBe(s);
    s = I.dropChannels(s, ['51']);
    expect(s.items).toEqual([]);
    expect(s.unread).toBe(0);
  });

  it('badge text', () => {
    expect(I.badgeText(0)).toBe('');
    expect(I.badgeText(7)).toBe('7');
    expect(I.badgeText(100)).toBe('99+');
  });
});

const settings = (extra: Partial<NotificationSettings> = {}): NotificationSettings => ({
  level: 'mentions',
  suppress_everyone: false,
  push_previews: true,
  email_digest: true,
  communities: [],
  channels: [],
  ...extra,
});
const NOW = Date.parse('2025-06-01T12:00:00Z');
const inMinutes = (m: number) => new Date(NOW + m * 60_000).toISOString();

describe('settings resolution', () => {
  it('channel over community over account; DMs default to all', () => {
    let s = S.fromServer(settings({ level: 'nothing' }));
    const ch = { channelId: '50', communityId: '9' };
    expect(S.resolve(s, ch, NOW)).toMatchObject({ level: 'nothing', from: 'account', muted: false });
    s = S.putCommunity(s, { community_id: '9', level: 'all', muted_until: null, suppress_everyone: null });
    expect(S.resolve(s, ch, NOW)).toMatchObject({ level: 'all', from: 'community' });
    s = S.putChannel(s, { channel_id: '50', level: 'mentions', muted_until: null });
    expect(S.resolve(s, ch, NOW)).toMatchObject({ level: 'mentions', from: 'channel' });
    // A null level inherits even when the entry exists.
    s = S.putChannel(s, { channel_id: '50', level: null, muted_until: null });
    expect(S.resolve(s, ch, NOW)).toMatchObject({ level: 'all', from: 'community' });
    // A DM does not inherit the account's "nothing".
    expect(S.resolve(s, { channelId: '70', communityId: null }, NOW)).toMatchObject({ level: 'all', from: 'dm_default' });
    expect(S.resolve(S.clearCommunity(s, '9'), ch, NOW)).toMatchObject({ level: 'nothing', from: 'account' });
  });

  it('a future mute on the channel or its community silences it; a past one does not', () => {
    let s = S.fromServer(settings({ communities: [{ community_id: '9', level: null, muted_until: inMinutes(60), suppress_everyone: true }] }));
    const r = S.resolve(s, { channelId: '50', communityId: '9' }, NOW);
    expect(r).toMatchObject({ muted: true, mutedBy: 'community', mutedUntil: inMinutes(60), suppressEveryone: true });
    expect(S.resolve(s, { channelId: '50', communityId: '9' }, NOW + 61 * 60_000).muted).toBe(false);
    s = S.putChannel(s, { channel_id: '50', level: 'all', muted_until: inMinutes(15) });
    expect(S.resolve(s, { channelId: '50', communityId: '9' }, NOW)).toMatchObject({ level: 'all', muted: true, mutedBy: 'channel', mutedUntil: inMinutes(15) });
    expect(S.channelMuted(s, '50', NOW)).toBe(true);
    expect(S.communityMuted(s, '9', NOW)).toBe(true);
    expect(S.channelMuted(s, '51', NOW)).toBe(false);
    expect(S.resolveCommunity(s, '9', NOW)).toMatchObject({ level: 'mentions', from: 'account', muted: true });
    expect(S.nextMuteEnd(s, NOW)).toBe(NOW + 15 * 60_000);
    expect(S.nextMuteEnd(s, NOW + 16 * 60_000)).toBe(NOW + 60 * 60_000);
    expect(S.nextMuteEnd(s, NOW + 2 * 3600_000)).toBeNull();
  });

  it('a PATCH answer replaces the account part (and the overrides when it carries them)', () => {
    const s = S.fromServer(settings({ channels: [{ channel_id: '50', level: 'nothing', muted_until: null }] }));
    const t = S.applyAccount(s, { level: 'all', suppress_everyone: true, push_previews: false, email_digest: false });
    expect(t.account).toEqual({ level: 'all', suppress_everyone: true, push_previews: false, email_digest: false });
    expect(t.channels['50']?.level).toBe('nothing');
    expect(S.applyAccount(s, settings({ level: 'all' })).channels).toEqual({});
  });

  it('the mute clock re-renders readers when a mute ends', () => {
    vi.useFakeTimers();
    try {
      vi.setSystemTime(NOW);
      S.notificationSettingsStore.set(S.fromServer(settings({ channels: [{ channel_id: '50', level: null, muted_until: inMinutes(15) }] })));
      const seen: boolean[] = [];
      const off = S.notificationSettingsStore.subscribe(() => seen.push(S.channelMuted(S.notificationSettingsStore.get(), '50')));
      const stop = startMuteClock();
      vi.advanceTimersByTime(14 * 60_000);
      expect(seen).toEqual([]);
      vi.advanceTimersByTime(2 * 60_000);
      expect(seen).toEqual([false]);
      stop();
      off();
    } finally {
      vi.useRealTimers();
      S.notificationSettingsStore.set(S.EMPTY_SETTINGS);
    }
  });
});

describe('words', () => {
  it('says what the author did', () => {
    expect(describeKind('mention')).toBe('mentioned you');
    expect(describeKind('role_mention', 'Mods')).toBe('mentioned @Mods');
    expect(describeKind('role_mention')).toBe('mentioned a role of yours');
    expect(describeKind('everyone')).toBe('mentioned @everyone');
    expect(describeKind('reply')).toBe('replied to you');
    expect(describeKind('dm')).toBe('sent you a direct message');
    expect(describeKind('message')).toBe('sent a new message');
    expect(describeKind('future_kind')).toBe('sent a message');
  });

  it('finds which of our roles a role mention named', () => {
    const roles = [
      { id: '7', name: 'Mods' },
      { id: '8', name: 'Crew' },
    ] as never;
    expect(mentionedRole({ mention_roles: ['8'], content: '' }, ['7', '8'], roles)?.name).toBe('Crew');
    expect(mentionedRole({ mention_roles: [], content: 'hi <@&7>' }, ['7'], roles)?.name).toBe('Mods');
    expect(mentionedRole({ mention_roles: ['8'], content: '' }, ['7'], roles)).toBeNull();
    expect(mentionedRole(null, ['7'], roles)).toBeNull();
  });

  it('previews a message on one line with names for mention tokens, cut with an ellipsis', () => {
    const names = { users: { '1': { username: 'ann', display_name: null }, '2': { username: 'bob', display_name: 'Bob' } }, roles: [{ id: '7', name: 'Mods' }], channels: { '50': { name: 'general' } } };
    const m = (content: string) => ({ content, attachments: [] });
    expect(previewText(m('hey <@1> and <@!2>, ask <@&7> in <#50>'), names)).toBe('hey @ann and @Bob, ask @Mods in #general');
    expect(previewText(m('**bold** and `code`\n> quoted\n\nnext'), names)).toBe('bold and code quoted next');
    expect(previewText(m('<@99>'), names)).toBe('@someone');
    expect(previewText(m(''), names)).toBe('(no text)');
    expect(previewText({ content: '', attachments: [{}] as never }, names)).toBe('An attachment');
    expect(previewText(null, names)).toBe(DELETED_PREVIEW);
    const long = previewText(m('😀'.repeat(200)), names, 10);
    expect([...long]).toHaveLength(10);
    expect(long.endsWith('…')).toBe(true);
  });

  it('names the place', () => {
    expect(placeText({ community_id: '9' }, 'general', 'Town')).toBe('#general · Town');
    expect(placeText({ community_id: '9' }, null, null)).toBe('a channel');
    expect(placeText({ community_id: null }, 'Bob, Cat', null)).toBe('Bob, Cat');
    expect(placeText({ community_id: null }, null, null)).toBe('Direct message');
  });

  it('mute durations: "until I turn it back on" stays within the server\'s year', () => {
    expect(mutedUntilFor('15m', NOW)).toBe(inMinutes(15));
    expect(mutedUntilFor('8h', NOW)).toBe(inMinutes(480));
    const forever = Date.parse(mutedUntilFor('forever', NOW));
    expect(forever - NOW).toBe(FOREVER_MS);
    expect(forever - NOW).toBeLessThan(365 * 24 * 3600_000);
    expect(describeMute(mutedUntilFor('forever', NOW), NOW)).toBe('Muted until you turn it back on');
    expect(describeMute(inMinutes(-1), NOW)).toBe('Not muted');
    expect(describeMute(null, NOW)).toBe('Not muted');
    expect(describeMute(inMinutes(30), NOW)).toMatch(/^Muted until \d/);
  });

  it('describes what is in force', () => {
    const s = S.fromServer(settings({ communities: [{ community_id: '9', level: 'all', muted_until: null, suppress_everyone: null }] }));
    expect(describeResolved(S.resolve(s, { channelId: '50', communityId: '9' }, NOW), NOW)).toBe("All messages (the community's setting)");
    expect(describeResolved(S.resolve(s, { channelId: '70', communityId: null }, NOW), NOW)).toBe('All messages (the default for direct messages)');
    const muted = S.putCommunity(s, { community_id: '9', level: null, muted_until: mutedUntilFor('forever', NOW), suppress_everyone: null });
    expect(describeResolved(S.resolve(muted, { channelId: '50', communityId: '9' }, NOW), NOW)).toBe('Muted until you turn it back on (the whole community)');
    expect(describeResolved(S.resolve(muted, { channelId: '50', communityId: '8' }, NOW), NOW)).toBe('Only @mentions and replies (your account default)');
  });

  it('override bodies carry every field, null where it inherits', () => {
    expect(communityBody(undefined)).toEqual({ level: null, muted_until: null, suppress_everyone: null });
    expect(communityBody({ level: 'all', suppress_everyone: false })).toEqual({ level: 'all', muted_until: null, suppress_everyone: false });
    expect(channelBody({ channel_id: '5', level: 'nothing', muted_until: null })).toEqual({ level: 'nothing', muted_until: null });
  });
});

describe('calls', () => {
  const calls: { method: string; url: string; body: unknown }[] = [];
  let answer: (method: string, url: URL) => unknown = () => undefined;
  const realFetch = globalThis.fetch;
  beforeEach(() => {
    calls.length = 0;
    setBaseUrl('http://hearth.test');
    setAuthHandlers({ getToken: () => 'tok', refresh: async () => null });
    globalThis.fetch = (async (input: Request) => {
      const text = await input.text();
      const url = new URL(input.url);
      calls.push({ method: input.method, url: url.pathname + url.search, body: text ? JSON.parse(text) : undefined });
      const out = answer(input.method, url);
      return out === undefined ? new Response(null, { status: 204 }) : new Response(JSON.stringify(out), { status: 200, headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    I.inboxStore.set(I.EMPTY_INBOX);
    S.notificationSettingsStore.set(S.EMPTY_SETTINGS);
  });
  afterEach(() => {
    globalThis.fetch = realFetch;
    setBaseUrl('');
  });

  it('a community PUT sends the fields it does not change as they are', async () => {
    S.notificationSettingsStore.set(S.fromServer(settings({ communities: [{ community_id: '9', level: 'all', muted_until: null, suppress_everyone: true }] })));
    answer = () => ({ community_id: '9', level: 'all', muted_until: '2025-06-01T13:00:00.000Z', suppress_everyone: true });
    await saveCommunitySettings('9', { muted_until: '2025-06-01T13:00:00.000Z' });
    expect(calls).toEqual([{ method: 'PUT', url: '/api/v1/users/@me/notification-settings/communities/9', body: { level: 'all', muted_until: '2025-06-01T13:00:00.000Z', suppress_everyone: true } }]);
    expect(S.notificationSettingsStore.get().communities['9']?.muted_until).toBe('2025-06-01T13:00:00.000Z');
    answer = () => ({ channel_id: '50', level: 'nothing', muted_until: null });
    await saveChannelSettings('50', { level: 'nothing' });
    expect(calls[1]).toEqual({ method: 'PUT', url: '/api/v1/users/@me/notification-settings/channels/50', body: { level: 'nothing', muted_until: null } });
  });

  it('a change shows at once; a refused one puts back what was there', async () => {
    S.notificationSettingsStore.set(S.fromServer(settings()));
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const fetchNow = globalThis.fetch;
    globalThis.fetch = (async (req: Request) => {
      await held;
      if (req.method === 'PATCH') return new Response(JSON.stringify({ error: { code: 'invalid_request', message: 'level: unknown', details: {} } }), { status: 400 });
      return fetchNow(req);
    }) as typeof fetch;
    const saving = saveAccountSettings({ level: 'all' });
    expect(S.notificationSettingsStore.get().account.level).toBe('all');
    release();
    await expect(saving).rejects.toThrow();
    expect(S.notificationSettingsStore.get().account.level).toBe('mentions');
    // A reset shows at once too, and stays when the server agrees.
    S.notificationSettingsStore.set(S.fromServer(settings({ channels: [{ channel_id: '50', level: 'nothing', muted_until: null }] })));
    globalThis.fetch = fetchNow;
    await resetChannelSettings('50');
    expect(S.notificationSettingsStore.get().channels).toEqual({});
  });

  it('pages the inbox with before=next_before and the unread filter; a stale answer is dropped', async () => {
    answer = (_m, url) => (url.searchParams.get('before') ? page([note('5')], 3, null) : page([note('7'), note('6')], 3, '6'));
    await loadInbox();
    await loadOlderInbox();
    expect(calls.map((c) => c.url)).toEqual(['/api/v1/notifications?limit=25', '/api/v1/notifications?before=6&limit=25']);
    expect(ids(I.inboxStore.get())).toEqual(['7', '6', '5']);
    // Switch to unread only while the old filter's fetch is still out: its answer loses.
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const fetchNow = globalThis.fetch;
    globalThis.fetch = (async (req: Request) => {
      if (!new URL(req.url).searchParams.get('unread')) await slow;
      return fetchNow(req);
    }) as typeof fetch;
    answer = (_m, url) => (url.searchParams.get('unread') ? page([note('7')], 3, null) : page([note('1')], 3, null));
    const stale = loadInbox();
    setInboxUnreadOnly(true);
    await loadInbox();
    release();
    await stale;
    // The stale fetch reaches the server last, but its answer is not shown.
    expect(calls.slice(-2).map((c) => c.url)).toEqual(['/api/v1/notifications?limit=25&unread=true', '/api/v1/notifications?limit=25']);
    expect(ids(I.inboxStore.get())).toEqual(['7']);
    expect(I.inboxStore.get().unreadOnly).toBe(true);
  });

  it('re-reads the unread count, unless a dispatch changed the inbox meanwhile', async () => {
    I.inboxStore.set(I.fromReady(I.EMPTY_INBOX, 3));
    answer = () => page([], 1, null);
    await refreshUnreadCount();
    expect(calls.map((c) => c.url)).toEqual(['/api/v1/notifications?limit=1&unread=true']);
    expect(I.inboxStore.get().unread).toBe(1);
    answer = () => page([], 0, null);
    const pending = refreshUnreadCount();
    I.inboxStore.set((s) => I.applyCreate(s, note('9'), 2));
    await pending;
    expect(I.inboxStore.get().unread).toBe(2);
  });

  it('reading one and all: shown at once, then the PUTs', async () => {
    I.inboxStore.set(I.applyPage(I.EMPTY_INBOX, page([note('2'), note('1')], 2), { first: true, unreadOnly: false }));
    await readNotification('2');
    expect(I.inboxStore.get().unread).toBe(1);
    await readNotification('2');
    await readAllNotifications();
    expect(I.inboxStore.get().unread).toBe(0);
    expect(calls.map((c) => `${c.method} ${c.url} ${JSON.stringify(c.body)}`)).toEqual(['PUT /api/v1/notifications/2/read undefined', 'PUT /api/v1/notifications/read {}']);
  });
});

describe('client dispatches', () => {
  afterEach(() => {
    I.inboxStore.set(I.EMPTY_INBOX);
    messagesStore.set({});
  });
  it('READY sets the count; NOTIFICATION_CREATE and NOTIFICATION_READ keep it current; deletes drop entries', () => {
    const client = new HearthClient();
    const ready = { session_id: 's', user: { id: '1', username: 'me' }, communities: [], dms: [], read_states: [], notifications_unread: 3 };
    client.onDispatch('READY', ready as never);
    expect(I.inboxStore.get().unread).toBe(3);
    I.inboxStore.set((s) => I.applyPage(s, page([note('5')], 3), { first: true, unreadOnly: false }));
    client.onDispatch('NOTIFICATION_CREATE', { ...note('6'), unread_count: 4 } as never);
    expect(I.inboxStore.get().unread).toBe(4);
    expect(ids(I.inboxStore.get())).toEqual(['6', '5']);
    // The count is not stored on the entry.
    expect(I.inboxStore.get().items[0]).not.toHaveProperty('unread_count');
    client.onDispatch('NOTIFICATION_READ', { ids: ['6'], channel_id: null, all: false, unread_count: 3 });
    expect(I.inboxStore.get().items[0].read).toBe(true);
    expect(I.inboxStore.get().unread).toBe(3);
    client.onDispatch('MESSAGE_DELETE', { id: '500', channel_id: '50' });
    expect(ids(I.inboxStore.get())).toEqual(['6']);
    expect(I.inboxStore.get().unread).toBe(2);
    client.onDispatch('NOTIFICATION_READ', { ids: null, channel_id: null, all: true, unread_count: 0 });
    expect(I.inboxStore.get().unread).toBe(0);
    client.stop();
  });
});
