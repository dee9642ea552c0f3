'use client';
// The button that picks an image (avatar, community icon) and opens the crop dialog,
// which loads on first use (ImageCrop.tsx).
import { lazy, Suspense, useRef, useState } from 'react';

const CropDialog = lazy(() => import('./ImageCrop').then((m) => ({ default: m.CropDialog })));

export const IMAGE_ACCEPT = 'image/png,image/jpeg,image/gif,image/webp';

/** A button that opens the file picker for an image, then the crop dialog. */
export function ImagePicker({ label, title, round, disabled, onCropped }: { label: string; title: string; round?: boolean; disabled?: boolean; onCropped: (image: Blob, filename: string) => Promise<void> }) {
  const input = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  return (
    <>
      <button type="button" className="btn btn-secondary" disabled={disabled} onClick={() => input.current?.click()}>
        {label}
      </button>
      <input
        ref={input}
        type="file"
        accept={IMAGE_ACCEPT}
        className="sr-only"
        tabIndex={-1}
        aria-label={label}
        onChange={(e) => {
          const f = e.target.files?.[0] ?? null;
          e.target.value = '';
          if (f) setFile(f);
        }}
      />
      {file && (
        <Suspense fallback={null}>
          <CropDialog file={file} title={title} round={round} onClose={() => setFile(null)} onCropped={onCropped} />
        </Suspense>
      )}
    </>
  );
}
