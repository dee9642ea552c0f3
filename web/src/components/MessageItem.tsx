'use client';
// One message: header (avatar, name, time) for the first of a group, Markdown body,
// reply preview, reactions, hover actions, and inline editing.
import { memo, useMemo, useRef, useState, useEffect, type KeyboardEvent } from 'react';
import type { Message } from '@/api/types';
import { getClient } from '@/lib/client';
import { describeError } from '@/lib/errors';
import { idToTime } from '@/lib/ids';
import { renderMarkdown, toPlainText, type RenderContext } from '@/lib/markdown';
import { communitiesStore, displayName } from '@/stores/communities';
import { findMessage, messagesStore, type PendingMessage } from '@/stores/messages';
import { notify } from '@/stores/notices';
import { sessionStore } from '@/stores/session';
import { useStore } from '@/stores/store';
import { Avatar, formatFull, formatStamp, formatTime } from './ui';
import { Icon } from './icons';
import { openReport } from './ReportDialog';
import { MessageAttachments, MessageEmbeds } from './Attachments';

export const QUICK_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '✅'];

interface Props {
  message?: Message;
  pending?: PendingMessage;
  header: boolean;
  editing: boolean;
  onEdit: (id: string | null) => void;
  onReply: (m: Message) => void;
  canManage: boolean;
  canReact: boolean;
  /** Bulk-delete select mode: a checkbox per message instead of the action bar. */
  selecting?: boolean;
  selected?: boolean;
  onToggleSelect?: (id: string) => void;
  /** The message a jump landed on (a search result): marked for a moment. */
  flash?: boolean;
}

export function useRenderContext(communityId: string | null | undefined): RenderContext {
  const users = useStore(communitiesStore, (s) => s.users);
  const roles = useStore(communitiesStore, (s) => (communityId ? s.roles[communityId] : undefined));
  const members = useStore(communitiesStore, (s) => (communityId ? s.members[communityId] : undefined));
  const meId = useStore(sessionStore, (s) => s.user?.id ?? null);
  return useMemo(
    () => ({
      userName: (id: string) => {
        const u = users[id];
        return u ? displayName(u, members?.[id]) : null;
      },
      roleName: (id: string) => roles?.find((r) => r.id === id)?.name ?? null,
      meId,
      myRoleIds: meId ? members?.[meId]?.roles : undefined,
    }),
    [users, roles, members, meId],
  );
}

