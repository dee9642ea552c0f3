// Notifications (docs/api.md "Notifications"): the REST calls, the actions the inbox and
// settings screens run (they update stores/inbox.ts and stores/notificationSettings.ts),
// and the pure helpers that put a notification or a setting into words. Nothing here
// touches React; Web Push lives in lib/push.ts.
import type {
  ChannelNotificationSettings,
  CommunityNotificationSettings,
  InboxNotification,
  Message,
  NotificationLevel,
  NotificationPage,
  NotificationSettings,
  Role,
  UserSummary,
} from '@/api/types';
import { requestJson } from './api';
import { toQuery } from './moderation';
import * as I from '@/stores/inbox';
import * as S from '@/stores/notificationSettings';

export const INBOX_PAGE = 25;

// ---- calls ---------------------------------------------------------------------------

export const notificationsApi = {
  list: (q: { before?: string | null; limit?: number; unread?: boolean }) =>
    requestJson<NotificationPage>('GET', `/api/v1/notifications${toQuery({ before: q.before, limit: q.limit, unread: q.unread ? 'true' : undefined })}`),
  read: (id: string) => requestJson<void>('PUT', `/api/v1/notifications/${id}/read`),
  readAll: (channelId?: string) => requestJson<void>('PUT', '/api/v1/notifications/read', channelId ? { channel_id: channelId } : {}),
  settings: () => requestJson<NotificationSettings>('GET', '/api/v1/users/@me/notification-settings'),
  patchSettings: (patch: Partial<Pick<NotificationSettings, 'level' | 'suppress_everyone' | 'push_previews' | 'email_digest'>>) =>
    requestJson<NotificationSettings>('PATCH', '/api/v1/users/@me/notification-settings', patch),
  putCommunity: (id: string, body: Omit<CommunityNotificationSettings, 'community_id'>) =>
    requestJson<CommunityNotificationSettings>('PUT', `/api/v1/users/@me/notification-settings/communities/${id}`, body),
  deleteCommunity: (id: string) => requestJson<void>('DELETE', `/api/v1/users/@me/notification-settings/communities/${id}`),
  putChannel: (id: string, body: Omit<ChannelNotificationSettings, 'channel_id'>) =>
    requestJson<ChannelNotificationSettings>('PUT', `/api/v1/users/@me/notification-settings/channels/${id}`, body),
  deleteChannel: (id: string) => requestJson<void>('DELETE', `/api/v1/users/@me/notification-settings/channels/${id}`),
};

// ---- inbox actions ---------------------------------------------------------------------

// Each fetch of a first page bumps this; an answer to an older one (the filter changed
// meanwhile) is dropped instead of replacing the newer list.
let inboxGeneration = 0;

/** The newest page for the current filter; replaces what is listed. */
export async function loadInbox(): Promise<void> {
  const gen = ++inboxGeneration;
  const unreadOnly = I.inboxStore.get().unreadOnly;
  const page = await notificationsApi.list({ limit: INBOX_PAGE, unread: unreadOnly });
  if (gen !== inboxGeneration) return;
  I.inboxStore.set((s) => I.applyPage(s, page, { first: true, unreadOnly }));
}

/** The next older page, appended. */
export async function loadOlderInbox(): Promise<void> {
  const { nextBefore, unreadOnly } = I.inboxStore.get();
  if (!nextBefore) return;
  const gen = inboxGeneration;
  const page = await notificationsApi.list({ before: nextBefore, limit: INBOX_PAGE, unread: unreadOnly });
  if (gen !== inboxGeneration || I.inboxStore.get().nextBefore !== nextBefore) return;
  I.inboxStore.set((s) => I.applyPage(s, page, { first: false, unreadOnly }));
}

export function setInboxUnreadOnly(unreadOnly: boolean) {
  I.inboxStore.set((s) => I.setUnreadOnly(s, unreadOnly));
}

/** Marks one read (shown at once); NOTIFICATION_READ then brings the server's count. */
export async function readNotification(id: string): Promise<void> {
  const was = I.inboxStore.get().items.find((n) => n.id === id);
  if (was?.read) return;
  I.inboxStore.set((s) => I.markOneRead(s, id));
  await notificationsApi.read(id);
}

/**
 * Asks the server for the unread count. For changes no dispatch announces (a notification
 * goes away with its deleted message, or with a channel we can no longer see); an answer
 * is dropped if the inbox changed while it was on its way (a dispatch's count is newer).
 */
export async function refreshUnreadCount(): Promise<void> {
  let changed = false;
  const off = I.inboxStore.subscribe(() => (changed = true));
  try {
    const page = await notificationsApi.list({ limit: 1, unread: true });
    if (!changed) I.inboxStore.set((s) => I.setUnread(s, page.unread_count ?? s.unread));
  } finally {
    off();
  }
}

export async function readAllNotifications(): Promise<void> {
  I.inboxStore.set((s) => I.markAllRead(s));
  await notificationsApi.readAll();
}

// ---- settings actions ------------------------------------------------------------------

export async function loadNotificationSettings(): Promise<void> {
  const settings = await notificationsApi.settings();
  S.notificationSettingsStore.set(S.fromServer(settings));
}

