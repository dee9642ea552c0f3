'use client';
// The signed-in app: rail | channel list | messages | members.
// Restores the session (refresh cookie) on a fresh page load, starts the tab's single
// gateway connection, and keeps the selection in the query string.
import { useEffect, useMemo, useState } from 'react';
import { useRouter } from 'next/navigation';
import { onSignedOut, restoreSession } from '@/lib/auth';
import { getClient, resetClient } from '@/lib/client';
import { useCommunityChannels, useDms, useMe } from '@/lib/hooks';
import { setQuery, useSearch } from '@/lib/nav';
import { communitiesStore } from '@/stores/communities';
import { sessionStore } from '@/stores/session';
import { useStore } from '@/stores/store';
import { ChannelSidebar } from './ChannelSidebar';
import { ChannelView } from './ChannelView';
import { CommunityRail } from './CommunityRail';
import { MemberList } from './MemberList';
import { Notices } from './ui';
import { useLinkedConfirmation } from './LinkedIdentities';
import { ReportDialogHost } from './ReportDialog';
import { loadStaffMe, resetStaff } from '@/lib/admin';
import { describeError } from '@/lib/errors';
import { readNotification } from '@/lib/notifications';
import { dropPushSubscription, isOpenChannelMessage } from '@/lib/push';
import { notify } from '@/stores/notices';
import { VoiceView } from './VoiceView';
import { SearchPanel } from './SearchPanel';
import { searchStore } from '@/stores/search';
import { closeSearch } from '@/lib/search';

export type Dialog =
  | { kind: 'create-community' }
  | { kind: 'community-settings'; communityId: string; tab?: string }
  | { kind: 'user-settings' }
  | { kind: 'new-dm' }
  | { kind: 'invite'; communityId: string }
  | { kind: 'create-channel'; communityId: string }
  | { kind: 'community-notifications'; communityId: string }
  | null;