export const MessageItem = memo(function MessageItem({ message, pending, header, editing, onEdit, onReply, canManage, canReact, selecting = false, selected = false, onToggleSelect, flash = false }: Props) {
  const meId = useStore(sessionStore, (s) => s.user?.id ?? null);
  const m = message;
  const author = m?.author ?? pending!.author;
  const communityId = m?.community_id ?? null;
  const member = useStore(communitiesStore, (s) => (communityId ? s.members[communityId]?.[author.id] : undefined));
  const cachedAuthor = useStore(communitiesStore, (s) => s.users[author.id]);
  const ctx = useRenderContext(communityId);
  const name = displayName(cachedAuthor ?? author, member);
  const content = m?.content ?? pending!.content;
  const body = useMemo(() => renderMarkdown(content, ctx), [content, ctx]);
  const created = new Date(m ? Date.parse(m.created_at) || idToTime(m.id) : Date.parse(pending!.created_at));
  const mine = author.id === meId;
  const mentioned = !!m && !!meId && (m.mentions?.includes(meId) || content.includes(`<@${meId}>`) || /(^|\s)@everyone\b/.test(content));
  const [picker, setPicker] = useState(false);

  const classes = ['message', header ? 'message-head' : 'message-cont', pending ? `pending pending-${pending.status}` : '', mentioned ? 'mentioned' : '', editing ? 'editing' : '', selected ? 'selected' : '', flash ? 'jump-target' : '']
    .filter(Boolean)
    .join(' ');

  const act = (fn: () => Promise<unknown>) => () => {
    fn().catch((e) => notify(describeError(e)));
  };

  return (
    <article className={classes} aria-label={`${name}, ${formatFull(created)}`} data-message-id={m?.id} data-nonce={pending?.nonce}>
      {m?.reply_to_id && <ReplyPreview channelId={m.channel_id} id={m.reply_to_id} ctx={ctx} />}
      <div className="message-row">
        {selecting && m && (
          <label className="select-box">
            <input type="checkbox" checked={selected} onChange={() => onToggleSelect?.(m.id)} />
            <span className="sr-only">Select message from {name}: {content.slice(0, 60)}</span>
          </label>
        )}
        <div className="message-gutter">
          {header ? (
            <Avatar id={author.id} name={name} />
          ) : (
            <time className="hover-time" dateTime={created.toISOString()} title={formatFull(created)}>
              {formatTime(created)}
            </time>
          )}
        </div>
        <div className="message-main">
          {header && (
            <div className="message-meta">
              <span className="author">{name}</span>
              <time dateTime={created.toISOString()} title={formatFull(created)}>
                {formatStamp(created)}
              </time>
            </div>
          )}
          {editing && m ? (
            <EditBox message={m} onDone={() => onEdit(null)} />
          ) : (
            (content !== '' || m?.edited_at) && (
            <div className="message-body">
              {body}
              {m?.edited_at && (
                <span className="edited" title={`Edited ${formatFull(new Date(m.edited_at))}`}>
                  {' '}
                  (edited)
                </span>
              )}
            </div>
            )
          )}
          {m && m.attachments && m.attachments.length > 0 && <MessageAttachments attachments={m.attachments} createdAt={created.getTime()} />}
          {m && m.embeds && m.embeds.length > 0 && <MessageEmbeds embeds={m.embeds} />}
          {pending?.attachments && pending.attachments.length > 0 && (
            <ul className="pending-files small muted" aria-label="Files">
              {pending.attachments.map((a) => (
                <li key={a.id}>📎 {a.filename}</li>
              ))}
            </ul>
          )}
          {pending && pending.status === 'sending' && (
            // Visible, not announced: every message passes through this state.
            <div className="pending-note">Sending…</div>
          )}
          {pending && pending.status !== 'sending' && (
            <div className="pending-note" role="status">
              {pending.status === 'queued' ? pending.error ?? 'Waiting for connection — will send automatically.' : pending.error ?? 'Not sent.'}{' '}
              <button type="button" className="link-btn" onClick={() => getClient().retryPending(pending.channel_id)}>
                Retry now
              </button>{' '}
              <button type="button" className="link-btn" onClick={() => getClient().discardPending(pending.channel_id, pending.nonce)}>
                Discard
              </button>
            </div>
          )}
          {m && m.pinned && (
            <span className="pin-tag">
              <Icon name="pin" size={12} /> Pinned
            </span>
          )}
          {m && m.reactions && m.reactions.length > 0 && (
            <ul className="reactions" role="list" aria-label="Reactions">
              {m.reactions.map((r) => (
                <li key={r.emoji}>
                  <button
                    type="button"
                    className={r.me ? 'reaction me' : 'reaction'}
                    aria-pressed={r.me}
                    aria-label={`${r.emoji} ${r.count} reaction${r.count === 1 ? '' : 's'}${r.me ? ', including you' : ''}`}
                    disabled={!canReact && !r.me}
                    onClick={act(() => getClient().toggleReaction(m.channel_id, m.id, r.emoji, !r.me))}
                  >
                    <span aria-hidden="true">{r.emoji}</span> <span aria-hidden="true">{r.count}</span>
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      </div>
      {m && !editing && !selecting && (
        <div className="message-actions" role="toolbar" aria-label="Message actions">
          {canReact && (
            <button type="button" className="icon-btn" aria-label="Add reaction" title="Add reaction" aria-expanded={picker} onClick={() => setPicker((p) => !p)}>
              <Icon name="smile" size={18} />
            </button>
          )}
          <button type="button" className="icon-btn" aria-label="Reply" title="Reply" onClick={() => onReply(m)}>
            <Icon name="reply" size={18} />
          </button>
          {mine && (
            <button type="button" className="icon-btn" aria-label="Edit message" title="Edit" onClick={() => onEdit(m.id)}>
              <Icon name="edit" size={18} />
            </button>
          )}
          {canManage && (
            <button type="button" className="icon-btn" aria-label={m.pinned ? 'Unpin message' : 'Pin message'} title={m.pinned ? 'Unpin' : 'Pin'} onClick={act(() => getClient().setPinned(m.channel_id, m.id, !m.pinned))}>
              <Icon name="pin" size={18} />
            </button>
          )}
          {!mine && (
            <button
              type="button"
              className="icon-btn"
              aria-label="Report message"
              title="Report"
              onClick={() => openReport({ kind: 'message', messageId: m.id, channelId: m.channel_id, communityId: m.community_id ?? null, authorName: name, preview: toPlainText(m.content, ctx) })}
            >
              <Icon name="flag" size={18} />
            </button>
          )}
          {(mine || canManage) && (
            <button
              type="button"
              className="icon-btn danger"
              aria-label="Delete message"
              title="Delete (Shift-click to skip confirmation)"
              onClick={(e) => {
                if (!e.shiftKey && !window.confirm('Delete this message?')) return;
                act(() => getClient().deleteMessage(m.channel_id, m.id))();
              }}
            >
              <Icon name="trash" size={18} />
            </button>
          )}
          {picker && (
            <div className="emoji-picker" role="group" aria-label="Pick a reaction">
              {QUICK_EMOJI.map((e) => (
                <button
                  key={e}
                  type="button"
                  className="icon-btn"
                  aria-label={`React with ${e}`}
                  onClick={() => {
                    setPicker(false);
                    const has = m.reactions?.some((r) => r.emoji === e && r.me);
                    act(() => getClient().toggleReaction(m.channel_id, m.id, e, !has))();
                  }}
                >
                  {e}
                </button>
              ))}
            </div>
          )}
        </div>
      )}
    </article>
  );
});

function ReplyPreview({ channelId, id, ctx }: { channelId: string; id: string; ctx: RenderContext }) {
  const target = useStore(messagesStore, (s) => findMessage(s, channelId, id));
  const user = useStore(communitiesStore, (s) => (target ? s.users[target.author.id] : undefined));
  // A click goes to the original (loading the history around it when it is further back).
  const jump = () => {
    getClient()
      .jumpTo(channelId, id)
      .catch((e) => notify(describeError(e)));
  };
  return (
    <div className="reply-preview">
      <span className="reply-spine" aria-hidden="true" />
      <button type="button" className="reply-jump" onClick={jump} title="Jump to the original message">
        {target ? (
          <>
            <span className="reply-author">@{displayName(user ?? target.author)}</span> <span className="reply-text">{toPlainText(target.content, ctx).slice(0, 120)}</span>
          </>
        ) : (
          <span className="muted">Original message was deleted or is not loaded.</span>
        )}
      </button>
    </div>
  );
}

function EditBox({ message, onDone }: { message: Message; onDone: () => void }) {
  const [text, setText] = useState(message.content);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (el) {
      el.focus();
      el.setSelectionRange(el.value.length, el.value.length);
    }
  }, []);
  const save = async () => {
    const trimmed = text.trim();
    if (!trimmed) {
      if (window.confirm('Delete this message?')) {
        await getClient().deleteMessage(message.channel_id, message.id).catch((e) => setError(describeError(e)));
      }
      return;
    }
    if (trimmed === message.content) return onDone();
    setBusy(true);
    try {
      await getClient().editMessage(message.channel_id, message.id, trimmed);
      onDone();
    } catch (e) {
      // Keep the edited text: nothing typed is lost.
      setError(describeError(e));
      setBusy(false);
    }
  };
  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      onDone();
    } else if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void save();
    }
  };
  return (
    <div className="edit-box">
      <label className="sr-only" htmlFor={`edit-${message.id}`}>
        Edit message
      </label>
      <textarea id={`edit-${message.id}`} ref={ref} value={text} rows={Math.min(10, text.split('\n').length)} onChange={(e) => setText(e.target.value)} onKeyDown={onKey} disabled={busy} maxLength={4000} />
      <p className="small muted">
        Escape to <button type="button" className="link-btn" onClick={onDone}>cancel</button> · Enter to <button type="button" className="link-btn" onClick={() => void save()}>save</button>
      </p>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
