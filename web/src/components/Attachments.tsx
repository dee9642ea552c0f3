'use client';
// A message's files and link previews. Images are sized from their width/height (so the
// list never jumps) and show their BlurHash until the WebP preview loads; an image the
// server is still processing shows a placeholder until MESSAGE_UPDATE brings the preview.
// Videos and audio play inline (the server answers Range requests); anything else is a
// card with a download link. Every file URL is same-origin and authorised by the
// `hearth_files` cookie, so plain <img>/<video>/<a> work. A click on an image opens the
// lightbox over the message's images.
import { lazy, Suspense, useEffect, useRef, useState } from 'react';
import type { Attachment, Embed } from '@/api/types';
import { paintBlurhash, isBlurhash } from '@/lib/blurhash';
import { formatBytes } from '@/lib/uploader';
import { Icon } from './icons';

// Loaded on the first click on an image: most sessions never open it.
const Lightbox = lazy(() => import('./Lightbox').then((m) => ({ default: m.Lightbox })));

export type AttachmentKind = 'image' | 'video' | 'audio' | 'file';

/** Images the server makes previews of (and AVIF, which browsers show but it does not process). */
const IMAGE = /^image\/(png|jpeg|gif|webp|avif)$/;
/** An image with no preview this long after its message is one the server could not process. */
export const PROCESSING_GIVE_UP_MS = 2 * 60 * 1000;

export function attachmentKind(a: Pick<Attachment, 'content_type'>): AttachmentKind {
  if (IMAGE.test(a.content_type)) return 'image';
  if (a.content_type.startsWith('video/')) return 'video';
  if (a.content_type.startsWith('audio/')) return 'audio';
  return 'file';
}

/** Fits w×h in max box, never enlarging. */
export function fitBox(w: number, h: number, maxW = 400, maxH = 300): { width: number; height: number } {
  const k = Math.min(1, maxW / w, maxH / h);
  return { width: Math.max(1, Math.round(w * k)), height: Math.max(1, Math.round(h * k)) };
}

/** The image types the server processes (size, BlurHash, preview). */
const PROCESSED = /^image\/(png|jpeg|gif|webp)$/;

/** What an image attachment shows now: the placeholder while processing, its preview once done, a card if it never will be. */
export function imageState(a: Attachment, messageAgeMs: number): 'processing' | 'ready' | 'unprocessable' {
  // AVIF is shown as it is: the server serves it inline but never makes a preview.
  if (a.preview_url || (a.width && a.height) || !PROCESSED.test(a.content_type)) return 'ready';
  return messageAgeMs > PROCESSING_GIVE_UP_MS ? 'unprocessable' : 'processing';
}

