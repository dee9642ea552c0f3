// Communities, their channels, roles and members, plus DM channels and a user cache
// (names for mentions and authors). Updated from READY and the CHANNEL_*, COMMUNITY_*,
// MEMBER_* and ROLE_* dispatches.
import type { Channel, Community, Member, ReadyCommunity, Role, User, UserSummary } from '@/api/types';
import { createStore } from './store';

export interface CommunitiesState {
  communities: Readonly<Record<string, Community>>;
  /** Rail order (join order). */
  order: readonly string[];
  channels: Readonly<Record<string, Channel>>;
  roles: Readonly<Record<string, readonly Role[]>>;
  members: Readonly<Record<string, Readonly<Record<string, Member>>>>;
  /** Member lists fully fetched for these communities. */
  membersLoaded: Readonly<Record<string, boolean>>;
  dms: readonly string[];
  users: Readonly<Record<string, UserSummary>>;
}

export const communitiesStore = createStore<CommunitiesState>({
  communities: {},
  order: [],
  channels: {},
  roles: {},
  members: {},
  membersLoaded: {},
  dms: [],
  users: {},
});

function rememberUsers(users: Record<string, UserSummary>, list: readonly (UserSummary | User | undefined)[]) {
  for (const u of list) if (u) users[u.id] = { id: u.id, username: u.username, display_name: u.display_name ?? null, avatar_url: u.avatar_url ?? null };
}

export function fromReady(prev: CommunitiesState, communities: readonly ReadyCommunity[], dms: readonly Channel[], me: User): CommunitiesState {
  const state: CommunitiesState = {
    communities: {},
    order: [],
    channels: {},
    roles: {},
    members: {},
    membersLoaded: {},
    dms: [],
    users: { ...prev.users },
  };
  const users = state.users as Record<string, UserSummary>;
  rememberUsers(users, [me]);
  const cs = state.communities as Record<string, Community>;
  const chans = state.channels as Record<string, Channel>;
  const roles = state.roles as Record<string, Role[]>;
  const members = state.members as Record<string, Record<string, Member>>;
  const order: string[] = [];
  for (const rc of communities) {
    const { channels, roles: rs, members: ms, ...c } = rc;
    cs[c.id] = c;
    order.push(c.id);
    // READY does not carry overwrites; keep ones already read for a channel
    // (the composer's send permission depends on them). CHANNEL_UPDATE re-reads.
    for (const ch of channels ?? []) {
      const known = prev.channels[ch.id];
      chans[ch.id] = known && 'overwrites' in known && !('overwrites' in ch) ? { ...ch, overwrites: known.overwrites } : ch;
    }
    roles[c.id] = [...(rs ?? [])];
    // Keep member lists we already fetched: READY may not carry them.
    members[c.id] = { ...(prev.members[c.id] ?? {}) };
    for (const m of ms ?? []) {
      members[c.id][m.user.id] = m;
      rememberUsers(users, [m.user]);
    }
  }
  const dmIds: string[] = [];
  for (const dm of dms) {
    chans[dm.id] = dm;
    dmIds.push(dm.id);
    rememberUsers(users, dm.recipients ?? []);
  }
  return { ...state, order, dms: dmIds };
}

export function upsertChannel(s: CommunitiesState, ch: Channel): CommunitiesState {
  const users = ch.recipients?.length ? { ...s.users } : s.users;
  if (ch.recipients?.length) rememberUsers(users as Record<string, UserSummary>, ch.recipients);
  const isDm = ch.kind === 'dm' || ch.kind === 'group_dm';
  const merged = { ...s.channels[ch.id], ...ch };
  return {
    ...s,
    users,
    channels: { ...s.channels, [ch.id]: merged },
    dms: isDm && !s.dms.includes(ch.id) ? [ch.id, ...s.dms] : s.dms,
  };
}

export function removeChannel(s: CommunitiesState, id: string): CommunitiesState {
  if (!s.channels[id]) return s;
  const channels = { ...s.channels };
  delete channels[id];
  return { ...s, channels, dms: s.dms.filter((d) => d !== id) };
}

export function upsertCommunity(s: CommunitiesState, c: Community | ReadyCommunity): CommunitiesState {
  const { channels, roles, members, ...community } = c as ReadyCommunity;
  let next: CommunitiesState = {
    ...s,
    communities: { ...s.communities, [community.id]: { ...s.communities[community.id], ...community } },
    order: s.order.includes(community.id) ? s.order : [...s.order, community.id],
  };
  if (channels) for (const ch of channels) next = upsertChannel(next, ch);
  if (roles) next = { ...next, roles: { ...next.roles, [community.id]: roles } };
  if (members) for (const m of members) next = upsertMember(next, community.id, m);
  return next;
}

