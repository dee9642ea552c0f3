'use client';
// The open channel: header (name, topic, pins, members toggle), message list, typing
// indicator and composer.
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from 'react';
import type { Message } from '@/api/types';
import { api, unwrap } from '@/lib/api';
import { getClient } from '@/lib/client';
import { describeError } from '@/lib/errors';
import { has, useMe, usePermissions } from '@/lib/hooks';
import { canAttachFiles } from '@/lib/permissions';
import { renderMarkdown } from '@/lib/markdown';
import { channelLabel, communitiesStore, displayName } from '@/stores/communities';
import { messagesStore } from '@/stores/messages';
import { typingStore } from '@/stores/presence';
import { useStore } from '@/stores/store';
import { Composer, attachFiles } from './Composer';
import { MessageList } from './MessageList';
import { useRenderContext } from './MessageItem';
import { MessageAttachments } from './Attachments';
import { formatStamp } from './ui';
import { Icon } from './icons';
import { bulkState, sendState, slowmodeExempt, toggleSelection } from '@/lib/moderation';
import { notify } from '@/stores/notices';
import { notificationSettingsStore, resolve } from '@/stores/notificationSettings';
import { ChannelNotificationsDialog } from './NotificationSettings';
import { SearchBox } from './SearchBox';

export function ChannelView({ channelId, showMembers, onToggleMembers }: { channelId: string; showMembers: boolean; onToggleMembers: () => void }) {
  const channel = useStore(communitiesStore, (s) => s.channels[channelId]);
  const me = useMe();
  const users = useStore(communitiesStore, (s) => s.users);
  const isDm = channel?.kind === 'dm' || channel?.kind === 'group_dm';
  const perms = usePermissions(isDm ? null : channel?.community_id ?? null, channel);
  const [editingId, setEditingId] = useState<string | null>(null);
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const [pinsOpen, setPinsOpen] = useState(false);
  const [notifOpen, setNotifOpen] = useState(false);
  const silenced = useStore(notificationSettingsStore, (s) => resolve(s, { channelId, communityId: channel?.community_id ?? null }).muted);
  const communityName = useStore(communitiesStore, (s) => (channel?.community_id ? s.communities[channel.community_id]?.name : undefined));
  const [selecting, setSelecting] = useState(false);
  const [selected, setSelected] = useState<ReadonlySet<string>>(() => new Set());
  const [deleting, setDeleting] = useState(false);
  const onToggleSelect = useCallback((id: string) => setSelected((s) => toggleSelection(s, id)), []);
  // Messages deleted meanwhile (by anyone) drop out of the selection.
  const liveIds = useStore(messagesStore, (s) => s[channelId]?.messages);
  useEffect(() => {
    if (!liveIds) return;
    setSelected((sel) => {
      if (sel.size === 0) return sel;
      const have = new Set(liveIds.map((m) => m.id));
      const next = new Set([...sel].filter((id) => have.has(id)));
      return next.size === sel.size ? sel : next;
    });
  }, [liveIds]);
  const stopSelecting = () => {
    setSelecting(false);
    setSelected(new Set());
  };

  const blockedBy = isDm ? null : sendState(perms, channel);
  const canSend = blockedBy === null;
  const slowmodeSecs = !isDm && channel?.slowmode_secs && !slowmodeExempt(perms) ? channel.slowmode_secs : 0;
  const canManage = !isDm && has(perms, 'MANAGE_MESSAGES');
  const canReact = isDm || has(perms, 'ADD_REACTIONS');
  const canAttach = canAttachFiles(perms, { isDm, canSend });
  // Files dragged over the channel: an overlay says where they go; dropped, they join the tray.
  const [dragging, setDragging] = useState(false);
  const dragDepth = useRef(0);
  const hasFiles = (e: DragEvent) => [...(e.dataTransfer?.types ?? [])].includes('Files');
  // A file dropped beside the channel (the sidebar, the member list) must not make the
  // browser leave the app to open it.
  useEffect(() => {
    const stop = (e: globalThis.DragEvent) => {
      if ([...(e.dataTransfer?.types ?? [])].includes('Files')) e.preventDefault();
    };
    window.addEventListener('dragover', stop);
    window.addEventListener('drop', stop);
    return () => {
      window.removeEventListener('dragover', stop);
      window.removeEventListener('drop', stop);
    };
  }, []);
  useEffect(() => {
    dragDepth.current = 0;
    setDragging(false);
  }, [channelId]);
  const dropHandlers = canAttach
    ? {
        onDragEnter: (e: DragEvent) => {
          if (!hasFiles(e)) return;
          e.preventDefault();
          dragDepth.current++;
          setDragging(true);
        },
        onDragOver: (e: DragEvent) => {
          if (!hasFiles(e)) return;
          e.preventDefault();
          e.dataTransfer.dropEffect = 'copy';
        },
        onDragLeave: (e: DragEvent) => {
          if (!hasFiles(e)) return;
          dragDepth.current = Math.max(0, dragDepth.current - 1);
          if (dragDepth.current === 0) setDragging(false);
        },
        onDrop: (e: DragEvent) => {
          if (!hasFiles(e)) return;
          e.preventDefault();
          dragDepth.current = 0;
          setDragging(false);
          attachFiles(channelId, [...e.dataTransfer.files]);
        },
      }
    : {};

  // Channels don't always arrive with their overwrites: read them so "can I send?" is right.
  const communityId = channel?.community_id ?? null;
  useEffect(() => {
    if (communityId) void getClient().loadOverwrites(channelId);
  }, [channelId, communityId]);

  const editLast = useCallback(() => {
    const log = messagesStore.get()[channelId];
    if (!log || !me) return;
    for (let i = log.messages.length - 1; i >= 0; i--) {
      if (log.messages[i].author.id === me.id) {
        setEditingId(log.messages[i].id);
        return;
      }
    }
  }, [channelId, me]);

  if (!channel) return <main className="chat" />;
  const label = channelLabel(channel, me?.id ?? null, users);
  return (
    <main className="chat" aria-label={isDm ? label : `#${label}`} {...dropHandlers}>
      {dragging && (
        <div className="drop-overlay" aria-hidden="true">
          <div>
            <Icon name="download" size={40} />
            <p>Drop files to send them to {isDm ? label : `#${label}`}</p>
          </div>
        </div>
      )}
      <header className="chat-header">
        <span className="channel-hash big" aria-hidden="true">
          {isDm ? '@' : '#'}
        </span>
        <h1 className="chat-title">{label}</h1>
        {channel.topic && <p className="chat-topic">{channel.topic}</p>}
        <div className="chat-header-actions">
          {canManage && (
            <button type="button" className={selecting ? 'btn btn-secondary btn-small' : 'icon-btn'} aria-pressed={selecting} aria-label={selecting ? 'Stop selecting messages' : 'Select messages'} title="Select messages to delete" onClick={() => (selecting ? stopSelecting() : setSelecting(true))}>
              {selecting ? 'Done' : <Icon name="check" />}
            </button>
          )}
          <button type="button" className="icon-btn" aria-label={silenced ? 'Notification settings (muted)' : 'Notification settings'} title="Notification settings" aria-haspopup="dialog" onClick={() => setNotifOpen(true)}>
            <Icon name={silenced ? 'bellOff' : 'bell'} />
          </button>
          <button type="button" className="icon-btn" aria-label="Pinned messages" title="Pinned messages" aria-expanded={pinsOpen} onClick={() => setPinsOpen((v) => !v)}>
            <Icon name="pin" />
          </button>
          <button type="button" className="icon-btn" aria-label={showMembers ? 'Hide member list' : 'Show member list'} title="Member list" aria-pressed={showMembers} onClick={onToggleMembers}>
            <Icon name="members" />
          </button>
          {/* A DM searches every DM; a community channel, the whole community. */}
          {isDm ? <SearchBox scope="@me" placeName="direct messages" /> : channel.community_id && <SearchBox scope={channel.community_id} placeName={communityName ?? 'this community'} />}
        </div>
      </header>
      {notifOpen && <ChannelNotificationsDialog channelId={channelId} onClose={() => setNotifOpen(false)} />}
      {pinsOpen && <PinsPanel channelId={channelId} communityId={channel.community_id ?? null} onClose={() => setPinsOpen(false)} />}
      {selecting && canManage && (
        <div className="select-bar" role="region" aria-label="Bulk delete">
          <span role="status">{bulkState(selected.size).hint}</span>
          <button
            type="button"
            className="btn btn-danger"
            disabled={!bulkState(selected.size).canDelete || deleting}
            onClick={() => {
              const ids = [...selected];
              if (!window.confirm(`Delete ${ids.length} messages? This cannot be undone.`)) return;
              setDeleting(true);
              getClient()
                .bulkDelete(channelId, ids)
                .then(() => {
                  notify(`${ids.length} messages deleted.`, 'info');
                  stopSelecting();
                })
                .catch((e) => notify(describeError(e)))
                .finally(() => setDeleting(false));
            }}
          >
            Delete {selected.size >= 2 ? selected.size : ''} messages
          </button>
          <button type="button" className="btn btn-secondary" onClick={stopSelecting}>
            Cancel
          </button>
        </div>
      )}
      <MessageList channel={channel} editingId={editingId} onEdit={setEditingId} onReply={setReplyTo} canManage={canManage} canReact={canReact} selecting={selecting && canManage} selectedIds={selected} onToggleSelect={onToggleSelect} />
      <TypingIndicator channelId={channelId} communityId={channel.community_id ?? null} />
      <Composer
        channel={channel}
        label={isDm ? `Message @${label}` : `Message #${label}`}
        disabled={!canSend}
        blockedBy={blockedBy}
        slowmodeSecs={slowmodeSecs}
        lockedForOthers={!isDm && !!channel.locked && canSend}
        canAttach={canAttach}
        replyTo={replyTo}
        onCancelReply={() => setReplyTo(null)}
        onEditLast={editLast}
      />
    </main>
  );
}