/**
 * Shows a change at once (a switch that waited for the server would snap back and
 * forth), then sends it; a refusal puts back what was there.
 */
async function optimistic<T>(apply: (s: S.NotificationSettingsState) => S.NotificationSettingsState, send: () => Promise<T>, settle: (answer: T) => (s: S.NotificationSettingsState) => S.NotificationSettingsState): Promise<void> {
  const before = S.notificationSettingsStore.get();
  S.notificationSettingsStore.set(apply);
  let answer: T;
  try {
    answer = await send();
  } catch (e) {
    S.notificationSettingsStore.set(before);
    throw e;
  }
  S.notificationSettingsStore.set(settle(answer));
}

export function saveAccountSettings(patch: Parameters<typeof notificationsApi.patchSettings>[0]): Promise<void> {
  return optimistic(
    (s) => S.applyAccount(s, { ...s.account, ...patch }),
    () => notificationsApi.patchSettings(patch),
    (settings) => (s) => S.applyAccount(s, settings),
  );
}

/** The community's override as it would be sent: every field, null where it inherits. */
export function communityBody(entry: Partial<CommunityNotificationSettings> | undefined): Omit<CommunityNotificationSettings, 'community_id'> {
  return { level: entry?.level ?? null, muted_until: entry?.muted_until ?? null, suppress_everyone: entry?.suppress_everyone ?? null };
}

export function channelBody(entry: Partial<ChannelNotificationSettings> | undefined): Omit<ChannelNotificationSettings, 'channel_id'> {
  return { level: entry?.level ?? null, muted_until: entry?.muted_until ?? null };
}

/**
 * Changes some fields of a community's override. The PUT replaces the whole entry, so
 * the fields not changed are sent as they are.
 */
export function saveCommunitySettings(communityId: string, change: Partial<Omit<CommunityNotificationSettings, 'community_id'>>): Promise<void> {
  const body = { ...communityBody(S.notificationSettingsStore.get().communities[communityId]), ...change };
  return optimistic(
    (s) => S.putCommunity(s, { ...body, community_id: communityId }),
    () => notificationsApi.putCommunity(communityId, body),
    (entry) => (s) => S.putCommunity(s, { ...body, ...entry, community_id: communityId }),
  );
}

export function resetCommunitySettings(communityId: string): Promise<void> {
  return optimistic(
    (s) => S.clearCommunity(s, communityId),
    () => notificationsApi.deleteCommunity(communityId),
    () => (s) => S.clearCommunity(s, communityId),
  );
}

export function saveChannelSettings(channelId: string, change: Partial<Omit<ChannelNotificationSettings, 'channel_id'>>): Promise<void> {
  const body = { ...channelBody(S.notificationSettingsStore.get().channels[channelId]), ...change };
  return optimistic(
    (s) => S.putChannel(s, { ...body, channel_id: channelId }),
    () => notificationsApi.putChannel(channelId, body),
    (entry) => (s) => S.putChannel(s, { ...body, ...entry, channel_id: channelId }),
  );
}

export function resetChannelSettings(channelId: string): Promise<void> {
  return optimistic(
    (s) => S.clearChannel(s, channelId),
    () => notificationsApi.deleteChannel(channelId),
    () => (s) => S.clearChannel(s, channelId),
  );
}

/**
 * Re-renders the settings' readers when a mute ends, so a channel stops looking muted
 * on time (nothing else changes the store at that moment). Returns the stop function.
 */
export function startMuteClock(now: () => number = Date.now): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    const end = S.nextMuteEnd(S.notificationSettingsStore.get(), now());
    if (end === null) return;
    // setTimeout holds at most 2^31-1 ms (24.8 days); a longer mute is re-checked then.
    const wait = Math.min(end - now() + 50, 2 ** 31 - 1);
    timer = setTimeout(() => S.notificationSettingsStore.set((s) => ({ ...s })), Math.max(0, wait));
  };
  const off = S.notificationSettingsStore.subscribe(schedule);
  schedule();
  return () => {
    off();
    if (timer) clearTimeout(timer);
  };
}

// ---- words -----------------------------------------------------------------------------

export const LEVEL_TEXT: Readonly<Record<NotificationLevel, string>> = {
  all: 'All messages',
  mentions: 'Only @mentions and replies',
  nothing: 'Nothing',
};

/** What a notification says its author did ("Ann mentioned you"). */
export function describeKind(kind: string, roleName?: string | null): string {
  switch (kind) {
    case 'mention':
      return 'mentioned you';
    case 'role_mention':
      return roleName ? `mentioned @${roleName}` : 'mentioned a role of yours';
    case 'everyone':
      return 'mentioned @everyone';
    case 'reply':
      return 'replied to you';
    case 'dm':
      return 'sent you a direct message';
    case 'message':
      return 'sent a new message';
    default:
      return 'sent a message';
  }
}

