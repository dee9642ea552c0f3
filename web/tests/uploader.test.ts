// The uploader against a scripted fake XMLHttpRequest: multipart with progress, cancel,
// 413 (and the size it teaches), 401 refresh, the chunked protocol (offsets, 409 resume,
// a chunk lost in transit resumed from HEAD, cancel → DELETE) and the fallback to
// multipart when the resumable route is not there.
import { describe, expect, it } from 'vitest';
import { ApiError } from '@/lib/errors';
import { formatBytes, maxUploadBytes, precheck, rememberMaxBytes, uploadErrorText, uploadFile, UploadCancelled, type UploaderDeps, type XhrLike } from '@/lib/uploader';

interface Req {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
  bytes: number;
}
type Reply = { status: number; headers?: Record<string, string>; body?: unknown } | 'network-error' | 'hang';

/** A fake XHR whose answers come from `handle`; progress is reported at half and at the end of the body. */
function fakeServer(handle: (req: Req, all: Req[]) => Reply | Promise<Reply>) {
  const requests: Req[] = [];
  const aborted: Req[] = [];
  const createXhr = (): XhrLike => {
    let req: Req;
    let headersOut: Record<string, string> = {};
    const xhr: XhrLike & { status: number; responseText: string } = {
      status: 0,
      responseText: '',
      withCredentials: false,
      upload: { onprogress: null },
      onload: null,
      onerror: null,
      onabort: null,
      open(method, url) {
        req = { method, url, headers: {}, body: null, bytes: 0 };
      },
      setRequestHeader(k, v) {
        req.headers[k] = v;
      },
      getResponseHeader(name) {
        const k = Object.keys(headersOut).find((h) => h.toLowerCase() === name.toLowerCase());
        return k ? headersOut[k] : null;
      },
      abort() {
        aborted.push(req);
        setTimeout(() => xhr.onabort?.(), 0);
      },
      send(body) {
        req.body = body ?? null;
        req.bytes = body instanceof FormData ? ((body.get('file') as Blob | null)?.size ?? 0) : body instanceof Blob ? body.size : typeof body === 'string' ? body.length : 0;
        requests.push(req);
        setTimeout(async () => {
          if (aborted.includes(req)) return;
          if (req.bytes > 0) xhr.upload.onprogress?.({ loaded: Math.floor(req.bytes / 2), total: req.bytes, lengthComputable: true });
          const reply = await handle(req, requests);
          if (reply === 'hang' || aborted.includes(req)) return;
          if (reply === 'network-error') return xhr.onerror?.();
          if (req.bytes > 0) xhr.upload.onprogress?.({ loaded: req.bytes, total: req.bytes, lengthComputable: true });
          headersOut = reply.headers ?? {};
          xhr.status = reply.status;
          xhr.responseText = reply.body === undefined ? '' : JSON.stringify(reply.body);
          xhr.onload?.();
        }, 0);
      },
    };
    return xhr;
  };
  return { requests, aborted, createXhr };
}

function deps(server: ReturnType<typeof fakeServer>, extra: Partial<UploaderDeps> = {}): UploaderDeps {
  return { baseUrl: 'http://h', getToken: () => 'tok', refresh: async () => 'fresh', createXhr: server.createXhr, sleep: async () => undefined, ...extra };
}

