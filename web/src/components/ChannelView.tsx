'use client';
// The open channel: header (name, topic, pins, members toggle), message list, typing
// indicator and composer.
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { Message } from '@/api/types';
import { api, unwrap } from '@/lib/api';
import { getClient } from '@/lib/client';
import { describeError } from '@/lib/errors';
import { has, useMe, usePermissions } from '@/lib/hooks';
import { renderMarkdown } from '@/lib/markdown';
import { channelLabel, communitiesStore, displayName } from '@/stores/communities';
import { messagesStore } from '@/stores/messages';
import { typingStore } from '@/stores/presence';
import { useStore } from '@/stores/store';
import { Composer } from './Composer';
import { MessageList } from './MessageList';
import { useRenderContext } from './MessageItem';
import { formatStamp } from './ui';
import { Icon } from './icons';

export function ChannelView({ channelId, showMembers, onToggleMembers }: { channelId: string; showMembers: boolean; onToggleMembers: () => void }) {
  const channel = useStore(communitiesStore, (s) => s.channels[channelId]);
  const me = useMe();
  const users = useStore(communitiesStore, (s) => s.users);
  const isDm = channel?.kind === 'dm' || channel?.kind === 'group_dm';
  const perms = usePermissions(isDm ? null : channel?.community_id ?? null, channel);
  const [editingId, setEditingId] = useState<string | null>(null);
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const [pinsOpen, setPinsOpen] = useState(false);

  const canSend = isDm || has(perms, 'SEND_MESSAGES');
  const canManage = !isDm && has(perms, 'MANAGE_MESSAGES');
  const canReact = isDm || has(perms, 'ADD_REACTIONS');

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
    <main className="chat" aria-label={isDm ? label : `#${label}`}>
      <header className="chat-header">
        <span className="channel-hash big" aria-hidden="true">
          {isDm ? '@' : '#'}
        </span>
        <h1 className="chat-title">{label}</h1>
        {channel.topic && <p className="chat-topic">{channel.topic}</p>}
        <div className="chat-header-actions">
          <button type="button" className="icon-btn" aria-label="Pinned messages" title="Pinned messages" aria-expanded={pinsOpen} onClick={() => setPinsOpen((v) => !v)}>
            <Icon name="pin" />
          </button>
          <button type="button" className="icon-btn" aria-label={showMembers ? 'Hide member list' : 'Show member list'} title="Member list" aria-pressed={showMembers} onClick={onToggleMembers}>
            <Icon name="members" />
          </button>
        </div>
      </header>
      {pinsOpen && <PinsPanel channelId={channelId} communityId={channel.community_id ?? null} onClose={() => setPinsOpen(false)} />}
      <MessageList channel={channel} editingId={editingId} onEdit={setEditingId} onReply={setReplyTo} canManage={canManage} canReact={canReact} />
      <TypingIndicator channelId={channelId} communityId={channel.community_id ?? null} />
      <Composer channel={channel} label={isDm ? `Message @${label}` : `Message #${label}`} disabled={!canSend} replyTo={replyTo} onCancelReply={() => setReplyTo(null)} onEditLast={editLast} />
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
            <div className="message-body">{renderMarkdown(m.content, ctx)}</div>
          </li>
        ))}
      </ul>
    </section>
  );
}
