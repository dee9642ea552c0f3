'use client';
// The message box. Enter sends, Shift+Enter adds a line, Up in an empty box edits your
// last message, Escape cancels a reply. "@" opens member autocomplete: the box shows
// @name, the wire gets <@id>. The draft is kept per channel and failed sends come back
// into it, so nothing typed is lost. Files (the attach button, a paste, a drop on the
// channel) go up at once into the tray above the box, each with progress and a cancel;
// the message goes when they have all finished.
import { useEffect, useLayoutEffect, useMemo, useRef, useState, type ClipboardEvent, type KeyboardEvent } from 'react';
import type { Channel, Message, UserSummary } from '@/api/types';
import { getClient } from '@/lib/client';
import { communitiesStore, displayName } from '@/stores/communities';
import { draftsStore, setComposerError, setCooldown, setDraft } from '@/stores/drafts';
import { formatDuration, secondsLeft } from '@/lib/moderation';
import { useStore } from '@/stores/store';
import { useMe } from '@/lib/hooks';
import { Avatar } from './ui';
import { Icon } from './icons';
import { addFiles, removeUpload, retryUpload, takeUploads } from '@/lib/attachments';
import { formatBytes } from '@/lib/uploader';
import { MAX_FILES, percent, trayOf, trayState, uploadsStore, type TrayItem } from '@/stores/uploads';

interface Props {
  channel: Channel;
  label: string;
  disabled: boolean;
  replyTo: Message | null;
  onCancelReply: () => void;
  onEditLast: () => void;
  /** Why we can't post, when `disabled`: the channel is locked, or a permission is missing. */
  blockedBy?: 'locked' | 'no_permission' | null;
  /** The channel's slowmode for us (0: off or exempt). */
  slowmodeSecs?: number;
  /** We may post, but the channel is locked for members (shown to moderators). */
  lockedForOthers?: boolean;
  /** We may attach files (ATTACH_FILES, or a DM). */
  canAttach?: boolean;
}

interface Candidate {
  user: UserSummary;
  name: string;
}

