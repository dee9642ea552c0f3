// Session handling for the web client.
// - The access token lives in this module's memory only (never localStorage), so an XSS
//   can't lift a long-lived credential from storage.
// - The refresh token is the server's httpOnly SameSite=Strict cookie `hearth_refresh`
//   (Path=/api/v1/auth), which the server sets when we send X-Hearth-Client: web.
// - Refreshes are serialised across tabs with the Web Locks API: the refresh token
//   rotates, and two tabs presenting the same cookie at once would look like token
//   reuse and revoke the whole session.
import type { AuthResponse, TokenResponse, User } from '@/api/types';
import { api, rawApi, setAuthHandlers, unwrap, WEB_CLIENT_HEADERS } from './api';
import { ApiError } from './errors';
import { sessionStore } from '@/stores/session';

let accessToken: string | null = null;
let refreshTimer: ReturnType<typeof setTimeout> | null = null;
let inflight: Promise<string | null> | null = null;
const signedOutListeners = new Set<(reason: string | null) => void>();

export function getAccessToken() {
  return accessToken;
}

function setToken(token: string, expiresIn: number) {
  accessToken = token;
  if (refreshTimer) clearTimeout(refreshTimer);
  // Refresh ahead of expiry: at 80% of the lifetime, and at least 30 s early.
  const ms = Math.max(5_000, Math.min(expiresIn * 800, expiresIn * 1000 - 30_000));
  refreshTimer = setTimeout(() => {
    void refresh().catch(() => {
      // Network trouble: the 401 path or the next timer will try again.
    });
  }, ms);
}

function clearToken() {
  accessToken = null;
  if (refreshTimer) clearTimeout(refreshTimer);
  refreshTimer = null;
}

async function withRefreshLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? (navigator as Navigator & { locks?: LockManager }).locks : undefined;
  if (locks?.request) return locks.request('hearth-refresh', fn) as Promise<T>;
  return fn();
}

/**
 * Trades the refresh cookie for a new access token. Concurrent callers share one request.
 * Resolves null when the session is over (the user must sign in again); throws on
 * network errors so callers can retry later without signing the user out.
 */
export function refresh(): Promise<string | null> {
  if (inflight) return inflight;
  inflight = withRefreshLock(async () => {
    try {
      const data = await unwrap<TokenResponse>(
        rawApi.POST('/api/v1/auth/refresh', { body: {}, headers: WEB_CLIENT_HEADERS, credentials: 'same-origin' }),
      );
      setToken(data.access_token, data.expires_in);
      return data.access_token;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403 || e.status === 400)) {
        signedOut(e.code === 'token_reused' ? 'Your session was ended for safety. Please sign in again.' : null);
        return null;
      }
      throw e;
    }
  }).finally(() => {
    inflight = null;
  });
  return inflight;
}

setAuthHandlers({
  getToken: () => accessToken,
  refresh: () => refresh().catch(() => null),
});

function signedIn(res: AuthResponse) {
  setToken(res.access_token, res.expires_in);
  sessionStore.set((s) => ({ ...s, status: 'signed_in', user: res.user, signedOutReason: null }));
}

function signedOut(reason: string | null) {
  const wasIn = accessToken !== null || sessionStore.get().status === 'signed_in';
  clearToken();
  sessionStore.set((s) => ({ ...s, status: 'signed_out', user: null, signedOutReason: reason }));
  if (wasIn) for (const l of [...signedOutListeners]) l(reason);
}

export function onSignedOut(fn: (reason: string | null) => void): () => void {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

export async function login(loginName: string, password: string, totpCode?: string): Promise<User> {
  const body = totpCode ? { login: loginName, password, totp_code: totpCode } : { login: loginName, password };
  const res = await unwrap<AuthResponse>(
    rawApi.POST('/api/v1/auth/login', { body, headers: WEB_CLIENT_HEADERS, credentials: 'same-origin' }),
  );
  signedIn(res);
  return res.user;
}

export async function register(input: { username: string; password: string; email?: string; display_name?: string }): Promise<User> {
  const body: { username: string; password: string; email?: string; display_name?: string } = {
    username: input.username,
    password: input.password,
  };
  if (input.email) body.email = input.email;
  if (input.display_name) body.display_name = input.display_name;
  const res = await unwrap<AuthResponse>(
    rawApi.POST('/api/v1/auth/register', { body, headers: WEB_CLIENT_HEADERS, credentials: 'same-origin' }),
  );
  signedIn(res);
  return res.user;
}

/**
 * On page load: the access token is gone (memory only), so trade the cookie for one.
 * Resolves true when signed in. A network failure resolves false without signing out.
 */
export async function restoreSession(): Promise<boolean> {
  if (accessToken && sessionStore.get().user) return true;
  try {
    const token = await refresh();
    if (!token) return false;
    const me = await unwrap<User>(api.GET('/api/v1/users/@me'));
    sessionStore.set((s) => ({ ...s, status: 'signed_in', user: me, signedOutReason: null }));
    return true;
  } catch {
    if (!accessToken) sessionStore.set((s) => ({ ...s, status: 'signed_out' }));
    return false;
  }
}

export async function logout(): Promise<void> {
  try {
    await unwrap(api.POST('/api/v1/auth/logout'));
  } catch {
    // Signing out locally matters more than the server's answer.
  }
  signedOut(null);
}

/** Ends every other session, then this one ("sign out everywhere"). */
export async function logoutEverywhere(): Promise<void> {
  try {
    const sessions = await unwrap<{ id: string; current: boolean }[]>(api.GET('/api/v1/auth/sessions'));
    await Promise.all(
      sessions
        .filter((s) => !s.current)
        .map((s) => unwrap(api.DELETE('/api/v1/auth/sessions/{id}', { params: { path: { id: s.id } } })).catch(() => undefined)),
    );
  } finally {
    await logout();
  }
}

/** The gateway says this session was revoked (close 4010). */
export function sessionRevoked() {
  signedOut('You were signed out (this session was ended).');
}
