'use client';
// Small shared pieces: avatar, presence dot, modal dialog, notices.
import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import type { PresenceStatus } from '@/api/types';
import { communitiesStore } from '@/stores/communities';
import { presenceStore } from '@/stores/presence';
import { sessionStore } from '@/stores/session';
import { noticesStore, dismiss } from '@/stores/notices';
import { useStore } from '@/stores/store';

const PALETTE = ['#5865f2', '#3ba55c', '#c27c0e', '#ed4245', '#9b59b6', '#1f8b7d', '#d64f8a', '#4f7bd6'];

export function colorFor(id: string): string {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

/**
 * A user's picture: their `avatar_url` (from the user cache, or ours from the session)
 * when they have one, else their initial on a colour of their id. `url` overrides both
 * (`null`: initials). An image that fails to load falls back to the initial.
 */
export function Avatar({ id, name, size = 40, presence, url }: { id: string; name: string; size?: number; presence?: boolean; url?: string | null }) {
  const mine = useStore(sessionStore, (s) => (s.user?.id === id ? s.user.avatar_url ?? null : undefined));
  const cached = useStore(communitiesStore, (s) => s.users[id]?.avatar_url ?? null);
  const src = url !== undefined ? url : mine !== undefined ? mine : cached;
  const [broken, setBroken] = useState<string | null>(null);
  const showImage = !!src && broken !== src;
  return (
    <span className={showImage ? 'avatar has-image' : 'avatar'} style={{ width: size, height: size, background: showImage ? undefined : colorFor(id), fontSize: size * 0.42 }} aria-hidden="true">
      {showImage ? <img className="avatar-img" src={src} alt="" width={size} height={size} loading="lazy" onError={() => setBroken(src)} /> : (name.trim()[0] ?? '?').toUpperCase()}
      {presence && <PresenceDot userId={id} />}
    </span>
  );
}

const PRESENCE_LABEL: Record<PresenceStatus, string> = {
  online: 'Online',
  idle: 'Idle',
  dnd: 'Do not disturb',
  offline: 'Offline',
  invisible: 'Offline',
};

export function usePresence(userId: string): PresenceStatus {
  return useStore(presenceStore, (s) => s[userId] ?? 'offline');
}

export function PresenceDot({ userId }: { userId: string }) {
  const status = usePresence(userId);
  const s = status === 'invisible' ? 'offline' : status;
  return <span className={`presence presence-${s}`} role="img" aria-label={PRESENCE_LABEL[s]} title={PRESENCE_LABEL[s]} />;
}

/** Open modals, innermost last: only the innermost answers Escape and keeps focus (a crop dialog over settings). */
const modalStack: object[] = [];

export function Modal({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const id = useId();
  const ref = useRef<HTMLDivElement>(null);
  const closeRef = useRef(onClose);
  closeRef.current = onClose;
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    const el = ref.current;
    const first = el?.querySelector<HTMLElement>('input, select, textarea, button:not(.modal-close)');
    (first ?? el)?.focus();
    const token = {};
    modalStack.push(token);
    const onKey = (e: KeyboardEvent) => {
      if (modalStack[modalStack.length - 1] !== token) return;
      if (e.key === 'Escape') {
        e.stopPropagation();
        closeRef.current();
      }
      if (e.key === 'Tab' && el) {
        // Keep focus inside the dialog.
        const items = [...el.querySelectorAll<HTMLElement>('a[href], button:not([disabled]), input:not([disabled]), select, textarea, [tabindex="0"]')];
        if (items.length === 0) return;
        const i = items.indexOf(document.activeElement as HTMLElement);
        if (e.shiftKey && (i <= 0)) {
          e.preventDefault();
          items[items.length - 1].focus();
        } else if (!e.shiftKey && i === items.length - 1) {
          e.preventDefault();
          items[0].focus();
        }
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      modalStack.splice(modalStack.indexOf(token), 1);
      prev?.focus?.();
    };
  }, []);
  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div ref={ref} className={wide ? 'modal modal-wide' : 'modal'} role="dialog" aria-modal="true" aria-labelledby={id} tabIndex={-1}>
        <header className="modal-header">
          <h2 id={id}>{title}</h2>
          <button type="button" className="icon-btn modal-close" onClick={onClose} aria-label="Close">
            <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
              <path fill="currentColor" d="M18.3 5.7L12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z" />
            </svg>
          </button>
        </header>
        <div className="modal-body">{children}</div>
      </div>
    </div>
  );
}

export function Notices() {
  const notices = useStore(noticesStore, (s) => s);
  return (
    <div className="notices" aria-live="assertive">
      {notices.map((n) => (
        <div key={n.id} className={`notice notice-${n.kind}`} role={n.kind === 'error' ? 'alert' : 'status'}>
          <span>{n.text}</span>
          <button type="button" className="icon-btn" onClick={() => dismiss(n.id)} aria-label="Dismiss">
            ✕
          </button>
        </div>
      ))}
    </div>
  );
}

const DAY = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
const TIME = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const FULL = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

export function formatDay(d: Date) {
  return DAY.format(d);
}
export function formatTime(d: Date) {
  return TIME.format(d);
}
export function formatFull(d: Date) {
  return FULL.format(d);
}
export function formatStamp(d: Date) {
  const now = new Date();
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (d.toDateString() === now.toDateString()) return `Today at ${TIME.format(d)}`;
  if (d.toDateString() === y.toDateString()) return `Yesterday at ${TIME.format(d)}`;
  return `${d.toLocaleDateString()} ${TIME.format(d)}`;
}
