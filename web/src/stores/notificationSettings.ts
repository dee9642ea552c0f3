// Notification settings: the account's, and the overrides set on communities and
// channels (GET /users/@me/notification-settings, then our own PUT/PATCH/DELETE answers;
// no dispatch tells other tabs). `resolve` says what is in force for a channel the way
// the server decides it: the channel's level, else the community's, else the account's
// (DMs inherit "all", not the account's level); a mute on the channel or its community
// silences it like "nothing".
import type {
  AccountNotificationSettings,
  ChannelNotificationSettings,
  CommunityNotificationSettings,
  NotificationLevel,
  NotificationSettings,
} from '@/api/types';
import { createStore } from './store';

export interface NotificationSettingsState {
  loaded: boolean;
  account: AccountNotificationSettings;
  communities: Readonly<Record<string, CommunityNotificationSettings>>;
  channels: Readonly<Record<string, ChannelNotificationSettings>>;
}

/** The server's defaults for an account that never changed anything. */
export const DEFAULT_ACCOUNT: AccountNotificationSettings = Object.freeze({
  level: 'mentions',
  suppress_everyone: false,
  push_previews: true,
  email_digest: true,
}) as AccountNotificationSettings;

export const EMPTY_SETTINGS: NotificationSettingsState = Object.freeze({ loaded: false, account: DEFAULT_ACCOUNT, communities: {}, channels: {} }) as NotificationSettingsState;

export const notificationSettingsStore = createStore<NotificationSettingsState>(EMPTY_SETTINGS);

function accountOf(s: AccountNotificationSettings): AccountNotificationSettings {
  return { level: s.level, suppress_everyone: !!s.suppress_everyone, push_previews: !!s.push_previews, email_digest: !!s.email_digest };
}

/** The GET answer (or a PATCH's, which is the same shape). */
export function fromServer(settings: NotificationSettings): NotificationSettingsState {
  const communities: Record<string, CommunityNotificationSettings> = {};
  for (const c of settings.communities ?? []) communities[c.community_id] = c;
  const channels: Record<string, ChannelNotificationSettings> = {};
  for (const c of settings.channels ?? []) channels[c.channel_id] = c;
  return { loaded: true, account: accountOf(settings), communities, channels };
}

/** A PATCH answer: the account's part, and the overrides when it carries them. */
export function applyAccount(s: NotificationSettingsState, settings: AccountNotificationSettings & Partial<NotificationSettings>): NotificationSettingsState {
  if (settings.communities && settings.channels) return fromServer(settings as NotificationSettings);
  return { ...s, account: accountOf(settings) };
}

export function putCommunity(s: NotificationSettingsState, entry: CommunityNotificationSettings): NotificationSettingsState {
  return { ...s, communities: { ...s.communities, [entry.community_id]: entry } };
}

export function clearCommunity(s: NotificationSettingsState, communityId: string): NotificationSettingsState {
  if (!s.communities[communityId]) return s;
  const communities = { ...s.communities };
  delete communities[communityId];
  return { ...s, communities };
}

export function putChannel(s: NotificationSettingsState, entry: ChannelNotificationSettings): NotificationSettingsState {
  return { ...s, channels: { ...s.channels, [entry.channel_id]: entry } };
}

export function clearChannel(s: NotificationSettingsState, channelId: string): NotificationSettingsState {
  if (!s.channels[channelId]) return s;
  const channels = { ...s.channels };
  delete channels[channelId];
  return { ...s, channels };
}

/** Whether a `muted_until` is still ahead of `now`. */
export function isMutedUntil(mutedUntil: string | null | undefined, now: number): boolean {
  if (!mutedUntil) return false;
  const t = Date.parse(mutedUntil);
  return Number.isFinite(t) && t > now;
}

export type SettingSource = 'channel' | 'community' | 'account' | 'dm_default';

export interface Resolved {
  /** The level the scopes give (a mute does not change it, it silences it). */
  level: NotificationLevel;
  /** Which scope that level comes from. */
  from: SettingSource;
  muted: boolean;
  /** Which scope's mute silences it (the channel's first), and until when. */
  mutedBy: 'channel' | 'community' | null;
  mutedUntil: string | null;
  suppressEveryone: boolean;
}

export interface ChannelRef {
  channelId: string;
  /** null for DMs and group DMs. */
  communityId: string | null;
}

/** What is in force for a channel now. */
export function resolve(s: NotificationSettingsState, ref: ChannelRef, now = Date.now()): Resolved {
  const ch = s.channels[ref.channelId];
  const co = ref.communityId ? s.communities[ref.communityId] : undefined;
  const inherited: { level: NotificationLevel; from: SettingSource } = !ref.communityId
    ? { level: 'all', from: 'dm_default' }
    : co?.level
      ? { level: co.level, from: 'community' }
      : { level: s.account.level, from: 'account' };
  const own = ch?.level ? { level: ch.level, from: 'channel' as const } : inherited;
  const channelMuted = isMutedUntil(ch?.muted_until, now);
  const communityMuted = isMutedUntil(co?.muted_until, now);
  return {
    ...own,
    muted: channelMuted || communityMuted,
    mutedBy: channelMuted ? 'channel' : communityMuted ? 'community' : null,
    mutedUntil: channelMuted ? ch!.muted_until : communityMuted ? co!.muted_until : null,
    suppressEveryone: co?.suppress_everyone ?? s.account.suppress_everyone,
  };
}

/** What is in force for a community as a whole (its channels without their own setting). */
export function resolveCommunity(s: NotificationSettingsState, communityId: string, now = Date.now()): Resolved {
  const co = s.communities[communityId];
  const muted = isMutedUntil(co?.muted_until, now);
  return {
    level: co?.level ?? s.account.level,
    from: co?.level ? 'community' : 'account',
    muted,
    mutedBy: muted ? 'community' : null,
    mutedUntil: muted ? co!.muted_until : null,
    suppressEveryone: co?.suppress_everyone ?? s.account.suppress_everyone,
  };
}

/** The channel's own mute (what the sidebar marks with an icon). */
export function channelMuted(s: NotificationSettingsState, channelId: string, now = Date.now()): boolean {
  return isMutedUntil(s.channels[channelId]?.muted_until, now);
}

export function communityMuted(s: NotificationSettingsState, communityId: string, now = Date.now()): boolean {
  return isMutedUntil(s.communities[communityId]?.muted_until, now);
}

/**
 * When the next mute ends (ms epoch), or null: the UI re-renders then so a channel stops
 * looking muted on time.
 */
export function nextMuteEnd(s: NotificationSettingsState, now = Date.now()): number | null {
  let next: number | null = null;
  for (const e of [...Object.values(s.channels), ...Object.values(s.communities)]) {
    const t = e.muted_until ? Date.parse(e.muted_until) : NaN;
    if (Number.isFinite(t) && t > now && (next === null || t < next)) next = t;
  }
  return next;
}