export function AppShell() {
  const router = useRouter();
  const status = useStore(sessionStore, (s) => s.status);
  const gateway = useStore(sessionStore, (s) => s.gateway);
  const loaded = useStore(sessionStore, (s) => s.loaded);
  const [started, setStarted] = useState(false);
  const [everReady, setEverReady] = useState(false);
  const [showMembers, setShowMembers] = useState(true);
  const [dialog, setDialog] = useState<Dialog>(null);
  const [showBanner, setShowBanner] = useState(false);

  useEffect(() => {
    let live = true;
    void restoreSession().then((ok) => {
      if (!live) return;
      if (!ok) {
        router.replace(`/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`);
        return;
      }
      getClient().start();
      setStarted(true);
      // Staff get a link to the admin area (everyone else: an empty answer).
      void loadStaffMe(true).catch(() => undefined);
    });
    const off = onSignedOut(() => {
      // This browser must not show the next account this one's notifications.
      void dropPushSubscription();
      resetClient();
      resetStaff();
      router.replace('/login');
    });
    return () => {
      live = false;
      off();
    };
  }, [router]);

  useEffect(() => {
    if (gateway === 'ready' || loaded) setEverReady(true);
  }, [gateway, loaded]);
  useLinkedConfirmation(everReady);

  // A click on a desktop notification (public/sw.js) while the app is open: switch to
  // its channel here instead of loading the app again, and mark it read.
  useEffect(() => {
    const sw = typeof navigator !== 'undefined' ? navigator.serviceWorker : undefined;
    if (!sw) return;
    const onMessage = (e: MessageEvent) => {
      if (!isOpenChannelMessage(e.data)) return;
      setQuery({ c: e.data.community_id ?? '@me', ch: e.data.channel_id });
      if (e.data.notification_id) readNotification(e.data.notification_id).catch((err) => notify(describeError(err)));
    };
    sw.addEventListener('message', onMessage);
    return () => sw.removeEventListener('message', onMessage);
  }, []);

  // Don't flash a banner for a handshake that takes a moment.
  useEffect(() => {
    if (gateway === 'ready') {
      setShowBanner(false);
      return;
    }
    const t = setTimeout(() => setShowBanner(true), gateway === 'reconnecting' ? 300 : 2000);
    return () => clearTimeout(t);
  }, [gateway]);

  const search = useSearch();
  const params = useMemo(() => new URLSearchParams(search), [search]);
  const selection = useSelection(params.get('c'), params.get('ch'), everReady);
  const selectedKind = useStore(communitiesStore, (s) => (selection.channelId ? s.channels[selection.channelId]?.kind : undefined));
  const channelsMapKind = (_id: string) => selectedKind;
  // Results of the place being shown take the member list's place (another place's stay
  // in the store until a search there replaces them).
  const searching = useStore(searchStore, (s) => s.open && s.scope !== null && s.scope === selection.communityId);

  if (status !== 'signed_in' || !started || !everReady) {
    return (
      <main className="splash" aria-busy="true">
        <div className="spinner" aria-hidden="true" />
        <p>{gateway === 'reconnecting' ? "Can't reach the server, retrying…" : 'Connecting…'}</p>
      </main>
    );
  }

  return (
    <div className={searching ? 'shell shell-search' : showMembers ? 'shell' : 'shell shell-no-members'}>
      {gateway !== 'ready' && showBanner && (
        <div className="conn-banner" role="status">
          {gateway === 'connecting' ? 'Connecting…' : 'Reconnecting…'} Messages you send will go out when the connection is back.
        </div>
      )}
      <CommunityRail selected={selection.communityId} onDialog={setDialog} />
      <ChannelSidebar communityId={selection.communityId} channelId={selection.channelId} onDialog={setDialog} dialog={dialog} />
      {selection.channelId && channelsMapKind(selection.channelId) === 'voice' ? (
        <VoiceView key={selection.channelId} channelId={selection.channelId} />
      ) : selection.channelId ? (
        <ChannelView
          key={selection.channelId}
          channelId={selection.channelId}
          showMembers={showMembers && !searching}
          onToggleMembers={() => {
            // The member list and the results share a column: asking for members closes the results.
            if (searching) {
              closeSearch();
              setShowMembers(true);
            } else setShowMembers((v) => !v);
          }}
        />
      ) : (
        <main className="chat empty-state">
          <h1>{selection.communityId === '@me' ? 'No direct messages yet' : 'Nothing here yet'}</h1>
          <p className="muted">
            {selection.communityId === '@me'
              ? 'Start a conversation from a member list or with “New message”.'
              : 'Create a community or join one with an invite link.'}
          </p>
        </main>
      )}
      {searching ? (
        <SearchPanel />
      ) : (
        showMembers && selection.channelId && <MemberList communityId={selection.communityId === '@me' ? null : selection.communityId} channelId={selection.channelId} />
      )}
      <ReportDialogHost />
      <Notices />
    </div>
  );
}

/** Resolves ?c and ?ch to something that exists, redirecting (replace) when they don't. */
function useSelection(c: string | null, ch: string | null, ready: boolean) {
  const me = useMe();
  const order = useStore(communitiesStore, (s) => s.order);
  const channelsMap = useStore(communitiesStore, (s) => s.channels);
  const dms = useDms();
  const communityId = c === '@me' ? '@me' : c && order.includes(c) ? c : order[0] ?? '@me';
  const channels = useCommunityChannels(communityId === '@me' ? null : communityId);
  let channelId: string | null = null;
  if (communityId === '@me') {
    channelId = ch && dms.some((d) => d.id === ch) ? ch : dms[0]?.id ?? null;
  } else {
    const inCommunity = ch && channelsMap[ch]?.community_id === communityId ? ch : null;
    channelId = inCommunity ?? channels.find((x) => x.kind === 'text')?.id ?? null;
  }

  useEffect(() => {
    if (!ready) return;
    if (c !== communityId || ch !== channelId) setQuery({ c: communityId, ch: channelId }, { replace: true });
  }, [ready, c, ch, communityId, channelId]);

  useEffect(() => {
    if (!ready || !me) return;
    getClient().setActiveChannel(channelId);
  }, [ready, me, channelId]);

  useEffect(() => {
    if (!ready || communityId === '@me') return;
    if (!communitiesStore.get().membersLoaded[communityId]) void getClient().loadMembers(communityId).catch(() => undefined);
  }, [ready, communityId]);

  return { communityId, channelId };
}
