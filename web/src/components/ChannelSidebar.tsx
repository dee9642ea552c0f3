'use client';
// Second column: the community's channels (or the DM list) and the user panel.
import { useState } from 'react';
import type { Channel } from '@/api/types';
import type { Dialog } from './AppShell';
import { getClient } from '@/lib/client';
import { describeError } from '@/lib/errors';
import { has, useCommunityChannels, useDms, useMe, usePermissions } from '@/lib/hooks';
import { setQuery } from '@/lib/nav';
import { channelLabel, communitiesStore } from '@/stores/communities';
import { notify } from '@/stores/notices';
import { isUnread, mentionCount, readStatesStore } from '@/stores/readStates';
import { channelMuted, communityMuted, notificationSettingsStore } from '@/stores/notificationSettings';
import { useStore } from '@/stores/store';
import { Avatar, PresenceDot } from './ui';
import { Dialogs } from './Dialogs';
import { Icon } from './icons';
import { CallPanel, VoiceMembers } from './VoiceParts';
import { callStore, voiceCall } from '@/voice/call';

export function ChannelSidebar({ communityId, channelId, onDialog, dialog }: { communityId: string; channelId: string | null; onDialog: (d: Dialog) => void; dialog: Dialog }) {
  return (
    <aside className="sidebar">
      {communityId === '@me' ? <DmList channelId={channelId} onDialog={onDialog} /> : <CommunityChannels communityId={communityId} channelId={channelId} onDialog={onDialog} />}
      <CallPanel />
      <UserPanel onDialog={onDialog} />
      <Dialogs dialog={dialog} onClose={() => onDialog(null)} onDialog={onDialog} />
    </aside>
  );
}

function CommunityChannels({ communityId, channelId, onDialog }: { communityId: string; channelId: string | null; onDialog: (d: Dialog) => void }) {
  const community = useStore(communitiesStore, (s) => s.communities[communityId]);
  const channels = useCommunityChannels(communityId);
  const perms = usePermissions(communityId);
  const [menu, setMenu] = useState(false);
  const meId = useMe()?.id ?? null;
  const muted = useStore(notificationSettingsStore, (s) => communityMuted(s, communityId));
  if (!community) return null;
  const categories = channels.filter((c) => !c.parent_id && c.kind !== 'text' && c.kind !== 'voice');
  const top = channels.filter((c) => !c.parent_id && (c.kind === 'text' || c.kind === 'voice'));
  const canManage = ['MANAGE_COMMUNITY', 'MANAGE_ROLES', 'MANAGE_CHANNELS', 'KICK_MEMBERS', 'BAN_MEMBERS', 'MODERATE_MEMBERS', 'MANAGE_MESSAGES', 'VIEW_AUDIT_LOG'].some((p) => has(perms, p));
  const leave = async () => {
    setMenu(false);
    if (!window.confirm(`Leave ${community.name}?`)) return;
    try {
      await getClient().leaveCommunity(communityId);
      setQuery({ c: null, ch: null });
    } catch (e) {
      notify(describeError(e));
    }
  };
  return (
    <>
      <header className="sidebar-header">
        <button type="button" className="sidebar-title" aria-expanded={menu} aria-haspopup="menu" onClick={() => setMenu((m) => !m)}>
          <h2>{community.name}</h2>
          {muted && (
            <span className="muted-icon" role="img" aria-label="muted" title="Notifications muted">
              <Icon name="bellOff" size={16} />
            </span>
          )}
          <Icon name={menu ? 'close' : 'chevron'} size={18} />
        </button>
        {menu && (
          <ul className="menu" role="menu" aria-label="Community menu" onKeyDown={(e) => e.key === 'Escape' && setMenu(false)}>
            {has(perms, 'CREATE_INVITE') && (
              <li role="none">
                <button role="menuitem" type="button" onClick={() => (setMenu(false), onDialog({ kind: 'invite', communityId }))}>
                  Invite people
                </button>
              </li>
            )}
            {canManage && (
              <li role="none">
                <button role="menuitem" type="button" onClick={() => (setMenu(false), onDialog({ kind: 'community-settings', communityId }))}>
                  Community settings
                </button>
              </li>
            )}
            {has(perms, 'MANAGE_CHANNELS') && (
              <li role="none">
                <button role="menuitem" type="button" onClick={() => (setMenu(false), onDialog({ kind: 'create-channel', communityId }))}>
                  Create channel
                </button>
              </li>
            )}
            <li role="none">
              <button role="menuitem" type="button" onClick={() => (setMenu(false), onDialog({ kind: 'community-notifications', communityId }))}>
                Notification settings
              </button>
            </li>
            {community.owner_id !== meId && (
              <li role="none">
                <button role="menuitem" type="button" className="danger" onClick={leave}>
                  Leave community
                </button>
              </li>
            )}
          </ul>
        )}
      </header>
      <nav className="channel-nav" aria-label={`${community.name} channels`}>
        <ul role="list" className="channel-list">
          {top.map((c) => (
            <ChannelItem key={c.id} channel={c} active={c.id === channelId} communityId={communityId} />
          ))}
        </ul>
        {categories.map((cat) => (
          <section key={cat.id} aria-label={cat.name ?? 'Category'}>
            <h3 className="category">{cat.name}</h3>
            <ul role="list" className="channel-list">
              {channels
                .filter((c) => c.parent_id === cat.id)
                .map((c) => (
                  <ChannelItem key={c.id} channel={c} active={c.id === channelId} communityId={communityId} />
                ))}
            </ul>
          </section>
        ))}
        {channels
          .filter((c) => c.parent_id && !channels.some((p) => p.id === c.parent_id))
          .map((c) => (
            <ul role="list" className="channel-list" key={c.id}>
              <ChannelItem channel={c} active={c.id === channelId} communityId={communityId} />
            </ul>
          ))}
      </nav>
    </>
  );
}