export function removeCommunity(s: CommunitiesState, id: string): CommunitiesState {
  if (!s.communities[id]) return s;
  const communities = { ...s.communities };
  delete communities[id];
  const channels: Record<string, Channel> = {};
  for (const [cid, ch] of Object.entries(s.channels)) if (ch.community_id !== id) channels[cid] = ch;
  const roles = { ...s.roles };
  delete roles[id];
  const members = { ...s.members };
  delete members[id];
  return { ...s, communities, channels, roles, members, order: s.order.filter((o) => o !== id) };
}

export function upsertMember(s: CommunitiesState, communityId: string, m: Member): CommunitiesState {
  const users = { ...s.users } as Record<string, UserSummary>;
  rememberUsers(users, [m.user]);
  const prev = s.members[communityId]?.[m.user.id];
  return {
    ...s,
    users,
    members: { ...s.members, [communityId]: { ...(s.members[communityId] ?? {}), [m.user.id]: { ...prev, ...m } } },
  };
}

export function removeMember(s: CommunitiesState, communityId: string, userId: string): CommunitiesState {
  const list = s.members[communityId];
  if (!list?.[userId]) return s;
  const next = { ...list };
  delete next[userId];
  return { ...s, members: { ...s.members, [communityId]: next } };
}

export function setMembers(s: CommunitiesState, communityId: string, list: readonly Member[]): CommunitiesState {
  const users = { ...s.users } as Record<string, UserSummary>;
  const map: Record<string, Member> = { ...(s.members[communityId] ?? {}) };
  for (const m of list) {
    map[m.user.id] = m;
    rememberUsers(users, [m.user]);
  }
  return { ...s, users, members: { ...s.members, [communityId]: map }, membersLoaded: { ...s.membersLoaded, [communityId]: true } };
}

export function upsertRole(s: CommunitiesState, role: Role): CommunitiesState {
  const list = s.roles[role.community_id] ?? [];
  const i = list.findIndex((r) => r.id === role.id);
  const next = i >= 0 ? list.map((r) => (r.id === role.id ? { ...r, ...role } : r)) : [...list, role];
  return { ...s, roles: { ...s.roles, [role.community_id]: next } };
}

export function removeRole(s: CommunitiesState, communityId: string, roleId: string): CommunitiesState {
  const list = s.roles[communityId];
  if (!list) return s;
  // Members lose the role too, so permission checks stay right.
  const members = s.members[communityId];
  let nextMembers = s.members;
  if (members) {
    const m2: Record<string, Member> = {};
    for (const [uid, m] of Object.entries(members)) m2[uid] = m.roles.includes(roleId) ? { ...m, roles: m.roles.filter((r) => r !== roleId) } : m;
    nextMembers = { ...s.members, [communityId]: m2 };
  }
  return { ...s, members: nextMembers, roles: { ...s.roles, [communityId]: list.filter((r) => r.id !== roleId) } };
}

export function rememberUser(s: CommunitiesState, u: UserSummary): CommunitiesState {
  const cur = s.users[u.id];
  if (cur && cur.username === u.username && cur.display_name === u.display_name && cur.avatar_url === u.avatar_url) return s;
  return { ...s, users: { ...s.users, [u.id]: { id: u.id, username: u.username, display_name: u.display_name ?? null, avatar_url: u.avatar_url ?? null } } };
}

/** Channels of a community in display order (categories first by position, then children). */
export function sortChannels(list: readonly Channel[]): Channel[] {
  return [...list].sort((a, b) => (a.position ?? 0) - (b.position ?? 0) || (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
}

export function displayName(u: Pick<UserSummary, 'username' | 'display_name'> | undefined, member?: Member): string {
  if (member?.nickname) return member.nickname;
  if (!u) return 'Unknown user';
  // An erased account keeps only its id, as `deleted-<id>` (no real
  // username can hold a `-`).
  if (/^deleted-\d+$/.test(u.username)) return 'Deleted user';
  return u.display_name || u.username;
}

export function channelLabel(ch: Channel, meId: string | null, users: Readonly<Record<string, UserSummary>>): string {
  if (ch.kind === 'dm' || ch.kind === 'group_dm') {
    if (ch.name) return ch.name;
    const others = (ch.recipients ?? []).filter((u) => u.id !== meId);
    return others.map((u) => displayName(users[u.id] ?? u)).join(', ') || 'Direct message';
  }
  return ch.name ?? 'channel';
}
