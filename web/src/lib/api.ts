// The REST client: openapi-fetch typed by the generated schema (src/api/schema.d.ts).
// Every call carries the in-memory access token; a 401 triggers one refresh and one retry.
import createClient from 'openapi-fetch';
import type { paths } from '@/api/types';
import { ApiError, errorFromResponse, networkError } from './errors';

interface AuthHandlers {
  /** The current access token, or null when signed out. */
  getToken(): string | null;
  /** Gets a new access token (cookie flow). Resolves null when the session is over. */
  refresh(): Promise<string | null>;
}

let handlers: AuthHandlers = { getToken: () => null, refresh: async () => null };
let baseUrl = '';

export function setAuthHandlers(h: AuthHandlers) {
  handlers = h;
}

/** Tests and non-browser callers point the client at an absolute origin. */
export function setBaseUrl(url: string) {
  baseUrl = url.replace(/\/$/, '');
  api = makeClient(true);
  rawApi = makeClient(false);
}

export function getBaseUrl() {
  return baseUrl;
}

const AUTH_PATHS = /\/api\/v1\/auth\/(login|register|refresh)$/;

const REAUTH_CODES = new Set<string | null>(['invalid_credentials', 'mfa_required']);

async function errorCodeOf(res: Response): Promise<string | null> {
  try {
    const body = (await res.clone().json()) as { error?: { code?: unknown } } | null;
    return typeof body?.error?.code === 'string' ? body.error.code : null;
  } catch {
    return null;
  }
}

async function authFetch(request: Request): Promise<Response> {
  // Keep a pristine copy: a body can be read once, and we may need to resend it.
  const retry = request.clone();
  const token = handlers.getToken();
  if (token) request.headers.set('Authorization', `Bearer ${token}`);
  const res = await globalThis.fetch(request);
  if (res.status !== 401 || AUTH_PATHS.test(new URL(request.url).pathname)) return res;
  // A wrong password or missing code on a call that re-asks for them (changing the
  // email address) is the person's mistake, not an expired session: no refresh.
  if (REAUTH_CODES.has(await errorCodeOf(res))) return res;
  const fresh = await handlers.refresh();
  if (!fresh) return res;
  retry.headers.set('Authorization', `Bearer ${fresh}`);
  return globalThis.fetch(retry);
}

function makeClient(withAuth: boolean) {
  return createClient<paths>({
    baseUrl,
    // Looked up at call time so tests can replace globalThis.fetch.
    fetch: withAuth ? authFetch : (r: Request) => globalThis.fetch(r),
    credentials: 'same-origin',
  });
}

/** Authenticated client. */
export let api = makeClient(true);
/** Client without the bearer/refresh logic (auth endpoints). */
export let rawApi = makeClient(false);

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Awaits an openapi-fetch call and returns its data, or throws an ApiError. */
export async function unwrap<T>(call: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await call;
  } catch (e) {
    if (e instanceof ApiError) throw e;
    // fetch rejects only when the request never got an answer.
    throw networkError(e);
  }
  if (!result.response.ok) throw errorFromResponse(result.response, result.error);
  return result.data as T;
}

/** Sends {"X-Hearth-Client": "web"} so the server keeps the refresh token in an httpOnly cookie. */
export const WEB_CLIENT_HEADERS = { 'X-Hearth-Client': 'web' } as const;

export function gatewayUrl(): string {
  if (baseUrl) return baseUrl.replace(/^http/, 'ws') + '/api/v1/gateway';
  const { protocol, host } = window.location;
  return `${protocol === 'https:' ? 'wss' : 'ws'}://${host}/api/v1/gateway`;
}

/**
 * JSON request for endpoints the generated schema may not name yet: authenticated, or
 * with `anonymous` as it is (calls that need no sign-in, made before there is one).
 */
export async function requestJson<T>(method: string, path: string, body?: unknown, opts: { anonymous?: boolean } = {}): Promise<T> {
  const send = opts.anonymous ? (r: Request) => globalThis.fetch(r) : authFetch;
  let res: Response;
  try {
    res = await send(
      new Request(`${baseUrl}${path}`, {
        method,
        credentials: 'same-origin',
        headers: body !== undefined ? { 'Content-Type': 'application/json' } : {},
        body: body !== undefined ? JSON.stringify(body) : undefined,
      }),
    );
  } catch (e) {
    throw networkError(e);
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) throw errorFromResponse(res, parsed);
  return parsed as T;
}

/**
 * Uploads one file as `multipart/form-data` (field `file`) to `path`, authenticated;
 * resolves with the JSON answer. For uploads without a progress bar (avatars, icons).
 */
export async function postFile<T>(path: string, file: Blob, filename: string): Promise<T> {
  const form = new FormData();
  form.append('file', file, filename);
  let res: Response;
  try {
    res = await authFetch(new Request(`${baseUrl}${path}`, { method: 'POST', credentials: 'same-origin', body: form }));
  } catch (e) {
    throw networkError(e);
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) throw errorFromResponse(res, parsed);
  return parsed as T;
}