function ChannelItem({ channel, active, communityId }: { channel: Channel; active: boolean; communityId: string }) {
  const perms = usePermissions(communityId, channel);
  const inThisCall = useStore(callStore, (s) => s.channelId === channel.id && s.status !== 'idle');
  const unread = useStore(readStatesStore, (s) => isUnread(s, channel.id));
  const mentions = useStore(readStatesStore, (s) => mentionCount(s, channel.id));
  // Its own mute gets the icon; a muted community dims every channel in it.
  const ownMute = useStore(notificationSettingsStore, (s) => channelMuted(s, channel.id));
  const inMutedCommunity = useStore(notificationSettingsStore, (s) => communityMuted(s, communityId));
  const silenced = ownMute || inMutedCommunity;
  const label = `${channel.kind === 'voice' ? 'voice channel' : 'channel'} ${channel.name}${mentions ? `, ${mentions} mention${mentions === 1 ? '' : 's'}` : unread ? ', unread' : ''}${silenced ? ', muted' : ''}`;
  return (
    <li>
      <a
        href={`/app?c=${communityId}&ch=${channel.id}`}
        className={`channel-item${active ? ' active' : ''}${unread && !active ? ' unread' : ''}${silenced ? ' silenced' : ''}`}
        aria-current={active ? 'page' : undefined}
        aria-label={label}
        data-channel-name={channel.name ?? ''}
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          setQuery({ c: communityId, ch: channel.id });
          // Clicking a voice channel joins it (when allowed).
          if (channel.kind === 'voice' && !inThisCall && has(perms, 'CONNECT')) voiceCall().join(communityId, channel.id, { speak: has(perms, 'SPEAK') });
        }}
      >
        <span className="channel-hash" aria-hidden="true">
          {channel.kind === 'voice' ? <Icon name="speaker" size={18} /> : '#'}
        </span>
        <span className="channel-name">{channel.name}</span>
        {ownMute && (
          <span className="muted-icon" aria-hidden="true" title="Notifications muted">
            <Icon name="bellOff" size={14} />
          </span>
        )}
        {mentions > 0 && !active && (
          <span className="badge" aria-hidden="true">
            {mentions > 99 ? '99+' : mentions}
          </span>
        )}
      </a>
      {channel.kind === 'voice' && <VoiceMembers communityId={communityId} channelId={channel.id} />}
    </li>
  );
}

function DmList({ channelId, onDialog }: { channelId: string | null; onDialog: (d: Dialog) => void }) {
  const dms = useDms();
  const me = useMe();
  const users = useStore(communitiesStore, (s) => s.users);
  return (
    <>
      <header className="sidebar-header">
        <div className="sidebar-title static">
          <h2>Direct messages</h2>
        </div>
      </header>
      <nav className="channel-nav" aria-label="Direct messages">
        <button type="button" className="btn btn-secondary btn-block" onClick={() => onDialog({ kind: 'new-dm' })}>
          New message
        </button>
        <ul role="list" className="channel-list">
          {dms.map((dm) => (
            <DmItem key={dm.id} dm={dm} active={dm.id === channelId} label={channelLabel(dm, me?.id ?? null, users)} otherId={dm.kind === 'dm' ? dm.recipients?.find((u) => u.id !== me?.id)?.id ?? null : null} />
          ))}
        </ul>
        {dms.length === 0 && <p className="muted small pad">No conversations yet.</p>}
      </nav>
    </>
  );
}

function DmItem({ dm, active, label, otherId }: { dm: Channel; active: boolean; label: string; otherId: string | null }) {
  const unread = useStore(readStatesStore, (s) => isUnread(s, dm.id));
  const mentions = useStore(readStatesStore, (s) => mentionCount(s, dm.id));
  const muted = useStore(notificationSettingsStore, (s) => channelMuted(s, dm.id));
  return (
    <li>
      <a
        href={`/app?c=@me&ch=${dm.id}`}
        className={`channel-item dm-item${active ? ' active' : ''}${unread && !active ? ' unread' : ''}${muted ? ' silenced' : ''}`}
        aria-current={active ? 'page' : undefined}
        aria-label={muted ? `${label}${mentions ? `, ${mentions} mention${mentions === 1 ? '' : 's'}` : ''}, muted` : undefined}
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          setQuery({ c: '@me', ch: dm.id });
        }}
      >
        <Avatar id={otherId ?? dm.id} name={label} size={28} presence={!!otherId} />
        <span className="channel-name">{label}</span>
        {muted && (
          <span className="muted-icon" aria-hidden="true" title="Notifications muted">
            <Icon name="bellOff" size={14} />
          </span>
        )}
        {mentions > 0 && !active && <span className="badge">{mentions}</span>}
      </a>
    </li>
  );
}

function UserPanel({ onDialog }: { onDialog: (d: Dialog) => void }) {
  const me = useMe();
  if (!me) return null;
  const name = me.display_name || me.username;
  return (
    <section className="user-panel" aria-label="Your account">
      <Avatar id={me.id} name={name} size={32} />
      <span className="user-panel-dot">
        <PresenceDot userId={me.id} />
      </span>
      <div className="user-panel-names">
        <span className="user-panel-name">{name}</span>
        <span className="muted small">@{me.username}</span>
      </div>
      <button type="button" className="icon-btn" aria-label="User settings" title="User settings" onClick={() => onDialog({ kind: 'user-settings' })}>
        <Icon name="gear" />
      </button>
    </section>
  );
}
