// Uploads one file to a channel with progress and cancel (docs/api.md "Files").
// - Small files: one multipart POST /channels/{id}/attachments (field `file`).
// - Files over CHUNKED_THRESHOLD: the resumable protocol. POST /channels/{id}/uploads
//   {filename, size, content_type} opens an upload; each PATCH /uploads/{id} sends the
//   next chunk at `Upload-Offset` (204 with the new offset, 201 with the attachment on
//   the last one); 409 carries the offset the server really has (we resume from it); a
//   failed chunk asks HEAD for the offset and goes on from there; cancel aborts and DELETEs.
//   A server without the route (404/405 on the POST) gets the multipart upload instead.
// XMLHttpRequest, not fetch: only it reports upload progress in every browser. Each
// request carries the in-memory bearer token; a 401 refreshes it once and retries.
import type { components } from '@/api/schema';
import { ApiError, errorFromResponse, networkError } from './errors';

export type UploadedFile = components['schemas']['UploadedAttachment'];

/** Over this many bytes a file goes up in chunks (when the server offers it). */
export const CHUNKED_THRESHOLD = 8 * 1024 * 1024;
/** Our own cap on a chunk; the server's `chunk_max_bytes` may lower it. */
export const CHUNK_BYTES = 4 * 1024 * 1024;
/** How many times a failing chunk is retried (from the server's offset) before giving up. */
export const CHUNK_RETRIES = 4;

/** The user cancelled: not an error worth showing. */
export class UploadCancelled extends Error {
  constructor() {
    super('Upload cancelled.');
    this.name = 'UploadCancelled';
  }
}

/** What an upload needs from XMLHttpRequest (tests hand in a fake). */
export interface XhrLike {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body?: Document | XMLHttpRequestBodyInit | null): void;
  abort(): void;
  getResponseHeader(name: string): string | null;
  readonly status: number;
  readonly responseText: string;
  withCredentials: boolean;
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  ontimeout?: (() => void) | null;
}

export interface UploaderDeps {
  /** Same-origin in the app; an absolute origin in tests. */
  baseUrl: string;
  getToken(): string | null;
  /** A new access token after a 401, or null when the session is over. */
  refresh(): Promise<string | null>;
  createXhr(): XhrLike;
  /** Waits before a retry (tests make it instant). */
  sleep?(ms: number): Promise<void>;
}

export interface UploadOptions {
  onProgress?(loaded: number, total: number): void;
  /** Forces the chunk size (tests); otherwise min(CHUNK_BYTES, server's chunk_max_bytes). */
  chunkBytes?: number;
  /** Forces the threshold (tests). */
  chunkedThreshold?: number;
}

export interface UploadHandle {
  promise: Promise<UploadedFile>;
  cancel(): void;
}

interface Answer {
  status: number;
  header(name: string): string | null;
  text: string;
}

/** The smallest file we know the server refuses (from a 413's `details.max_bytes`); null until one is seen. */
let knownMaxBytes: number | null = null;

export function maxUploadBytes(): number | null {
  return knownMaxBytes;
}

export function rememberMaxBytes(n: number | null) {
  knownMaxBytes = n !== null && Number.isFinite(n) && n > 0 ? n : null;
}

/** "12.3 MB": sizes the way people read them (base 1024, one decimal below 10). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** Why a file can't go up, known before sending it: empty, or over the size the server told us. */
export function precheck(file: { size: number }, maxBytes: number | null = knownMaxBytes): string | null {
  if (file.size === 0) return 'This file is empty.';
  if (maxBytes !== null && file.size > maxBytes) {
    const [size, max] = [formatBytes(file.size), formatBytes(maxBytes)];
    // Just over the limit both round alike ("25 MB, the limit is 25 MB"): then the limit alone.
    return size === max ? `Too large: the limit is ${max}.` : `Too large: ${size}, the limit is ${max}.`;
  }
  return null;
}

