'use client';
// The full-size view of a message's images: Escape or the close button leaves, the
// arrow keys and buttons go between the images, focus stays inside and goes back to
// where it was. Rendered into <body>: the message list's rows are transformed, which
// would otherwise pin a fixed overlay to the row.
import { useEffect, useRef } from 'react';
import { createPortal } from 'react-dom';
import type { Attachment } from '@/api/types';
import { formatBytes } from '@/lib/uploader';
import { Icon } from './icons';

interface Props {
  images: readonly Attachment[];
  index: number;
  onIndex(i: number): void;
  onClose(): void;
}

export function Lightbox({ images, index, onIndex, onClose }: Props) {
  const ref = useRef<HTMLDivElement>(null);
  const closeRef = useRef<HTMLButtonElement>(null);
  const state = useRef({ index, count: images.length, onIndex, onClose });
  state.current = { index, count: images.length, onIndex, onClose };
  const a = images[index];
  const many = images.length > 1;

  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    closeRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      const { index: i, count, onIndex: go, onClose: close } = state.current;
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        close();
      } else if (e.key === 'ArrowLeft' && count > 1) {
        e.preventDefault();
        go((i - 1 + count) % count);
      } else if (e.key === 'ArrowRight' && count > 1) {
        e.preventDefault();
        go((i + 1) % count);
      } else if (e.key === 'Tab' && ref.current) {
        const items = [...ref.current.querySelectorAll<HTMLElement>('a[href], button:not([disabled])')];
        if (!items.length) return;
        const at = items.indexOf(document.activeElement as HTMLElement);
        if (e.shiftKey && at <= 0) {
          e.preventDefault();
          items[items.length - 1].focus();
        } else if (!e.shiftKey && (at === items.length - 1 || at < 0)) {
          e.preventDefault();
          items[0].focus();
        }
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      prev?.focus?.();
    };
  }, []);

  if (!a) return null;
  return createPortal(
    <div className="lightbox" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div ref={ref} className="lightbox-frame" role="dialog" aria-modal="true" aria-label={`Image ${a.filename}${many ? `, ${index + 1} of ${images.length}` : ''}`}>
        <div className="lightbox-bar">
          <span className="lightbox-name">
            {a.filename} <span className="muted small">{formatBytes(a.size)}{many ? ` · ${index + 1}/${images.length}` : ''}</span>
          </span>
          <a className="icon-btn" href={a.url} download={a.filename} aria-label={`Download ${a.filename}`} title="Download">
            <Icon name="download" />
          </a>
          <button ref={closeRef} type="button" className="icon-btn" onClick={onClose} aria-label="Close image viewer" title="Close (Esc)">
            <Icon name="close" />
          </button>
        </div>
        <div className="lightbox-stage">
          {many && (
            <button type="button" className="lightbox-nav prev" onClick={() => onIndex((index - 1 + images.length) % images.length)} aria-label="Previous image">
              <Icon name="arrowLeft" size={32} />
            </button>
          )}
          <img key={a.id} src={a.url} alt={a.filename} width={a.width ?? undefined} height={a.height ?? undefined} />
          {many && (
            <button type="button" className="lightbox-nav next" onClick={() => onIndex((index + 1) % images.length)} aria-label="Next image">
              <Icon name="arrowRight" size={32} />
            </button>
          )}
        </div>
      </div>
    </div>,
    document.body,
  );
}