/** Turns the @username tokens the user picked (or typed exactly) into <@id>. */
export function encodeMentions(text: string, byName: ReadonlyMap<string, string>): string {
  // Leave code spans and blocks alone.
  return text
    .split(/(```[\s\S]*?```|`[^`\n]*`)/g)
    .map((part, i) =>
      i % 2 === 1
        ? part
        : part.replace(/(^|[^\w@<])@([a-z0-9_.]{2,32})\b/gi, (all, pre: string, name: string) => {
            const id = byName.get(name.toLowerCase());
            return id ? `${pre}<@${id}>` : all;
          }),
    )
    .join('');
}

/** Seconds until slowmode lets us send again in this channel (ticks while it runs). */
function useCooldown(channelId: string): number {
  const until = useStore(draftsStore, (s) => s.cooldown[channelId]);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!until) return;
    setNow(Date.now());
    const t = setInterval(() => {
      const n = Date.now();
      setNow(n);
      if (n >= until) {
        clearInterval(t);
        setCooldown(channelId, null);
      }
    }, 250);
    return () => clearInterval(t);
  }, [until, channelId]);
  return secondsLeft(until, now);
}

/** Adds files to the channel's tray; a sentence above the box when some were left out. */
export function attachFiles(channelId: string, files: readonly File[]) {
  if (!files.length) return;
  setComposerError(channelId, addFiles(channelId, files));
}

export function Composer({ channel, label, disabled, replyTo, onCancelReply, onEditLast, blockedBy = null, slowmodeSecs = 0, lockedForOthers = false, canAttach = false }: Props) {
  const channelId = channel.id;
  const wait = useCooldown(channelId);
  const text = useStore(draftsStore, (s) => s.text[channelId] ?? '');
  const error = useStore(draftsStore, (s) => s.error[channelId] ?? null);
  const me = useMe();
  const ref = useRef<HTMLTextAreaElement>(null);
  const [query, setQuery] = useState<string | null>(null);
  const [sel, setSel] = useState(0);
  const tray = useStore(uploadsStore, (s) => trayOf(s, channelId));
  const trayInfo = trayState(tray);
  const fileInput = useRef<HTMLInputElement>(null);

  const communityId = channel.community_id;
  const members = useStore(communitiesStore, (s) => (communityId ? s.members[communityId] : undefined));
  const users = useStore(communitiesStore, (s) => s.users);
  const candidates: Candidate[] = useMemo(() => {
    const list: Candidate[] = [];
    if (members) for (const m of Object.values(members)) list.push({ user: m.user, name: displayName(m.user, m) });
    else for (const u of channel.recipients ?? []) list.push({ user: users[u.id] ?? u, name: displayName(users[u.id] ?? u) });
    return list;
  }, [members, channel.recipients, users]);
  const byName = useMemo(() => new Map(candidates.map((c) => [c.user.username.toLowerCase(), c.user.id])), [candidates]);
  const matches = useMemo(() => {
    if (query === null) return [];
    const q = query.toLowerCase();
    return candidates.filter((c) => c.user.username.toLowerCase().startsWith(q) || c.name.toLowerCase().startsWith(q)).slice(0, 8);
  }, [query, candidates]);

  useEffect(() => {
    ref.current?.focus();
  }, [channelId, replyTo]);

  // Grow with the text up to a limit.
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 240)}px`;
  }, [text]);

  const caretAfterPick = useRef<number | null>(null);
  useLayoutEffect(() => {
    const el = ref.current;
    const at = caretAfterPick.current;
    if (!el || at === null) return;
    caretAfterPick.current = null;
    el.focus();
    el.setSelectionRange(at, at);
  }, [text]);

  const updateQuery = (value: string, caret: number) => {
    const m = /(^|\s)@([\w.]{0,32})$/.exec(value.slice(0, caret));
    setQuery(m ? m[2] : null);
    setSel(0);
  };

  const pick = (c: Candidate) => {
    const el = ref.current;
    if (!el) return;
    const caret = el.selectionStart ?? text.length;
    const before = text.slice(0, caret).replace(/@([\w.]{0,32})$/, `@${c.user.username} `);
    const next = before + text.slice(caret);
    // The caret goes after the inserted name in the same commit that shows it (a layout
    // effect, below), not in a later frame: keys typed in between would land before it.
    caretAfterPick.current = before.length;
    setDraft(channelId, next);
    setQuery(null);
  };

  const send = () => {
    if (disabled || wait > 0) return;
    const content = encodeMentions(text.trim(), byName);
    if (tray.length > 0 && !trayInfo.ready) {
      setComposerError(channelId, trayInfo.uploading ? 'Wait for the uploads to finish, then send.' : 'Remove or retry the files that failed, then send.');
      return;
    }
    if (!content && !trayInfo.ready) return;
    if (content.length > 4000) {
      setComposerError(channelId, `That message is too long (${content.length}/4000).`);
      return;
    }
    const attachments = tray.length ? takeUploads(channelId) : [];
    getClient().sendMessage(channelId, content, replyTo?.id ?? null, attachments);
    setDraft(channelId, '');
    onCancelReply();
  };

  // Files and images pasted into the box (a screenshot, a copied file) join the tray.
  const onPaste = (e: ClipboardEvent<HTMLTextAreaElement>) => {
    const files = [...(e.clipboardData?.files ?? [])];
    if (!files.length) return;
    e.preventDefault();
    if (disabled) return;
    if (!canAttach) {
      setComposerError(channelId, "You can't attach files in this channel.");
      return;
    }
    attachFiles(channelId, files);
  };

  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.nativeEvent.isComposing) return;
    if (matches.length > 0) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        setSel((s) => (s + (e.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        pick(matches[sel] ?? matches[0]);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        setQuery(null);
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      send();
    } else if (e.key === 'ArrowUp' && text === '') {
      e.preventDefault();
      onEditLast();
    } else if (e.key === 'Escape' && replyTo) {
      e.preventDefault();
      onCancelReply();
    }
  };

  const listId = `mention-list-${channelId}`;
  return (
    <div className="composer-wrap">
      {error && (
        <div className="composer-error" role="alert">
          {error}
          <button type="button" className="icon-btn" aria-label="Dismiss error" onClick={() => setComposerError(channelId, null)}>
            ✕
          </button>
        </div>
      )}
      {replyTo && (
        <div className="reply-bar">
          Replying to <strong>{displayName(users[replyTo.author.id] ?? replyTo.author)}</strong>
          <button type="button" className="icon-btn" aria-label="Cancel reply" onClick={onCancelReply}>
            ✕
          </button>
        </div>
      )}
      {matches.length > 0 && (
        <ul className="mention-list" id={listId} role="listbox" aria-label="Mention a member">
          {matches.map((c, i) => (
            <li
              key={c.user.id}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === sel}
              className={i === sel ? 'selected' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(c);
              }}
            >
              <Avatar id={c.user.id} name={c.name} size={20} />
              <span>{c.name}</span>
              <span className="muted small">@{c.user.username}</span>
            </li>
          ))}
        </ul>
      )}
      {disabled && text.trim() !== '' && blockedBy !== 'locked' && (
        <div className="composer-error" role="status">
          You no longer have permission to send messages here. Your text is kept below.
        </div>
      )}
      {disabled && blockedBy === 'locked' && (
        <div className="composer-note composer-locked" role="status">
          🔒 This channel is locked. Only moderators can send messages here.
        </div>
      )}
      {!disabled && lockedForOthers && <div className="composer-note">🔒 This channel is locked: members can&apos;t post, you can.</div>}
      {!disabled && wait > 0 && (
        <div className="composer-note composer-slowmode" role="status">
          Slowmode is on. You can send again in {wait}s.
        </div>
      )}
      {!disabled && wait === 0 && slowmodeSecs > 0 && <div className="composer-note">Slowmode: one message every {formatDuration(slowmodeSecs)}.</div>}
      {tray.length > 0 && <UploadTray channelId={channelId} items={tray} ready={trayInfo.ready} onSend={send} />}
      <div className={disabled ? 'composer disabled' : 'composer'}>
        {canAttach && !disabled && (
          <>
            <button type="button" className="icon-btn composer-attach" aria-label="Attach files" title={`Attach files (up to ${MAX_FILES})`} onClick={() => fileInput.current?.click()}>
              <Icon name="plus" size={20} />
            </button>
            <input
              ref={fileInput}
              type="file"
              multiple
              className="sr-only"
              tabIndex={-1}
              aria-hidden="true"
              onChange={(e) => {
                attachFiles(channelId, [...(e.target.files ?? [])]);
                e.target.value = '';
                ref.current?.focus();
              }}
            />
          </>
        )}
        <label htmlFor={`composer-${channelId}`} className="sr-only">
          {label}
        </label>
        <textarea
          id={`composer-${channelId}`}
          ref={ref}
          rows={1}
          value={text}
          placeholder={disabled ? (blockedBy === 'locked' ? 'This channel is locked.' : 'You do not have permission to send messages here.') : label}
          disabled={!me}
          readOnly={disabled}
          aria-disabled={disabled || undefined}
          maxLength={8000}
          aria-controls={matches.length > 0 ? listId : undefined}
          aria-activedescendant={matches.length > 0 ? `${listId}-${sel}` : undefined}
          aria-autocomplete="list"
          onChange={(e) => {
            setDraft(channelId, e.target.value);
            updateQuery(e.target.value, e.target.selectionStart ?? e.target.value.length);
            if (e.target.value.trim()) getClient().typing(channelId);
          }}
          onKeyDown={onKey}
          onPaste={onPaste}
          onBlur={() => setQuery(null)}
        />
      </div>
    </div>
  );
}