const file = (size: number, name = 'a.bin', type = 'application/octet-stream') => new File([new Uint8Array(size).map((_, i) => i % 251)], name, { type });
const uploaded = (size: number) => ({ id: '77', filename: 'a.bin', content_type: 'application/octet-stream', size, url: '/api/v1/attachments/77/a.bin' });
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('uploader: multipart', () => {
  it('posts the file as multipart with the bearer token and reports progress to the end', async () => {
    const server = fakeServer(() => ({ status: 201, body: uploaded(1000) }));
    const seen: number[] = [];
    const h = uploadFile('5', file(1000), { onProgress: (n, t) => seen.push(n / t) }, deps(server));
    await expect(h.promise).resolves.toMatchObject({ id: '77', size: 1000 });
    const [req] = server.requests;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('http://h/api/v1/channels/5/attachments');
    expect(req.headers.Authorization).toBe('Bearer tok');
    expect((req.body as FormData).get('file')).toBeInstanceOf(Blob);
    expect(seen).toEqual([0.5, 1, 1]);
  });

  it('cancel aborts the request and rejects with UploadCancelled', async () => {
    const server = fakeServer(() => 'hang');
    const h = uploadFile('5', file(1000), {}, deps(server));
    await tick();
    h.cancel();
    await expect(h.promise).rejects.toBeInstanceOf(UploadCancelled);
    expect(server.aborted).toHaveLength(1);
  });

  it('a 413 names the limit and teaches it to the precheck', async () => {
    rememberMaxBytes(null);
    const server = fakeServer(() => ({ status: 413, body: { error: { code: 'payload_too_large', message: 'too large', details: { max_bytes: 1024 } } } }));
    const h = uploadFile('5', file(2000), {}, deps(server));
    const err = await h.promise.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(413);
    expect(uploadErrorText(err)).toBe('Too large: the limit is 1.0 KB.');
    expect(maxUploadBytes()).toBe(1024);
    expect(precheck({ size: 2000 })).toBe('Too large: 2.0 KB, the limit is 1.0 KB.');
    expect(precheck({ size: 1000 })).toBeNull();
    expect(precheck({ size: 1025 })).toBe('Too large: the limit is 1.0 KB.');
    expect(precheck({ size: 0 })).toBe('This file is empty.');
    rememberMaxBytes(null);
  });

  it('a 401 refreshes the token once and sends again with the new one', async () => {
    const server = fakeServer((req) => (req.headers.Authorization === 'Bearer fresh' ? { status: 201, body: uploaded(10) } : { status: 401, body: { error: { code: 'unauthorized', message: 'x' } } }));
    await expect(uploadFile('5', file(10), {}, deps(server)).promise).resolves.toMatchObject({ id: '77' });
    expect(server.requests.map((r) => r.headers.Authorization)).toEqual(['Bearer tok', 'Bearer fresh']);
  });

  it('a 403 says attaching is not allowed', async () => {
    const server = fakeServer(() => ({ status: 403, body: { error: { code: 'forbidden', message: 'missing ATTACH_FILES', details: { permission: 'ATTACH_FILES' } } } }));
    const err = await uploadFile('5', file(10), {}, deps(server)).promise.catch((e: unknown) => e);
    expect(uploadErrorText(err)).toBe('You may not attach files here.');
  });
});

/** A resumable-upload server keeping the bytes it got; `misbehave` can twist one answer. */
function resumable(size: number, opts: { chunkMax?: number; misbehave?: (req: Req, n: number, have: number) => Reply | null } = {}) {
  let have = 0;
  let patches = 0;
  const got: number[] = [];
  const server = fakeServer(async (req) => {
    if (req.method === 'POST' && req.url.endsWith('/uploads')) {
      return { status: 201, body: { id: '9', offset: 0, size, chunk_max_bytes: opts.chunkMax ?? 1 << 20, expires_at: '2030-01-01T00:00:00Z' } };
    }
    if (req.method === 'HEAD') return { status: 200, headers: { 'Upload-Offset': String(have) } };
    if (req.method === 'DELETE') return { status: 204 };
    if (req.method === 'PATCH') {
      const twist = opts.misbehave?.(req, patches++, have);
      if (twist) return twist;
      const at = Number(req.headers['Upload-Offset']);
      if (at !== have) return { status: 409, body: { error: { code: 'conflict', message: 'offset', details: { offset: have } } } };
      const bytes = new Uint8Array(await (req.body as Blob).arrayBuffer());
      for (const b of bytes) got.push(b);
      have += bytes.length;
      return have >= size ? { status: 201, body: uploaded(size) } : { status: 204, headers: { 'Upload-Offset': String(have) } };
    }
    return { status: 500 };
  });
  return { server, got: () => got, have: () => have };
}