/** The role of ours a role mention named (the first one we hold), for "mentioned @Mods". */
export function mentionedRole(message: Pick<Message, 'mention_roles' | 'content'> | null, myRoleIds: readonly string[], roles: readonly Role[]): Role | null {
  if (!message) return null;
  const named = new Set(message.mention_roles ?? []);
  for (const m of (message.content ?? '').matchAll(/<@&(\d+)>/g)) named.add(m[1]);
  for (const id of myRoleIds) if (named.has(id)) return roles.find((r) => r.id === id) ?? null;
  return null;
}

export interface PreviewNames {
  users: Readonly<Record<string, Pick<UserSummary, 'username' | 'display_name'>>>;
  roles?: readonly Pick<Role, 'id' | 'name'>[];
  channels?: Readonly<Record<string, { name?: string | null }>>;
}

export const DELETED_PREVIEW = 'This message was deleted.';

/**
 * A one-line preview of a message: mention tokens as names, Markdown markers and
 * line breaks dropped, cut at `max` characters (whole code points) with an ellipsis.
 */
export function previewText(message: Pick<Message, 'content' | 'attachments'> | null, names: PreviewNames, max = 140): string {
  if (!message) return DELETED_PREVIEW;
  let text = (message.content ?? '')
    .replace(/<@!?(\d+)>/g, (_, id: string) => {
      const u = names.users[id];
      return `@${u ? u.display_name || u.username : 'someone'}`;
    })
    .replace(/<@&(\d+)>/g, (_, id: string) => `@${names.roles?.find((r) => r.id === id)?.name ?? 'role'}`)
    .replace(/<#(\d+)>/g, (_, id: string) => `#${names.channels?.[id]?.name ?? 'channel'}`)
    .replace(/```[^\n]*\n?/g, '')
    .replace(/(\*\*|__|~~|`|\|\|)/g, '')
    .replace(/^\s*>\s?/gm, '')
    .replace(/\s+/g, ' ')
    .trim();
  if (!text) text = message.attachments?.length ? `${message.attachments.length === 1 ? 'An attachment' : `${message.attachments.length} attachments`}` : '(no text)';
  const chars = [...text];
  return chars.length > max ? `${chars.slice(0, max - 1).join('').trimEnd()}…` : text;
}

// ---- mutes -------------------------------------------------------------------------------

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** "Until I turn it back on": the server takes at most a year ahead, so a day less than that. */
export const FOREVER_MS = 364 * DAY;

export const MUTE_OPTIONS = [
  { id: '15m', label: 'For 15 minutes', ms: 15 * MINUTE },
  { id: '1h', label: 'For 1 hour', ms: 60 * MINUTE },
  { id: '8h', label: 'For 8 hours', ms: 8 * 60 * MINUTE },
  { id: '24h', label: 'For 24 hours', ms: DAY },
  { id: 'forever', label: 'Until I turn it back on', ms: FOREVER_MS },
] as const;

export type MuteOption = (typeof MUTE_OPTIONS)[number]['id'];

/** The `muted_until` (RFC 3339) a mute option means from `now`. */
export function mutedUntilFor(option: MuteOption, now = Date.now()): string {
  const o = MUTE_OPTIONS.find((x) => x.id === option) ?? MUTE_OPTIONS[0];
  return new Date(now + o.ms).toISOString();
}

/** A mute this far ahead was set as "until I turn it back on" (no date is worth showing). */
function isIndefinite(until: number, now: number): boolean {
  return until - now > 300 * DAY;
}

const TIME = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const DATE_TIME = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/** "Muted until 14:05", "Muted until Tue, Jun 3, 09:00", "Muted until you turn it back on". */
export function describeMute(mutedUntil: string | null, now = Date.now()): string {
  const t = mutedUntil ? Date.parse(mutedUntil) : NaN;
  if (!Number.isFinite(t) || t <= now) return 'Not muted';
  if (isIndefinite(t, now)) return 'Muted until you turn it back on';
  const d = new Date(t);
  const sameDay = d.toDateString() === new Date(now).toDateString();
  return `Muted until ${sameDay ? TIME.format(d) : DATE_TIME.format(d)}`;
}

/** Where an inherited level comes from, in words. */
export function describeSource(from: S.SettingSource): string {
  switch (from) {
    case 'channel':
      return 'set on this channel';
    case 'community':
      return "the community's setting";
    case 'account':
      return 'your account default';
    case 'dm_default':
      return 'the default for direct messages';
  }
}

/** One line for what is in force: "Only @mentions and replies (your account default)" or the mute. */
export function describeResolved(r: S.Resolved, now = Date.now()): string {
  if (r.muted) return `${describeMute(r.mutedUntil, now)}${r.mutedBy === 'community' ? ' (the whole community)' : ''}`;
  return `${LEVEL_TEXT[r.level]} (${describeSource(r.from)})`;
}

/** An inbox entry's place: "#general · Town", a DM's name, or a fallback while unknown. */
export function placeText(n: Pick<InboxNotification, 'community_id'>, channelName: string | null, communityName: string | null): string {
  if (!n.community_id) return channelName ?? 'Direct message';
  const ch = channelName ? `#${channelName}` : 'a channel';
  return communityName ? `${ch} · ${communityName}` : ch;
}