/** The files waiting to go with the next message. */
function UploadTray({ channelId, items, ready, onSend }: { channelId: string; items: readonly TrayItem[]; ready: boolean; onSend: () => void }) {
  const uploading = items.filter((t) => t.status === 'uploading').length;
  return (
    <div className="upload-tray" role="region" aria-label="Files to send">
      <ul role="list">
        {items.map((t) => (
          <li key={t.key} className={`upload upload-${t.status}`} data-upload-status={t.status}>
            {t.thumb ? (
              <img className="upload-thumb" src={t.thumb} alt="" width={44} height={44} />
            ) : (
              <span className="upload-thumb" aria-hidden="true">
                <Icon name="file" size={24} />
              </span>
            )}
            <div className="upload-info">
              <span className="upload-name" title={t.name}>
                {t.name}
              </span>
              <span className="small muted">
                {formatBytes(t.size)}
                {t.status === 'done' ? ' · uploaded' : t.status === 'uploading' ? ` · ${percent(t)}%` : ''}
              </span>
              {t.status === 'uploading' && <progress className="upload-progress" max={100} value={percent(t)} aria-label={`Uploading ${t.name}`} />}
              {t.status === 'failed' && <span className="upload-error">{t.error}</span>}
            </div>
            {t.status === 'failed' && t.retryable && (
              <button type="button" className="btn btn-secondary btn-small" onClick={() => retryUpload(channelId, t.key)}>
                Retry
              </button>
            )}
            <button type="button" className="icon-btn" aria-label={t.status === 'uploading' ? `Cancel upload of ${t.name}` : `Remove ${t.name}`} title={t.status === 'uploading' ? 'Cancel upload' : 'Remove'} onClick={() => removeUpload(channelId, t.key)}>
              <Icon name="close" size={16} />
            </button>
          </li>
        ))}
      </ul>
      <div className="upload-tray-footer">
        <span className="small muted" role="status">
          {uploading ? `Uploading ${uploading} ${uploading === 1 ? 'file' : 'files'}…` : ready ? `${items.length} ${items.length === 1 ? 'file' : 'files'} ready` : 'Some files failed.'}
        </span>
        <button type="button" className="btn btn-primary btn-small" disabled={!ready} onClick={onSend}>
          Send
        </button>
      </div>
    </div>
  );
}
