'use client';
// The notifications inbox: a bell in the rail with the unread count, and the panel it
// opens (newest first, "Unread only", "Mark all read", older pages). Clicking an entry
// marks it read and opens its channel.
import { useEffect, useRef, useState } from 'react';
import type { InboxNotification } from '@/api/types';
import { describeError } from '@/lib/errors';
import { useMe, useRun } from '@/lib/hooks';
import { setQuery } from '@/lib/nav';
import { describeKind, loadInbox, loadOlderInbox, mentionedRole, placeText, previewText, readAllNotifications, readNotification, setInboxUnreadOnly } from '@/lib/notifications';
import { channelLabel, communitiesStore, displayName } from '@/stores/communities';
import { badgeText, inboxStore } from '@/stores/inbox';
import { notify } from '@/stores/notices';
import { useStore } from '@/stores/store';
import { Icon } from './icons';
import { Avatar, formatStamp } from './ui';

export function InboxButton() {
  const unread = useStore(inboxStore, (s) => s.unread);
  const [open, setOpen] = useState(false);
  const buttonRef = useRef<HTMLButtonElement>(null);
  const close = () => {
    setOpen(false);
    buttonRef.current?.focus();
  };
  const label = unread ? `Notifications, ${unread} unread` : 'Notifications';
  return (
    <div className="rail-item">
      <button ref={buttonRef} type="button" className={`rail-btn rail-inbox${open ? ' open' : ''}`} aria-label={label} title="Notifications" aria-expanded={open} aria-haspopup="dialog" onClick={() => setOpen((v) => !v)}>
        <Icon name="bell" size={24} />
      </button>
      {unread > 0 && (
        <span className="badge rail-badge" aria-hidden="true" data-testid="inbox-badge">
          {badgeText(unread)}
        </span>
      )}
      {open && <InboxPanel onClose={close} anchor={buttonRef} />}
    </div>
  );
}

function InboxPanel({ onClose, anchor }: { onClose: () => void; anchor: React.RefObject<HTMLButtonElement | null> }) {
  const items = useStore(inboxStore, (s) => s.items);
  const loaded = useStore(inboxStore, (s) => s.loaded);
  const unreadOnly = useStore(inboxStore, (s) => s.unreadOnly);
  const nextBefore = useStore(inboxStore, (s) => s.nextBefore);
  const unread = useStore(inboxStore, (s) => s.unread);
  const ref = useRef<HTMLElement>(null);
  const closeRef = useRef(onClose);
  closeRef.current = onClose;
  const load = useRun();
  const older = useRun();
  const readAll = useRun();

  // The first page, again whenever it went stale (filter changed, a new gateway session).
  useEffect(() => {
    if (!loaded) void load.run(loadInbox);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [loaded, unreadOnly]);

  // A panel, not a modal: Escape or a click elsewhere closes it.
  useEffect(() => {
    ref.current?.querySelector<HTMLElement>('h2')?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') closeRef.current();
    };
    const onDown = (e: MouseEvent) => {
      const t = e.target as Node;
      if (!ref.current?.contains(t) && !anchor.current?.contains(t)) closeRef.current();
    };
    document.addEventListener('keydown', onKey);
    document.addEventListener('mousedown', onDown);
    return () => {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('mousedown', onDown);
    };
  }, [anchor]);

  return (
    <section ref={ref} className="inbox-panel" role="dialog" aria-modal="false" aria-labelledby="inbox-h">
      <header className="inbox-header">
        <h2 id="inbox-h" tabIndex={-1}>
          Notifications
        </h2>
        <label className="switch inbox-filter">
          <input type="checkbox" role="switch" checked={unreadOnly} onChange={(e) => setInboxUnreadOnly(e.target.checked)} /> Unread only
        </label>
        <button type="button" className="btn btn-secondary btn-small" disabled={unread === 0 || readAll.busy} onClick={() => void readAll.run(readAllNotifications)}>
          Mark all read
        </button>
        <button type="button" className="icon-btn" onClick={onClose} aria-label="Close notifications">
          <Icon name="close" size={16} />
        </button>
      </header>
      {(load.error || readAll.error) && (
        <p className="form-error" role="alert">
          {load.error ?? readAll.error}
        </p>
      )}
      {!loaded && !load.error && <p className="muted pad">Loading…</p>}
      {loaded && items.length === 0 && <p className="muted pad">{unreadOnly ? 'You’re all caught up.' : 'No notifications yet. Mentions, replies and direct messages show up here.'}</p>}
      <ul role="list" className="inbox-list" aria-label="Notifications">
        {items.map((n) => (
          <InboxEntry key={n.id} n={n} onOpen={onClose} />
        ))}
      </ul>
      {loaded && nextBefore && (
        <div className="center pad">
          <button type="button" className="btn btn-secondary" disabled={older.busy} onClick={() => void older.run(loadOlderInbox)}>
            {older.busy ? 'Loading…' : 'Load older'}
          </button>
          {older.error && (
            <p className="form-error" role="alert">
              {older.error}
            </p>
          )}
        </div>
      )}
    </section>
  );
}

function InboxEntry({ n, onOpen }: { n: InboxNotification; onOpen: () => void }) {
  const me = useMe();
  const users = useStore(communitiesStore, (s) => s.users);
  const channel = useStore(communitiesStore, (s) => s.channels[n.channel_id]);
  const communityName = useStore(communitiesStore, (s) => (n.community_id ? s.communities[n.community_id]?.name ?? null : null));
  const roles = useStore(communitiesStore, (s) => (n.community_id ? s.roles[n.community_id] : undefined));
  const myRoles = useStore(communitiesStore, (s) => (n.community_id && me ? s.members[n.community_id]?.[me.id]?.roles : undefined));
  const channels = useStore(communitiesStore, (s) => s.channels);
  const author = n.message?.author;
  const who = author ? displayName(users[author.id] ?? author) : 'Someone';
  const role = n.kind === 'role_mention' ? mentionedRole(n.message, myRoles ?? [], roles ?? []) : null;
  const channelName = channel ? channelLabel(channel, me?.id ?? null, users) : null;
  const place = placeText(n, channelName, communityName);
  const open = () => {
    // Shown read at once; a failure to tell the server is said, the navigation happens anyway.
    readNotification(n.id).catch((e) => notify(describeError(e)));
    setQuery({ c: n.community_id ?? '@me', ch: n.channel_id });
    onOpen();
  };
  return (
    <li className={`inbox-item${n.read ? '' : ' unread'}`} data-notification-id={n.id}>
      <button type="button" className="inbox-entry" onClick={open}>
        <Avatar id={author?.id ?? n.channel_id} name={who} size={36} />
        <span className="inbox-text">
          <span className="inbox-line">
            {!n.read && <span className="sr-only">Unread: </span>}
            <strong>{who}</strong> {describeKind(n.kind, role?.name)} <span className="muted">in {place}</span>
          </span>
          <span className={n.message ? 'inbox-preview' : 'inbox-preview muted'}>{previewText(n.message, { users, roles, channels })}</span>
          <time className="muted small" dateTime={n.created_at}>
            {formatStamp(new Date(n.created_at))}
          </time>
        </span>
        {!n.read && <span className="inbox-dot" aria-hidden="true" />}
      </button>
    </li>
  );
}
