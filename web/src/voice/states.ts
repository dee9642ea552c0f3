// Who is in which voice channel: GET /communities/{id}/voice-states on start, then
// VOICE_STATE_UPDATE (channel_id null = left). Pure reducer + a store.
import { createStore } from '@/stores/store';

export interface VoiceState {
  user_id: string;
  community_id: string;
  /** Null once the user left. */
  channel_id: string | null;
  session_id: string;
  self_mute: boolean;
  self_deaf: boolean;
  mute: boolean;
  deaf: boolean;
  self_video: boolean;
  self_stream: boolean;
  speaking: boolean;
}

/** community id -> user id -> state (only users in a channel). */
export type VoiceStates = Readonly<Record<string, Readonly<Record<string, VoiceState>>>>;

export const voiceStatesStore = createStore<VoiceStates>({});

/** Replaces a community's states with a fresh list (REST load). */
export function loadStates(s: VoiceStates, communityId: string, list: readonly VoiceState[]): VoiceStates {
  const byUser: Record<string, VoiceState> = {};
  for (const v of list) if (v.channel_id) byUser[v.user_id] = { ...v, community_id: communityId };
  return { ...s, [communityId]: byUser };
}

/** One VOICE_STATE_UPDATE. A user is in at most one channel. */
export function applyVoiceState(s: VoiceStates, v: VoiceState): VoiceStates {
  const cid = v.community_id;
  let next: Record<string, Record<string, VoiceState>> | null = null;
  // Leaving a channel elsewhere (joining here moves them).
  for (const [c, users] of Object.entries(s)) {
    if (c !== cid && users[v.user_id] && v.channel_id) {
      next ??= { ...s };
      const u = { ...users };
      delete u[v.user_id];
      next[c] = u;
    }
  }
  const base = next ?? { ...s };
  const users = { ...(base[cid] ?? {}) };
  if (v.channel_id) {
    const prev = users[v.user_id];
    if (prev && sameState(prev, v)) return next ?? s;
    users[v.user_id] = v;
  } else {
    if (!users[v.user_id]) return next ?? s;
    delete users[v.user_id];
  }
  base[cid] = users;
  return base;
}

function sameState(a: VoiceState, b: VoiceState) {
  return (
    a.channel_id === b.channel_id && a.session_id === b.session_id && a.self_mute === b.self_mute &&
    a.self_deaf === b.self_deaf && a.mute === b.mute && a.deaf === b.deaf && a.self_video === b.self_video &&
    a.self_stream === b.self_stream && a.speaking === b.speaking
  );
}

/** Drops a community (left it, deleted). */
export function forgetCommunity(s: VoiceStates, communityId: string): VoiceStates {
  if (!s[communityId]) return s;
  const next = { ...s };
  delete next[communityId];
  return next;
}

/** The users in a channel, in a stable order (by user id). */
export function membersOf(s: VoiceStates, communityId: string, channelId: string): VoiceState[] {
  return Object.values(s[communityId] ?? {})
    .filter((v) => v.channel_id === channelId)
    .sort((a, b) => (a.user_id.length - b.user_id.length) || (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0));
}