describe('uploader: chunked', () => {
  const big = (n: number) => file(n, 'big.bin');

  it('sends the chunks in order with Upload-Offset and finishes with the attachment', async () => {
    const r = resumable(1000);
    const seen: number[] = [];
    const h = uploadFile('5', big(1000), { chunkedThreshold: 100, chunkBytes: 300, onProgress: (n) => seen.push(n) }, deps(r.server));
    await expect(h.promise).resolves.toMatchObject({ id: '77', size: 1000 });
    const patches = r.server.requests.filter((q) => q.method === 'PATCH');
    expect(patches.map((p) => p.headers['Upload-Offset'])).toEqual(['0', '300', '600', '900']);
    expect(patches.every((p) => p.headers['Content-Type'] === 'application/offset+octet-stream')).toBe(true);
    const open = r.server.requests[0];
    expect(JSON.parse(open.body as string)).toEqual({ filename: 'big.bin', size: 1000, content_type: 'application/octet-stream' });
    // The bytes arrived whole and in order.
    expect(r.got()).toEqual([...new Uint8Array(await big(1000).arrayBuffer())]);
    expect(seen[seen.length - 1]).toBe(1000);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
  });

  it('the server’s chunk_max_bytes caps the chunk size', async () => {
    const r = resumable(500, { chunkMax: 200 });
    await uploadFile('5', big(500), { chunkedThreshold: 100, chunkBytes: 10_000 }, deps(r.server)).promise;
    expect(r.server.requests.filter((q) => q.method === 'PATCH').map((p) => p.bytes)).toEqual([200, 200, 100]);
  });

  it('a 409 resumes from the offset the server names', async () => {
    // The second PATCH is answered as if the server already had 450 bytes (another tab resumed it).
    const r = resumable(1000, {
      misbehave: (req, n) => (n === 1 ? { status: 409, body: { error: { code: 'conflict', message: 'wrong offset', details: { offset: 300 } } } } : null),
    });
    await expect(uploadFile('5', big(1000), { chunkedThreshold: 100, chunkBytes: 300 }, deps(r.server)).promise).resolves.toMatchObject({ id: '77' });
    const offsets = r.server.requests.filter((q) => q.method === 'PATCH').map((p) => p.headers['Upload-Offset']);
    expect(offsets).toEqual(['0', '300', '300', '600', '900']);
    expect(r.got()).toHaveLength(1000);
  });

  it('a chunk lost in transit asks HEAD for the offset and goes on from there', async () => {
    const r = resumable(900, { misbehave: (req, n) => (n === 1 ? 'network-error' : null) });
    await expect(uploadFile('5', big(900), { chunkedThreshold: 100, chunkBytes: 300 }, deps(r.server)).promise).resolves.toMatchObject({ id: '77' });
    expect(r.server.requests.map((q) => `${q.method} ${q.headers['Upload-Offset'] ?? ''}`.trim())).toEqual(['POST', 'PATCH 0', 'PATCH 300', 'HEAD', 'PATCH 300', 'PATCH 600']);
    expect(r.got()).toEqual([...new Uint8Array(await big(900).arrayBuffer())]);
  });

  it('gives up after repeated failures with the network error', async () => {
    const r = resumable(900, { misbehave: (req, n) => (n >= 1 ? 'network-error' : null) });
    const err = await uploadFile('5', big(900), { chunkedThreshold: 100, chunkBytes: 300 }, deps(r.server)).promise.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(0);
    expect(uploadErrorText(err)).toBe('The upload was interrupted. Check your connection and retry.');
    expect(r.server.requests.filter((q) => q.method === 'HEAD')).toHaveLength(4);
  });

  it('cancel aborts the chunk in flight and DELETEs the upload', async () => {
    const r = resumable(1000, { misbehave: (req, n) => (n === 1 ? 'hang' : null) });
    const h = uploadFile('5', big(1000), { chunkedThreshold: 100, chunkBytes: 300 }, deps(r.server));
    await expect.poll(() => r.server.requests.filter((q) => q.method === 'PATCH').length).toBe(2);
    h.cancel();
    await expect(h.promise).rejects.toBeInstanceOf(UploadCancelled);
    await tick();
    expect(r.server.aborted.map((q) => q.method)).toEqual(['PATCH']);
    const del = r.server.requests.find((q) => q.method === 'DELETE');
    expect(del?.url).toBe('http://h/api/v1/uploads/9');
    expect(del?.headers.Authorization).toBe('Bearer tok');
  });

  it('a cancel while the upload is being opened lets it open, then DELETEs it (nothing left holding quota)', async () => {
    let release: () => void = () => undefined;
    const opened = new Promise<void>((r) => (release = r));
    const server = fakeServer(async (req) => {
      if (req.method === 'POST') {
        await opened;
        return { status: 201, body: { id: '9', offset: 0, size: 1000, chunk_max_bytes: 1 << 20, expires_at: '2030-01-01T00:00:00Z' } };
      }
      return req.method === 'DELETE' ? { status: 204 } : { status: 500 };
    });
    const h = uploadFile('5', big(1000), { chunkedThreshold: 100, chunkBytes: 300 }, deps(server));
    await expect.poll(() => server.requests.length).toBe(1);
    h.cancel();
    release();
    await expect(h.promise).rejects.toBeInstanceOf(UploadCancelled);
    await tick();
    expect(server.aborted).toEqual([]);
    expect(server.requests.map((q) => `${q.method} ${q.url}`)).toEqual(['POST http://h/api/v1/channels/5/uploads', 'DELETE http://h/api/v1/uploads/9']);
  });

  it.each([404, 405])('falls back to multipart when the resumable route answers %i', async (status) => {
    const server = fakeServer((req) => (req.url.endsWith('/uploads') ? { status } : { status: 201, body: uploaded(1000) }));
    const seen: number[] = [];
    await expect(uploadFile('5', big(1000), { chunkedThreshold: 100, onProgress: (n) => seen.push(n) }, deps(server)).promise).resolves.toMatchObject({ id: '77' });
    expect(server.requests.map((q) => `${q.method} ${q.url}`)).toEqual(['POST http://h/api/v1/channels/5/uploads', 'POST http://h/api/v1/channels/5/attachments']);
    expect(seen[seen.length - 1]).toBe(1000);
  });

  it('small files never open a resumable upload', async () => {
    const server = fakeServer(() => ({ status: 201, body: uploaded(50) }));
    await uploadFile('5', file(50), { chunkedThreshold: 100 }, deps(server)).promise;
    expect(server.requests.map((q) => q.url)).toEqual(['http://h/api/v1/channels/5/attachments']);
  });
});

