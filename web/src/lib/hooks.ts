'use client';
// React hooks over the stores: derived lists and permission checks for the UI.
import { useMemo, useState } from 'react';
import type { Channel, Member, Permission } from '@/api/types';
import { communitiesStore, sortChannels, type CommunitiesState } from '@/stores/communities';
import { sessionStore } from '@/stores/session';
import { shallowEqualArray, useStore } from '@/stores/store';
import { describeError } from './errors';
import { basePermissions, channelPermissions, type PermSet } from './permissions';

export function useMe() {
  return useStore(sessionStore, (s) => s.user);
}

export function useCommunities() {
  const order = useStore(communitiesStore, (s) => s.order);
  const map = useStore(communitiesStore, (s) => s.communities);
  return useMemo(() => order.map((id) => map[id]).filter(Boolean), [order, map]);
}

export function useCommunityChannels(communityId: string | null): Channel[] {
  const channels = useStore(communitiesStore, (s) => s.channels);
  return useMemo(
    () => (communityId ? sortChannels(Object.values(channels).filter((c) => c.community_id === communityId)) : []),
    [channels, communityId],
  );
}

export function channelIdsOf(s: CommunitiesState, communityId: string): string[] {
  return Object.values(s.channels)
    .filter((c) => c.community_id === communityId)
    .map((c) => c.id);
}

export function useChannelIdsOf(communityId: string) {
  return useStore(communitiesStore, (s) => channelIdsOf(s, communityId), shallowEqualArray);
}

export function useDms(): Channel[] {
  const dms = useStore(communitiesStore, (s) => s.dms);
  const channels = useStore(communitiesStore, (s) => s.channels);
  return useMemo(() => dms.map((id) => channels[id]).filter(Boolean), [dms, channels]);
}

export function useMembers(communityId: string | null): Member[] {
  const map = useStore(communitiesStore, (s) => (communityId ? s.members[communityId] : undefined));
  return useMemo(() => Object.values(map ?? {}), [map]);
}

const NONE: PermSet = new Set();

/** Our permissions in a community (and a channel, if given). */
export function usePermissions(communityId: string | null, channel?: Channel | null): PermSet {
  const me = useMe();
  const community = useStore(communitiesStore, (s) => (communityId ? s.communities[communityId] : undefined));
  const roles = useStore(communitiesStore, (s) => (communityId ? s.roles[communityId] : undefined));
  const member = useStore(communitiesStore, (s) => (communityId && me ? s.members[communityId]?.[me.id] : undefined));
  return useMemo(() => {
    if (!me || !community) return NONE;
    const ctx = { community, roles: roles ?? [], member, userId: me.id };
    return channel ? channelPermissions(ctx, channel) : basePermissions(ctx);
  }, [me, community, roles, member, channel]);
}

export function has(perms: PermSet, p: Permission) {
  return perms.has(p) || perms.has('ADMINISTRATOR');
}

/** Runs a user's action: `busy` while it runs, and its failure in words as `error`. */
export function useRun() {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run, setError };
}
