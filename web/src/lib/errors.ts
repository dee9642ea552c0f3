// One error type for every REST failure, with a sentence a person can act on.
// The server's body is {"error": {code, message, details}} (contract "Conventions").

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  /** Milliseconds to wait before retrying (429 Retry-After / details.retry_after_ms). */
  readonly retryAfterMs: number | null;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}, retryAfterMs: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfterMs = retryAfterMs;
  }

  /** Network failures (fetch threw) and 503s are worth retrying with the same request. */
  get transient(): boolean {
    return this.status === 0 || this.status === 503 || this.status === 502 || this.status === 504;
  }

  /** What to show the user. */
  get human(): string {
    return humanMessage(this);
  }
}

export const NETWORK_MESSAGE = "Can't reach the server, retrying…";

export function networkError(cause: unknown): ApiError {
  const e = new ApiError(0, 'network', NETWORK_MESSAGE);
  (e as { cause?: unknown }).cause = cause;
  return e;
}

/** Builds an ApiError from a failed Response and its (maybe) parsed JSON body. */
export function errorFromResponse(res: Response, body: unknown): ApiError {
  const err = (body && typeof body === 'object' && 'error' in body ? (body as { error: unknown }).error : null) as
    | { code?: unknown; message?: unknown; details?: unknown }
    | null;
  const code = typeof err?.code === 'string' ? err.code : statusCode(res.status);
  const message = typeof err?.message === 'string' ? err.message : res.statusText || `HTTP ${res.status}`;
  const details = err?.details && typeof err.details === 'object' ? (err.details as Record<string, unknown>) : {};
  let retryAfterMs: number | null = null;
  if (res.status === 429) {
    const header = res.headers.get('Retry-After');
    const fromHeader = header && /^\d+(\.\d+)?$/.test(header.trim()) ? Number(header) * 1000 : NaN;
    const fromBody = typeof details.retry_after_ms === 'number' ? details.retry_after_ms : NaN;
    // The body's milliseconds are exact; the header is whole seconds, rounded up.
    retryAfterMs = Number.isFinite(fromBody) ? fromBody : Number.isFinite(fromHeader) ? fromHeader : 1000;
  }
  return new ApiError(res.status, code, message, details, retryAfterMs);
}

function statusCode(status: number): string {
  switch (status) {
    case 400: return 'invalid_request';
    case 401: return 'unauthorized';
    case 403: return 'forbidden';
    case 404: return 'not_found';
    case 409: return 'conflict';
    case 413: return 'payload_too_large';
    case 415: return 'unsupported_media_type';
    case 429: return 'rate_limited';
    case 503: return 'unavailable';
    default: return 'unknown';
  }
}

export function humanMessage(e: ApiError): string {
  if (e.status === 0) return NETWORK_MESSAGE;
  if (e.status === 429) {
    const s = Math.max(1, Math.ceil((e.retryAfterMs ?? 1000) / 1000));
    return `Slow down, retry in ${s}s.`;
  }
  switch (e.code) {
    case 'invalid_credentials': return 'Wrong username/email or password.';
    case 'mfa_required': return 'This account needs a two-factor code.';
    case 'token_reused': return 'Your session was ended for safety. Please sign in again.';
    case 'automod_blocked': {
      const rule = typeof e.details.rule_name === 'string' ? e.details.rule_name : null;
      return rule ? `Your message was blocked by the automod rule “${rule}”.` : 'Your message was blocked by this community\'s automod rules.';
    }
  }
  if (e.status === 403 && typeof e.details.missing_permission === 'string') {
    return `You don't have the staff permission for that (${e.details.missing_permission}).`;
  }
  if (e.status === 409 && e.details.reason === 'owns_communities') {
    return 'That account owns communities: transfer them or take them down first. Nothing was erased.';
  }
  if (e.status === 409 && e.details.reason === 'report_invalid_transition') {
    return 'Someone else already closed this report.';
  }
  switch (e.status) {
    case 400: {
      // The contract's 400 names the fields in `details.fields` ({name: reason});
      // other keys beside it (a search's `reason`, `token`) are not field names.
      const named = e.details.fields;
      const fields =
        named && typeof named === 'object'
          ? Object.keys(named as Record<string, unknown>)
          : Object.keys(e.details).filter((k) => k !== 'reason' && k !== 'token');
      return fields.length ? `${e.message} (${fields.join(', ')})` : e.message || 'That request was not valid.';
    }
    case 401: return 'Your session has ended. Please sign in again.';
    case 403: {
      // A refusal by rule (blocked, hierarchy, timeout) carries its reason in words.
      if (typeof e.details.reason === 'string' && e.message) return e.message.charAt(0).toUpperCase() + e.message.slice(1) + '.';
      const perm = typeof e.details.permission === 'string' ? e.details.permission : typeof e.details.missing === 'string' ? e.details.missing : null;
      return perm
        ? `You no longer have permission to do that (${perm}).`
        : 'You no longer have permission to do that.';
    }
    case 404: return "That doesn't exist any more, or you can't see it.";
    case 409: return e.message || 'That conflicts with something that already exists.';
    case 413: return 'That is too large.';
    case 503: return 'The server is busy, retrying…';
  }
  return e.message || 'Something went wrong.';
}

export function describeError(e: unknown): string {
  if (e instanceof ApiError) return e.human;
  if (e instanceof Error) return e.message;
  return String(e);
}