describe('formatBytes', () => {
  it('reads like people write sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(25 * 1024 * 1024)).toBe('25 MB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GB');
  });
});

describe('uploader: what a 413 teaches', () => {
  it('a chunk over chunk_max_bytes is an error but not the upload limit; a quota is said as such', async () => {
    rememberMaxBytes(null);
    const r = resumable(1000, { misbehave: () => ({ status: 413, body: { error: { code: 'payload_too_large', message: 'chunk', details: { max_bytes: 100 } } } }) });
    const err = await uploadFile('5', file(1000), { chunkedThreshold: 100, chunkBytes: 300 }, deps(r.server)).promise.catch((e: unknown) => e);
    expect((err as ApiError).status).toBe(413);
    expect(maxUploadBytes()).toBeNull();
    const quota = fakeServer(() => ({ status: 413, body: { error: { code: 'payload_too_large', message: 'quota', details: { reason: 'quota_exceeded', quota_bytes: 10, used_bytes: 10 } } } }));
    const q = await uploadFile('5', file(10), {}, deps(quota)).promise.catch((e: unknown) => e);
    expect(uploadErrorText(q)).toBe('Your storage quota is full: delete some files first.');
    expect(maxUploadBytes()).toBeNull();
  });

  it('the resumable route’s 413 on opening names the limit before any byte is sent', async () => {
    rememberMaxBytes(null);
    const server = fakeServer(() => ({ status: 413, body: { error: { code: 'payload_too_large', message: 'too large', details: { max_bytes: 500 } } } }));
    const err = await uploadFile('5', file(1000), { chunkedThreshold: 100 }, deps(server)).promise.catch((e: unknown) => e);
    expect(uploadErrorText(err)).toBe('Too large: the limit is 500 B.');
    expect(server.requests.map((q) => q.method)).toEqual(['POST']);
    expect(maxUploadBytes()).toBe(500);
    rememberMaxBytes(null);
  });
});
