'use client';
// Picking a square picture (an avatar, a community icon): choose an image, move it with
// the mouse, a finger or the arrow keys, zoom with the slider, the wheel or +/-, and the
// crop is cut out in the browser (a canvas, at most 512 px, WebP where the browser can
// make it, else PNG) and uploaded as a new image: the server never sees the original.
import { useEffect, useRef, useState, type PointerEvent as ReactPointerEvent } from 'react';
import { cropKey, cropRect, initialCrop, MAX_ZOOM, MIN_ZOOM, outputSize, panBy, scaleOf, zoomTo, type CropState } from '@/lib/crop';
import { describeError } from '@/lib/errors';
import { Modal } from './ui';

const VIEW = 280;

/** Cuts the square out of the image. */
function cropToBlob(img: HTMLImageElement, s: CropState): Promise<Blob> {
  const rect = cropRect(s);
  const size = outputSize(rect.size);
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  if (!ctx) return Promise.reject(new Error("This browser can't crop images."));
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(img, rect.x, rect.y, rect.size, rect.size, 0, 0, size, size);
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("Couldn't make the image."))), 'image/webp', 0.92));
}

export function CropDialog({ file, title, round = true, onClose, onCropped }: { file: File; title: string; round?: boolean; onClose: () => void; onCropped: (image: Blob, filename: string) => Promise<void> }) {
  const [url] = useState(() => URL.createObjectURL(file));
  const img = useRef<HTMLImageElement>(null);
  const [s, setS] = useState<CropState | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const drag = useRef<{ x: number; y: number; id: number } | null>(null);
  useEffect(() => () => URL.revokeObjectURL(url), [url]);

  const onPointerDown = (e: ReactPointerEvent<HTMLDivElement>) => {
    drag.current = { x: e.clientX, y: e.clientY, id: e.pointerId };
    e.currentTarget.setPointerCapture(e.pointerId);
  };
  const onPointerMove = (e: ReactPointerEvent<HTMLDivElement>) => {
    const d = drag.current;
    if (!d || d.id !== e.pointerId) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    drag.current = { ...d, x: e.clientX, y: e.clientY };
    setS((cur) => (cur ? panBy(cur, dx, dy) : cur));
  };
  const endDrag = () => {
    drag.current = null;
  };

  const apply = async () => {
    if (!s || !img.current) return;
    setBusy(true);
    setError(null);
    try {
      const blob = await cropToBlob(img.current, s);
      await onCropped(blob, blob.type === 'image/webp' ? 'image.webp' : 'image.png');
      onClose();
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };

  const k = s ? scaleOf(s) : 1;
  return (
    <Modal title={title} onClose={onClose}>
      <div
        className={round ? 'crop-view' : 'crop-view square'}
        style={{ width: VIEW, height: VIEW }}
        tabIndex={0}
        role="group"
        aria-label="Crop area. Drag or use the arrow keys to move the image, plus and minus to zoom, 0 to reset."
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={endDrag}
        onPointerCancel={endDrag}
        onWheel={(e) => setS((cur) => (cur ? zoomTo(cur, cur.zoom - e.deltaY * 0.002) : cur))}
        onKeyDown={(e) => {
          if (!s) return;
          const next = cropKey(s, e.key, e.shiftKey);
          if (next) {
            e.preventDefault();
            setS(next);
          }
        }}
      >
        {/* eslint-disable-next-line @next/next/no-img-element */}
        <img
          ref={img}
          src={url}
          alt=""
          draggable={false}
          onLoad={(e) => setS(initialCrop(e.currentTarget.naturalWidth, e.currentTarget.naturalHeight, VIEW))}
          onError={() => setError("That file isn't an image this browser can open.")}
          style={s ? { width: s.imageW * k, height: s.imageH * k, transform: `translate(${s.panX}px, ${s.panY}px)` } : { visibility: 'hidden' }}
        />
      </div>
      <div className="crop-zoom">
        <label htmlFor="crop-zoom">Zoom</label>
        <input
          id="crop-zoom"
          type="range"
          min={MIN_ZOOM}
          max={MAX_ZOOM}
          step={0.01}
          value={s?.zoom ?? 1}
          disabled={!s}
          onChange={(e) => setS((cur) => (cur ? zoomTo(cur, Number(e.target.value)) : cur))}
        />
      </div>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <div className="button-row">
        <button type="button" className="btn btn-secondary" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="btn btn-primary" disabled={!s || busy} onClick={() => void apply()}>
          {busy ? 'Uploading…' : 'Apply'}
        </button>
      </div>
    </Modal>
  );
}
