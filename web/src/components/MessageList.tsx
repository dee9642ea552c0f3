'use client';
// The virtualized message log. Only the rows near the viewport are in the DOM, so a
// channel with 10,000 messages scrolls like one with 10. Anchored to the end: new
// messages follow when you're at the bottom; older pages load as you scroll up without
// moving what you're looking at.
// After a jump (a search result) the log is a window into the past (stores/messages.ts
// "detached"): the list scrolls to the message and marks it for a moment, newer pages load
// as you scroll down, and "Jump to present" goes back to the live end.
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { Channel, Message } from '@/api/types';
import { getClient } from '@/lib/client';
import { describeError } from '@/lib/errors';
import { compareIds } from '@/lib/ids';
import { EMPTY_LOG, clearFocus, messagesStore, type PendingMessage } from '@/stores/messages';
import { notify } from '@/stores/notices';
import { useStore } from '@/stores/store';
import { MessageItem } from './MessageItem';
import { formatDay } from './ui';

export type Row =
  | { kind: 'message'; key: string; message: Message; header: boolean; day: string | null }
  | { kind: 'pending'; key: string; pending: PendingMessage; header: boolean; day: string | null };

const GROUP_MS = 7 * 60 * 1000;

/** Adds grouping (same author within 7 min, no reply) and day separators. */
export function buildRows(messages: readonly Message[], pending: readonly PendingMessage[]): Row[] {
  const rows: Row[] = [];
  let prevAuthor: string | null = null;
  let prevTime = 0;
  let prevDay = '';
  const push = (authorId: string, created: string, reply: boolean, make: (header: boolean, day: string | null) => Row) => {
    const t = Date.parse(created) || Date.now();
    const d = new Date(t);
    const dayKey = `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
    const day = dayKey !== prevDay ? formatDay(d) : null;
    const header = reply || day !== null || authorId !== prevAuthor || t - prevTime > GROUP_MS;
    rows.push(make(header, day));
    prevAuthor = authorId;
    prevTime = t;
    prevDay = dayKey;
  };
  for (const m of messages) push(m.author.id, m.created_at, !!m.reply_to_id, (header, day) => ({ kind: 'message', key: m.id, message: m, header, day }));
  for (const p of pending) push(p.author.id, p.created_at, !!p.reply_to_id, (header, day) => ({ kind: 'pending', key: `n:${p.nonce}`, pending: p, header, day }));
  return rows;
}

interface Props {
  channel: Channel;
  editingId: string | null;
  onEdit: (id: string | null) => void;
  onReply: (m: Message) => void;
  canManage: boolean;
  canReact: boolean;
  /** Bulk-delete select mode (moderators). */
  selecting?: boolean;
  selectedIds?: ReadonlySet<string>;
  onToggleSelect?: (id: string) => void;
}

const NO_SELECTION: ReadonlySet<string> = new Set();
const NO_PENDING: readonly PendingMessage[] = [];
/** How long a message we jumped to stays marked. */
export const FLASH_MS = 3000;
/** Pages load when the viewport is this close to either end of what is loaded. */
const LOAD_MARGIN = 600;
/**
 * For this long after a jump, a page that lands above the message re-aims the scroll at
 * it: the virtualizer's scroll command aims at an index while it settles, and a prepended
 * page would leave it centred on whatever now holds that index.
 */
const FOCUS_HOLD_MS = 1500;

/** The row to show for a jump: the message itself, or where it would have been (deleted since). */
export function focusIndex(rows: readonly Row[], id: string): number {
  const i = rows.findIndex((r) => r.kind === 'message' && compareIds(r.message.id, id) >= 0);
  return i < 0 ? rows.length - 1 : i;
}

export function MessageList({ channel, editingId, onEdit, onReply, canManage, canReact, selecting = false, selectedIds = NO_SELECTION, onToggleSelect }: Props) {
  const channelId = channel.id;
  const log = useStore(messagesStore, (s) => s[channelId] ?? EMPTY_LOG);
  const detached = log.detached;
  // Messages being sent belong at the live end, not under a window of the past.
  const pending = detached ? NO_PENDING : log.pending;
  const rows = useMemo(() => buildRows(log.messages, pending), [log.messages, pending]);
  // The channel header sits above the virtual rows (scrollMargin), not among them, so the
  // row at the top of the viewport is always a message: that's what keeps your place
  // when an older page is prepended.
  const headerHeight = log.hasMoreBefore ? LOADING_HEIGHT : START_HEIGHT;
  const scrollRef = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [atBottom, setAtBottom] = useState(true);
  const initialScrollDone = useRef(false);
  const handledFocus = useRef(0);
  const holdFocus = useRef<{ key: string; index: number; until: number } | null>(null);
  const [flashId, setFlashId] = useState<string | null>(null);
  const [presentBusy, setPresentBusy] = useState(false);

  const virt = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: (i) => {
      const r = rows[i];
      return (r.header ? 64 : 28) + (r.day ? 40 : 0);
    },
    scrollMargin: headerHeight,
    getItemKey: (i) => rows[i].key,
    overscan: 8,
    anchorTo: 'end',
    // A newer page under a window of the past is not "new messages": stay where you are.
    followOnAppend: !detached,
    scrollEndThreshold: 48,
  });

  useEffect(() => {
    setError(null);
    getClient()
      .loadInitial(channelId)
      .catch((e) => setError(describeError(e)));
  }, [channelId]);

  const scrollToBottom = useCallback(() => {
    virt.scrollToIndex(rows.length - 1, { align: 'end' });
    requestAnimationFrame(() => {
      const el = scrollRef.current;
      if (el) el.scrollTop = el.scrollHeight;
    });
  }, [virt, rows.length]);

  // A jump (or "Jump to present") asked for a place: go there once its window is in. Runs
  // before the landing below, which it replaces.
  useLayoutEffect(() => {
    const focus = log.focus;
    if (!focus || focus.seq === handledFocus.current || !log.loaded || rows.length === 0) return;
    handledFocus.current = focus.seq;
    initialScrollDone.current = true;
    messagesStore.set((st) => clearFocus(st, channelId, focus.seq));
    if (focus.id === null) {
      scrollToBottom();
      return;
    }
    const index = focusIndex(rows, focus.id);
    virt.scrollToIndex(index, { align: 'center' });
    holdFocus.current = { key: rows[index].key, index, until: performance.now() + FOCUS_HOLD_MS };
    if (rows[index]?.key === focus.id) setFlashId(focus.id);
  }, [log.focus, log.loaded, rows, virt, scrollToBottom, channelId]);

  // Keep aiming at the message while pages land around it (until the user scrolls).
  useLayoutEffect(() => {
    const hold = holdFocus.current;
    if (!hold) return;
    if (performance.now() > hold.until) {
      holdFocus.current = null;
      return;
    }
    const index = rows.findIndex((r) => r.key === hold.key);
    if (index < 0 || index === hold.index) return;
    hold.index = index;
    virt.scrollToIndex(index, { align: 'center' });
  }, [rows, virt]);
  const userScrolls = useCallback(() => {
    holdFocus.current = null;
  }, []);

  useEffect(() => {
    if (!flashId) return;
    const t = setTimeout(() => setFlashId(null), FLASH_MS);
    return () => clearTimeout(t);
  }, [flashId]);

  // Land at the bottom once the first page is in.
  useLayoutEffect(() => {
    if (initialScrollDone.current || !log.loaded || rows.length === 0) return;
    initialScrollDone.current = true;
    scrollToBottom();
    performance.mark('hearth:first-channel-render');
  }, [log.loaded, rows.length, scrollToBottom]);

  const maybeLoadMore = useCallback(() => {
    const el = scrollRef.current;
    if (!el || !initialScrollDone.current) return;
    const s = messagesStore.get()[channelId];
    if (!s?.loaded) return;
    if (el.scrollTop < LOAD_MARGIN && s.hasMoreBefore) {
      getClient()
        .loadOlder(channelId)
        .catch((e) => notify(describeError(e)));
    }
    if (s.detached && el.scrollHeight - el.scrollTop - el.clientHeight < LOAD_MARGIN) {
      getClient()
        .loadNewer(channelId)
        .catch((e) => notify(describeError(e)));
    }
  }, [channelId]);

  const onScroll = useCallback(() => {
    const el = scrollRef.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    setAtBottom(bottom);
    getClient().setAtBottom(bottom);
    maybeLoadMore();
  }, [maybeLoadMore]);

  // A short page may not fill the screen: keep loading until it scrolls.
  useEffect(() => {
    if (log.loaded) maybeLoadMore();
  }, [log.loaded, log.messages.length, log.detached, maybeLoadMore]);

  const jumpToPresent = () => {
    if (!detached) {
      scrollToBottom();
      return;
    }
    setPresentBusy(true);
    getClient()
      .jumpToPresent(channelId)
      .catch((e) => notify(describeError(e)))
      .finally(() => setPresentBusy(false));
  };

  const items = virt.getVirtualItems();
  return (
    <div className="message-scroller-wrap">
      <div ref={scrollRef} className="message-scroller" onScroll={onScroll} onWheel={userScrolls} onTouchStart={userScrolls} onKeyDown={userScrolls} onPointerDown={userScrolls} role="log" aria-label={`Messages in ${channel.name ?? 'this conversation'}`} aria-live="polite" aria-relevant="additions" tabIndex={0}>
        <ChannelStart channel={channel} loading={log.hasMoreBefore} height={headerHeight} />
        <div style={{ height: virt.getTotalSize(), position: 'relative', width: '100%' }}>
          {items.map((vi) => {
            const row = rows[vi.index];
            return (
              <div key={vi.key} data-index={vi.index} ref={virt.measureElement} className="row" style={{ transform: `translateY(${vi.start - headerHeight}px)` }}>
                <RowView
                  row={row}
                  channel={channel}
                  editing={row.kind === 'message' && row.message.id === editingId}
                  onEdit={onEdit}
                  onReply={onReply}
                  canManage={canManage}
                  canReact={canReact}
                  selecting={selecting}
                  selected={row.kind === 'message' && selectedIds.has(row.message.id)}
                  onToggleSelect={onToggleSelect}
                  flash={row.key === flashId}
                />
              </div>
            );
          })}
        </div>
        {detached && log.loaded && (
          <div className="channel-end loading muted" aria-hidden="true">
            Loading newer messages…
          </div>
        )}
        {!log.loaded && !error && <p className="muted center pad">Loading messages…</p>}
        {error && (
          <p className="form-error center pad" role="alert">
            {error}
          </p>
        )}
      </div>
      {detached ? (
        <div className="detached-bar" role="status">
          <span>You’re viewing older messages</span>
          <button type="button" className="jump-present" disabled={presentBusy} onClick={jumpToPresent}>
            Jump to present ↓
          </button>
        </div>
      ) : (
        !atBottom && (
          <button type="button" className="jump-bottom" onClick={jumpToPresent}>
            Jump to present ↓
          </button>
        )
      )}
    </div>
  );
}

interface RowProps {
  row: Row;
  channel: Channel;
  editing: boolean;
  onEdit: (id: string | null) => void;
  onReply: (m: Message) => void;
  canManage: boolean;
  canReact: boolean;
  selecting: boolean;
  selected: boolean;
  onToggleSelect?: (id: string) => void;
  /** The message a jump landed on, marked for a moment. */
  flash: boolean;
}

const RowView = memo(function RowView({ row, channel, editing, onEdit, onReply, canManage, canReact, selecting, selected, onToggleSelect, flash }: RowProps) {
  void channel;
  return (
    <>
      {row.day && (
        <div className="day-sep" role="separator" aria-label={row.day}>
          <span>{row.day}</span>
        </div>
      )}
      {row.kind === 'message' ? (
        <MessageItem message={row.message} header={row.header} editing={editing} onEdit={onEdit} onReply={onReply} canManage={canManage} canReact={canReact} selecting={selecting} selected={selected} onToggleSelect={onToggleSelect} flash={flash} />
      ) : (
        <MessageItem pending={row.pending} header={row.header} editing={false} onEdit={onEdit} onReply={onReply} canManage={false} canReact={false} />
      )}
    </>
  );
});

const LOADING_HEIGHT = 56;
const START_HEIGHT = 220;

function ChannelStart({ channel, loading, height }: { channel: Channel; loading: boolean; height: number }) {
  if (loading) {
    return (
      <div className="channel-start loading muted" style={{ height }}>
        Loading older messages…
      </div>
    );
  }
  const isDm = channel.kind === 'dm' || channel.kind === 'group_dm';
  return (
    <div className="channel-start" style={{ height }}>
      <div className="channel-start-icon" aria-hidden="true">
        {isDm ? '@' : '#'}
      </div>
      <h2>{isDm ? 'This is the beginning of your conversation.' : `Welcome to #${channel.name}!`}</h2>
      {!isDm && <p className="muted">This is the start of the #{channel.name} channel.</p>}
    </div>
  );
}
