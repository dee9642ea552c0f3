'use client';
// The virtualized message log. Only the rows near the viewport are in the DOM, so a
// channel with 10,000 messages scrolls like one with 10. Anchored to the end: new
// messages follow when you're at the bottom; older pages load as you scroll up without
// moving what you're looking at.
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { Channel, Message } from '@/api/types';
import { getClient } from '@/lib/client';
import { describeError } from '@/lib/errors';
import { EMPTY_LOG, messagesStore, type PendingMessage } from '@/stores/messages';
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

export function MessageList({ channel, editingId, onEdit, onReply, canManage, canReact, selecting = false, selectedIds = NO_SELECTION, onToggleSelect }: Props) {
  const channelId = channel.id;
  const log = useStore(messagesStore, (s) => s[channelId] ?? EMPTY_LOG);
  const rows = useMemo(() => buildRows(log.messages, log.pending), [log.messages, log.pending]);
  // The channel header sits above the virtual rows (scrollMargin), not among them, so the
  // row at the top of the viewport is always a message: that's what keeps your place
  // when an older page is prepended.
  const headerHeight = log.hasMoreBefore ? LOADING_HEIGHT : START_HEIGHT;
  const scrollRef = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [atBottom, setAtBottom] = useState(true);
  const initialScrollDone = useRef(false);

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
    followOnAppend: true,
    scrollEndThreshold: 48,
  });

  useEffect(() => {
    setError(null);
    getClient()
      .loadInitial(channelId)
      .catch((e) => setError(describeError(e)));
  }, [channelId]);

  // Land at the bottom once the first page is in.
  useLayoutEffect(() => {
    if (initialScrollDone.current || !log.loaded || rows.length === 0) return;
    initialScrollDone.current = true;
    virt.scrollToIndex(rows.length - 1, { align: 'end' });
    requestAnimationFrame(() => {
      const el = scrollRef.current;
      if (el) el.scrollTop = el.scrollHeight;
    });
    performance.mark('hearth:first-channel-render');
  }, [log.loaded, rows.length, virt]);

  const maybeLoadOlder = useCallback(() => {
    const el = scrollRef.current;
    if (!el || !initialScrollDone.current) return;
    const s = messagesStore.get()[channelId];
    if (el.scrollTop < 600 && s?.loaded && s.hasMoreBefore) {
      getClient()
        .loadOlder(channelId)
        .catch((e) => notify(describeError(e)));
    }
  }, [channelId]);

  const onScroll = useCallback(() => {
    const el = scrollRef.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    setAtBottom(bottom);
    getClient().setAtBottom(bottom);
    maybeLoadOlder();
  }, [maybeLoadOlder]);

  // A short first page may not fill the screen: keep loading until it scrolls.
  useEffect(() => {
    if (log.loaded) maybeLoadOlder();
  }, [log.loaded, log.messages.length, maybeLoadOlder]);

  const items = virt.getVirtualItems();
  return (
    <div className="message-scroller-wrap">
      <div ref={scrollRef} className="message-scroller" onScroll={onScroll} role="log" aria-label={`Messages in ${channel.name ?? 'this conversation'}`} aria-live="polite" aria-relevant="additions" tabIndex={0}>
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
                />
              </div>
            );
          })}
        </div>
        {!log.loaded && !error && <p className="muted center pad">Loading messages…</p>}
        {error && (
          <p className="form-error center pad" role="alert">
            {error}
          </p>
        )}
      </div>
      {!atBottom && (
        <button
          type="button"
          className="jump-bottom"
          onClick={() => {
            virt.scrollToIndex(rows.length - 1, { align: 'end' });
            const el = scrollRef.current;
            if (el) el.scrollTop = el.scrollHeight;
          }}
        >
          Jump to present ↓
        </button>
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
}

const RowView = memo(function RowView({ row, channel, editing, onEdit, onReply, canManage, canReact, selecting, selected, onToggleSelect }: RowProps) {
  void channel;
  return (
    <>
      {row.day && (
        <div className="day-sep" role="separator" aria-label={row.day}>
          <span>{row.day}</span>
        </div>
      )}
      {row.kind === 'message' ? (
        <MessageItem message={row.message} header={row.header} editing={editing} onEdit={onEdit} onReply={onReply} canManage={canManage} canReact={canReact} selecting={selecting} selected={selected} onToggleSelect={onToggleSelect} />
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
