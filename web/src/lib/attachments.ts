// Runs the composer's uploads: files dropped, pasted or picked go into the channel's
// tray (stores/uploads.ts) and up at once, each with its progress and a cancel; the
// message takes the finished ones. A send that fails puts them back in the tray (an
// unsent upload stays valid on the server for a day).
import { getBaseUrl } from './api';
import { ApiError } from './errors';
import { getAccessToken, refresh } from './auth';
import { precheck, uploadErrorText, uploadFile, UploadCancelled, type UploadedFile, type UploaderDeps, type UploadHandle, type XhrLike } from './uploader';
import { addItems, MAX_FILES, patchItem, removeItem, trayOf, uploadsStore, type TrayItem } from '@/stores/uploads';

const handles = new Map<string, UploadHandle>();
const files = new Map<string, File>();
let seq = 0;

function browserDeps(): UploaderDeps {
  return {
    baseUrl: getBaseUrl(),
    getToken: getAccessToken,
    refresh: () => refresh().catch(() => null),
    // The DOM's handler types carry `this` and full ProgressEvents; XhrLike names only what we use.
    createXhr: () => new XMLHttpRequest() as unknown as XhrLike,
  };
}

const isPreviewable = (type: string) => /^image\/(png|jpeg|gif|webp|avif)$/.test(type);

function revoke(item: TrayItem | undefined) {
  if (item?.thumb && typeof URL !== 'undefined' && URL.revokeObjectURL) URL.revokeObjectURL(item.thumb);
}

function start(channelId: string, key: string, file: File) {
  // Progress events come many times a second; the tray redraws at most per animation frame.
  let frame = 0;
  let latest = 0;
  const h = uploadFile(
    channelId,
    file,
    {
      onProgress: (loaded) => {
        latest = loaded;
        if (frame) return;
        const flush = () => {
          frame = 0;
          uploadsStore.set((s) => patchItem(s, channelId, key, { loaded: latest }));
        };
        frame = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(flush) : (setTimeout(flush, 16) as unknown as number);
      },
    },
    browserDeps(),
  );
  handles.set(key, h);
  h.promise.then(
    (attachment) => uploadsStore.set((s) => patchItem(s, channelId, key, { status: 'done', loaded: file.size, attachment })),
    (e: unknown) => {
      if (e instanceof UploadCancelled) return;
      // Too large, not allowed, refused as malformed: sending it again would end the same way.
      const final = e instanceof ApiError && (e.status === 400 || e.status === 403 || e.status === 413 || e.status === 415);
      uploadsStore.set((s) => patchItem(s, channelId, key, { status: 'failed', error: uploadErrorText(e), retryable: !final }));
    },
  ).finally(() => handles.delete(key));
}

/**
 * Adds files to a channel's tray and starts uploading them. Returns a sentence when some
 * did not fit (more than MAX_FILES), else null. Files we know the server refuses (empty,
 * over its size limit) show their reason at once and are never sent.
 */
export function addFiles(channelId: string, list: readonly File[]): string | null {
  const items: TrayItem[] = list.map((f) => {
    const key = `u${++seq}`;
    const problem = precheck(f);
    return {
      key,
      name: f.name || 'file',
      size: f.size,
      type: f.type,
      status: problem ? 'failed' : 'uploading',
      loaded: 0,
      error: problem ?? undefined,
      thumb: !problem && isPreviewable(f.type) && typeof URL !== 'undefined' && URL.createObjectURL ? URL.createObjectURL(f) : null,
    };
  });
  let refused = 0;
  uploadsStore.set((s) => {
    const r = addItems(s, channelId, items);
    refused = r.refused;
    return r.state;
  });
  const taken = items.slice(0, items.length - refused);
  for (const item of items.slice(taken.length)) revoke(item);
  taken.forEach((item, i) => {
    files.set(item.key, list[i]);
    if (item.status === 'uploading') start(channelId, item.key, list[i]);
  });
  return refused ? `You can attach up to ${MAX_FILES} files to a message; ${refused} ${refused === 1 ? 'was' : 'were'} left out.` : null;
}

/** Cancels an upload in progress, or removes a finished or failed one from the tray. */
export function removeUpload(channelId: string, key: string) {
  handles.get(key)?.cancel();
  handles.delete(key);
  files.delete(key);
  revoke(trayOf(uploadsStore.get(), channelId).find((t) => t.key === key));
  uploadsStore.set((s) => removeItem(s, channelId, key));
}

/** Tries a failed upload again (not one refused before it started). */
export function retryUpload(channelId: string, key: string) {
  const file = files.get(key);
  if (!file || precheck(file)) return;
  uploadsStore.set((s) => patchItem(s, channelId, key, { status: 'uploading', loaded: 0, error: undefined, retryable: undefined }));
  start(channelId, key, file);
}

/** Empties the tray for a send: the finished attachments, in the tray's order. */
export function takeUploads(channelId: string): UploadedFile[] {
  const items = trayOf(uploadsStore.get(), channelId);
  for (const t of items) {
    revoke(t);
    files.delete(t.key);
  }
  uploadsStore.set((s) => {
    const rest = { ...s };
    delete rest[channelId];
    return rest;
  });
  return items.flatMap((t) => (t.status === 'done' && t.attachment ? [t.attachment] : []));
}

/** A failed send: its attachments go back in the tray, ready to send again. */
export function restoreUploads(channelId: string, attachments: readonly UploadedFile[]) {
  if (!attachments.length) return;
  const items: TrayItem[] = attachments.map((a) => ({ key: `u${++seq}`, name: a.filename, size: a.size, type: a.content_type, status: 'done', loaded: a.size, attachment: a, thumb: null }));
  uploadsStore.set((s) => addItems(s, channelId, items).state);
}
