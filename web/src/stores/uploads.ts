// The composer's upload tray, per channel: each file being uploaded (or refused before it
// started), its progress, and the uploaded attachment once done. Pure reducers; the
// uploads themselves run in lib/attachments.ts.
import type { UploadedFile } from '@/lib/uploader';
import { createStore } from './store';

/** At most this many files go with one message (docs/api.md: `attachment_ids` 1-10). */
export const MAX_FILES = 10;

export type UploadStatus = 'uploading' | 'done' | 'failed';

export interface TrayItem {
  key: string;
  name: string;
  size: number;
  type: string;
  status: UploadStatus;
  /** Bytes sent so far. */
  loaded: number;
  error?: string;
  /** A failure worth trying again (the network, the server busy): not a refusal. */
  retryable?: boolean;
  attachment?: UploadedFile;
  /** An object URL of the local file, for an image's thumbnail. */
  thumb?: string | null;
}

export type UploadsState = Readonly<Record<string, readonly TrayItem[]>>;

export const uploadsStore = createStore<UploadsState>({});

const EMPTY: readonly TrayItem[] = [];

export function trayOf(s: UploadsState, channelId: string): readonly TrayItem[] {
  return s[channelId] ?? EMPTY;
}

/** Adds items; returns how many did not fit under MAX_FILES (they are left out). */
export function addItems(s: UploadsState, channelId: string, items: readonly TrayItem[]): { state: UploadsState; refused: number } {
  const cur = trayOf(s, channelId);
  const room = Math.max(0, MAX_FILES - cur.length);
  const taken = items.slice(0, room);
  return { state: taken.length ? { ...s, [channelId]: [...cur, ...taken] } : s, refused: items.length - taken.length };
}

export function patchItem(s: UploadsState, channelId: string, key: string, patch: Partial<TrayItem>): UploadsState {
  const cur = trayOf(s, channelId);
  const i = cur.findIndex((t) => t.key === key);
  if (i < 0) return s;
  const next = [...cur];
  next[i] = { ...cur[i], ...patch };
  return { ...s, [channelId]: next };
}

export function removeItem(s: UploadsState, channelId: string, key: string): UploadsState {
  const cur = trayOf(s, channelId);
  if (!cur.some((t) => t.key === key)) return s;
  const next = cur.filter((t) => t.key !== key);
  if (next.length) return { ...s, [channelId]: next };
  const rest = { ...s };
  delete rest[channelId];
  return rest;
}

/** What the send button may do with the tray. */
export function trayState(items: readonly TrayItem[]): { ready: boolean; uploading: number; failed: number; attachments: UploadedFile[] } {
  const uploading = items.filter((t) => t.status === 'uploading').length;
  const failed = items.filter((t) => t.status === 'failed').length;
  const attachments = items.flatMap((t) => (t.status === 'done' && t.attachment ? [t.attachment] : []));
  return { ready: uploading === 0 && failed === 0 && attachments.length > 0, uploading, failed, attachments };
}

/** 0-100, for the progress bar. */
export function percent(t: Pick<TrayItem, 'loaded' | 'size' | 'status'>): number {
  if (t.status === 'done') return 100;
  return t.size > 0 ? Math.min(100, Math.floor((t.loaded / t.size) * 100)) : 0;
}