/** The sentence for a failed upload. */
export function uploadErrorText(e: unknown): string {
  if (e instanceof ApiError && e.status === 413 && e.details.reason === 'quota_exceeded') return 'Your storage quota is full: delete some files first.';
  if (e instanceof ApiError && e.status === 413) {
    const max = typeof e.details.max_bytes === 'number' ? e.details.max_bytes : null;
    return max ? `Too large: the limit is ${formatBytes(max)}.` : 'Too large for this server.';
  }
  if (e instanceof ApiError && e.status === 403) return 'You may not attach files here.';
  // Uploads are not retried by themselves (the Retry button is): say so, not "retrying…".
  if (e instanceof ApiError && e.status === 0) return 'The upload was interrupted. Check your connection and retry.';
  if (e instanceof ApiError) return e.human;
  return e instanceof Error ? e.message : String(e);
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The answer as an ApiError. `learn`: a 413 here names the server's upload limit (a
 * chunk's 413 names the chunk limit instead, which must not be taken for it).
 */
function toError(a: Answer, learn = false): ApiError {
  const headers = new Headers();
  const ra = a.header('Retry-After');
  if (ra) headers.set('Retry-After', ra);
  const err = errorFromResponse(new Response(null, { status: a.status, headers }), parseJson(a.text));
  if (learn && err.status === 413 && err.details.reason !== 'quota_exceeded' && typeof err.details.max_bytes === 'number') rememberMaxBytes(err.details.max_bytes);
  return err;
}

export function uploadFile(channelId: string, file: File, opts: UploadOptions, deps: UploaderDeps): UploadHandle {
  let cancelled = false;
  let current: XhrLike | null = null;
  let uploadId: string | null = null;
  let dropped = false;
  // While the request that opens a resumable upload is out, a cancel lets it
  // finish (then DELETEs what it opened): aborting it could leave an upload
  // the server made, unknown to us, holding quota until it expires.
  let opening = false;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const total = file.size;
  const progress = (n: number) => opts.onProgress?.(Math.min(n, total), total);

  const open = (xhr: XhrLike, method: string, path: string, headers: Record<string, string>, token: string | null) => {
    xhr.open(method, `${deps.baseUrl}${path}`);
    xhr.withCredentials = true;
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
  };

  /** One request; resolves with any HTTP answer, rejects on network failure or cancel. */
  const once = (method: string, path: string, headers: Record<string, string>, body: XMLHttpRequestBodyInit | null, onSent?: (n: number) => void, token = deps.getToken()): Promise<Answer> =>
    new Promise((resolve, reject) => {
      if (cancelled) return reject(new UploadCancelled());
      const xhr = deps.createXhr();
      current = xhr;
      open(xhr, method, path, headers, token);
      if (onSent) xhr.upload.onprogress = (e) => onSent(e.loaded);
      xhr.onload = () => {
        current = null;
        resolve({ status: xhr.status, header: (n) => xhr.getResponseHeader(n), text: xhr.responseText });
      };
      xhr.onerror = () => {
        current = null;
        reject(cancelled ? new UploadCancelled() : networkError(new Error(`${method} ${path} failed`)));
      };
      xhr.ontimeout = xhr.onerror;
      xhr.onabort = () => {
        current = null;
        reject(new UploadCancelled());
      };
      xhr.send(body);
    });

  /** `once`, with one refresh-and-retry on 401. */
  const request = async (method: string, path: string, headers: Record<string, string>, body: () => XMLHttpRequestBodyInit | null, onSent?: (n: number) => void): Promise<Answer> => {
    const a = await once(method, path, headers, body(), onSent);
    if (a.status !== 401) return a;
    const fresh = await deps.refresh();
    if (!fresh) return a;
    return once(method, path, headers, body(), onSent, fresh);
  };

  /** Cancelled: the server drops what it holds of a resumable upload at once (it would expire anyway). */
  const drop = () => {
    if (!uploadId || dropped) return;
    dropped = true;
    const xhr = deps.createXhr();
    open(xhr, 'DELETE', `/api/v1/uploads/${uploadId}`, {}, deps.getToken());
    xhr.send(null);
  };

  const multipart = async (): Promise<UploadedFile> => {
    const a = await request('POST', `/api/v1/channels/${channelId}/attachments`, {}, () => {
      const form = new FormData();
      form.append('file', file, file.name);
      return form;
    }, (n) => progress(n));
    if (a.status !== 201 && a.status !== 200) throw toError(a, true);
    progress(total);
    return parseJson(a.text) as UploadedFile;
  };

  /** The offset the server holds (HEAD), after a chunk failed in transit. */
  const serverOffset = async (id: string): Promise<number> => {
    const a = await request('HEAD', `/api/v1/uploads/${id}`, {}, () => null);
    if (a.status < 200 || a.status >= 300) throw toError(a);
    const raw = a.header('Upload-Offset');
    const n = raw === null ? NaN : Number(raw);
    if (!Number.isFinite(n)) throw networkError(new Error('HEAD without Upload-Offset'));
    return n;
  };

  const chunked = async (): Promise<UploadedFile> => {
    opening = true;
    let opened: Answer;
    try {
      opened = await request(
        'POST',
        `/api/v1/channels/${channelId}/uploads`,
        { 'Content-Type': 'application/json' },
        () => JSON.stringify({ filename: file.name, size: total, ...(file.type ? { content_type: file.type } : {}) }),
      );
    } finally {
      opening = false;
    }
    // Not deployed on this server: the whole file in one multipart request instead.
    if (opened.status === 404 || opened.status === 405) return multipart();
    if (opened.status !== 201 && opened.status !== 200) throw toError(opened, true);
    const info = parseJson(opened.text) as { id: string; offset?: number; chunk_max_bytes?: number };
    uploadId = info.id;
    if (cancelled) throw new UploadCancelled();
    const chunk = Math.max(1, Math.min(opts.chunkBytes ?? CHUNK_BYTES, info.chunk_max_bytes ?? Infinity));
    let offset = info.offset ?? 0;
    let failures = 0;
    progress(offset);
    const retryFromServer = async (e: unknown) => {
      // Lost in transit or a passing server error: ask where the server got to, go on from there.
      if (++failures > CHUNK_RETRIES) throw e;
      await sleep(250 * 2 ** (failures - 1));
      offset = await serverOffset(info.id);
      progress(offset);
    };
    for (;;) {
      if (cancelled) throw new UploadCancelled();
      const at = offset;
      const end = Math.min(total, at + chunk);
      let a: Answer;
      try {
        a = await request(
          'PATCH',
          `/api/v1/uploads/${info.id}`,
          { 'Upload-Offset': String(at), 'Content-Type': 'application/offset+octet-stream' },
          () => file.slice(at, end),
          (n) => progress(at + n),
        );
      } catch (e) {
        if (e instanceof UploadCancelled) throw e;
        await retryFromServer(e);
        continue;
      }
      if (a.status === 201 || a.status === 200) {
        progress(total);
        return parseJson(a.text) as UploadedFile;
      }
      if (a.status === 204) {
        const raw = a.header('Upload-Offset');
        const n = raw === null ? NaN : Number(raw);
        offset = Number.isFinite(n) ? n : end;
        failures = 0;
        progress(offset);
        continue;
      }
      const err = toError(a);
      if (a.status === 409 && typeof err.details.offset === 'number' && ++failures <= CHUNK_RETRIES) {
        offset = err.details.offset;
        progress(offset);
        continue;
      }
      if (err.transient) {
        await retryFromServer(err);
        continue;
      }
      throw err;
    }
  };

  const threshold = opts.chunkedThreshold ?? CHUNKED_THRESHOLD;
  const promise = (total > threshold ? chunked() : multipart()).catch((e: unknown) => {
    if (cancelled) {
      drop();
      throw new UploadCancelled();
    }
    throw e;
  });

  return {
    promise,
    cancel() {
      if (cancelled) return;
      cancelled = true;
      if (!opening) current?.abort();
      drop();
    },
  };
}