/** Only web links (never javascript: or data:) and our own paths are followed or shown. */
export function safeUrl(url: string | null | undefined): string | null {
  if (!url) return null;
  if (url.startsWith('/') && !url.startsWith('//')) return url;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

export function MessageAttachments({ attachments, createdAt }: { attachments: readonly Attachment[]; createdAt: number }) {
  const [open, setOpen] = useState<number | null>(null);
  const age = Date.now() - createdAt;
  const images = attachments.filter((a) => attachmentKind(a) === 'image' && imageState(a, age) === 'ready');
  return (
    <div className="attachments">
      {attachments.map((a) => {
        const kind = attachmentKind(a);
        if (kind === 'image') {
          const state = imageState(a, age);
          if (state === 'unprocessable') return <FileCard key={a.id} a={a} />;
          return <ImageAttachment key={a.id} a={a} processing={state === 'processing'} onOpen={() => setOpen(images.findIndex((i) => i.id === a.id))} />;
        }
        if (kind === 'video') return <VideoAttachment key={a.id} a={a} />;
        if (kind === 'audio') return <AudioAttachment key={a.id} a={a} />;
        return <FileCard key={a.id} a={a} />;
      })}
      {open !== null && images[open] && (
        <Suspense fallback={null}>
          <Lightbox images={images} index={open} onIndex={setOpen} onClose={() => setOpen(null)} />
        </Suspense>
      )}
    </div>
  );
}

function BlurhashCanvas({ hash, ratio }: { hash: string; ratio: number }) {
  const ref = useRef<HTMLCanvasElement>(null);
  // A handful of pixels is enough: the browser smooths them when it stretches the canvas.
  const w = 32;
  const h = Math.max(1, Math.round(32 / ratio));
  useEffect(() => {
    if (ref.current) paintBlurhash(ref.current, hash);
  }, [hash, w, h]);
  return <canvas ref={ref} className="blurhash" width={w} height={h} aria-hidden="true" />;
}

function ImageAttachment({ a, processing, onOpen }: { a: Attachment; processing: boolean; onOpen: () => void }) {
  const [loaded, setLoaded] = useState(false);
  const [failed, setFailed] = useState(false);
  const box = a.width && a.height ? fitBox(a.width, a.height) : { width: 240, height: 160 };
  // GIFs animate only in the original; everything else loads the ≤640 px preview.
  const src = a.content_type === 'image/gif' ? a.url : a.preview_url ?? a.url;
  const hash = isBlurhash(a.blurhash) ? a.blurhash : null;
  if (processing) {
    return (
      <div className="attachment-image processing" style={box} data-attachment-id={a.id}>
        <span className="attachment-spinner" aria-hidden="true" />
        <span className="small">Processing {a.filename}…</span>
      </div>
    );
  }
  return (
    <button type="button" className={`attachment-image${loaded ? ' loaded' : ''}`} style={box} onClick={onOpen} aria-label={`Open image ${a.filename}`} data-attachment-id={a.id}>
      {hash && !loaded && <BlurhashCanvas hash={hash} ratio={box.width / box.height} />}
      {failed ? (
        <span className="small muted">Image unavailable</span>
      ) : (
        <img src={src} alt={a.filename} width={box.width} height={box.height} loading="lazy" decoding="async" onLoad={() => setLoaded(true)} onError={() => setFailed(true)} />
      )}
    </button>
  );
}

/** 75.4 → "1:15", 3725 → "1:02:05". */
export function formatDuration(secs: number): string {
  const t = Math.max(0, Math.round(secs));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const s = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

function VideoAttachment({ a }: { a: Attachment }) {
  const box = a.width && a.height ? fitBox(a.width, a.height, 480, 320) : undefined;
  return (
    <figure className="attachment-media">
      {/* The server's poster frame (once processed) shows before anything loads. */}
      <video controls preload="metadata" src={a.url} poster={a.preview_url ?? undefined} aria-label={a.filename} style={box} />
      <figcaption className="small muted">
        <a href={a.url} download={a.filename}>
          {a.filename}
        </a>{' '}
        · {formatBytes(a.size)}
        {a.duration_secs ? ` · ${formatDuration(a.duration_secs)}` : ''}
      </figcaption>
    </figure>
  );
}

function AudioAttachment({ a }: { a: Attachment }) {
  return (
    <figure className="attachment-media attachment-audio">
      <figcaption className="small">
        <a href={a.url} download={a.filename}>
          {a.filename}
        </a>{' '}
        <span className="muted">
          · {formatBytes(a.size)}
          {a.duration_secs ? ` · ${formatDuration(a.duration_secs)}` : ''}
        </span>
      </figcaption>
      <audio controls preload="metadata" src={a.url} aria-label={a.filename} />
    </figure>
  );
}

export function FileCard({ a }: { a: Pick<Attachment, 'filename' | 'size' | 'url' | 'content_type'> }) {
  return (
    <div className="file-card">
      <span className="file-icon" aria-hidden="true">
        <Icon name="file" size={28} />
      </span>
      <div className="file-meta">
        <a className="file-name" href={a.url} download={a.filename}>
          {a.filename}
        </a>
        <span className="small muted">{formatBytes(a.size)}</span>
      </div>
      <a className="icon-btn" href={a.url} download={a.filename} aria-label={`Download ${a.filename}`} title="Download">
        <Icon name="download" size={20} />
      </a>
    </div>
  );
}

/** A page image wide enough is shown large under the text; others as a thumbnail beside it. */
export function embedImageLayout(image: { width?: number | null; height?: number | null }): 'large' | 'thumb' {
  const w = image.width ?? 0;
  const h = image.height ?? 0;
  return w >= 300 && h > 0 && w / h >= 1.3 ? 'large' : 'thumb';
}

/**
 * Link previews under a message; fields the server leaves out are simply not shown.
 * `provider` says where the server read the text (oembed, opengraph, html), not a name
 * to show: the site is `site_name`, else the link's host.
 */
export function MessageEmbeds({ embeds }: { embeds: readonly Embed[] }) {
  const shown = embeds.filter((e) => safeUrl(e.url) && (e.title || e.description || e.image));
  if (!shown.length) return null;
  return (
    <div className="embeds">
      {shown.map((e, i) => {
        const href = safeUrl(e.url)!;
        const img = e.image ? safeUrl(e.image.url) : null;
        const site = e.site_name || hostOf(href);
        const layout = img && e.image ? embedImageLayout(e.image) : null;
        const large = layout === 'large' && e.image?.width && e.image.height ? fitBox(e.image.width, e.image.height, 400, 300) : null;
        const thumbW = e.image?.width ? Math.min(80, e.image.width) : 80;
        const thumbH = e.image?.width && e.image.height ? Math.round((thumbW * e.image.height) / e.image.width) : 80;
        return (
          <article key={`${href}-${i}`} className={large ? 'embed embed-large' : 'embed'} aria-label={`Link preview: ${e.title || site}`}>
            <div className="embed-text">
              {site && <div className="embed-site small muted">{site}</div>}
              {e.author_name && <div className="embed-author small">{e.author_name}</div>}
              {e.title && (
                <a className="embed-title" href={href} target="_blank" rel="noopener noreferrer nofollow">
                  {e.title}
                </a>
              )}
              {e.description && <p className="embed-description">{e.description}</p>}
              {img && large && (
                <a className="embed-image" href={href} target="_blank" rel="noopener noreferrer nofollow" tabIndex={-1} aria-hidden="true">
                  <img src={img} alt="" loading="lazy" width={large.width} height={large.height} />
                </a>
              )}
            </div>
            {img && !large && (
              <a className="embed-thumb" href={href} target="_blank" rel="noopener noreferrer nofollow" tabIndex={-1} aria-hidden="true">
                <img src={img} alt="" loading="lazy" width={thumbW} height={thumbH} />
              </a>
            )}
          </article>
        );
      })}
    </div>
  );
}

function hostOf(url: string): string {
  try {
    return new URL(url, 'http://x').host.replace(/^www\./, '');
  } catch {
    return '';
  }
}