function TypingIndicator({ channelId, communityId }: { channelId: string; communityId: string | null }) {
  const typing = useStore(typingStore, (s) => s[channelId]);
  const users = useStore(communitiesStore, (s) => s.users);
  const members = useStore(communitiesStore, (s) => (communityId ? s.members[communityId] : undefined));
  const now = Date.now();
  const names = Object.entries(typing ?? {})
    .filter(([, exp]) => exp > now)
    .map(([id]) => displayName(users[id], members?.[id]));
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = 'Several people are typing…';
  return (
    <div className="typing" aria-live="polite">
      {text && (
        <>
          <span className="typing-dots" aria-hidden="true">
            <i />
            <i />
            <i />
          </span>
          {text}
        </>
      )}
    </div>
  );
}

function PinsPanel({ channelId, communityId, onClose }: { channelId: string; communityId: string | null; onClose: () => void }) {
  const [pins, setPins] = useState<Message[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const ctx = useRenderContext(communityId);
  // Re-fetch when a pin changes in the loaded log.
  const pinnedKey = useStore(messagesStore, (s) => (s[channelId]?.messages ?? []).filter((m) => m.pinned).map((m) => m.id).join(','));
  useEffect(() => {
    unwrap<Message[]>(api.GET('/api/v1/channels/{id}/pins', { params: { path: { id: channelId } } }))
      .then(setPins)
      .catch((e) => setError(describeError(e)));
  }, [channelId, pinnedKey]);
  const list = useMemo(() => pins ?? [], [pins]);
  return (
    <section className="pins-panel" aria-label="Pinned messages">
      <header>
        <h2>Pinned messages</h2>
        <button type="button" className="icon-btn" onClick={onClose} aria-label="Close pinned messages">
          <Icon name="close" size={16} />
        </button>
      </header>
      {error && <p className="form-error">{error}</p>}
      {pins === null && !error && <p className="muted">Loading…</p>}
      {pins && list.length === 0 && <p className="muted">No pinned messages yet.</p>}
      <ul role="list">
        {list.map((m) => (
          <li key={m.id} className="pin">
            <div className="message-meta">
              <span className="author">{displayName(m.author)}</span>
              <time dateTime={m.created_at}>{formatStamp(new Date(m.created_at))}</time>
            </div>
            {m.content && <div className="message-body">{renderMarkdown(m.content, ctx)}</div>}
            {m.attachments?.length > 0 && <MessageAttachments attachments={m.attachments} createdAt={Date.parse(m.created_at)} />}
          </li>
        ))}
      </ul>
    </section>
  );
}
