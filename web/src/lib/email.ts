// Email verification, password reset and email change (contract "Email:
// verification, password reset, email change"): the pure parts, tested in
// tests/email.test.ts. The screens are components/EmailViews.tsx and the
// settings section in components/Dialogs.tsx.
import { ApiError, describeError, NETWORK_MESSAGE } from './errors';

/** The server's password rule: 8-256 characters (Unicode scalar values), no NUL. */
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;

/** Shown whenever a mailing call answers 503: the server has no `smtp_url`. */
export const NO_EMAIL_MESSAGE = 'This server does not send email';

/**
 * The token of a mailed link, from a query string (`?token=…`), or null when the
 * link has none or it cannot be one. Tokens are base64url; mail clients sometimes
 * glue punctuation or a closing bracket to a pasted link, so trailing characters
 * that cannot be part of a token are dropped.
 */
export function readToken(search: string): string | null {
  const raw = new URLSearchParams(search.startsWith('?') ? search : `?${search}`).get('token');
  if (raw === null) return null;
  const token = raw.trim().replace(/[^A-Za-z0-9_-]+$/, '');
  if (token.length < 16 || token.length > 512 || !/^[A-Za-z0-9_-]+$/.test(token)) return null;
  return token;
}

/** Length in the server's units (Unicode scalar values, not UTF-16 code units). */
export function passwordLength(password: string): number {
  return [...password].length;
}

/** What is wrong with a new password and its confirmation, or null when both are fine. */
export function passwordProblem(password: string, confirm?: string): string | null {
  const n = passwordLength(password);
  if (n < PASSWORD_MIN) return `Use at least ${PASSWORD_MIN} characters (this one has ${n}).`;
  if (n > PASSWORD_MAX) return `Use at most ${PASSWORD_MAX} characters (this one has ${n}).`;
  if (password.includes('\0')) return 'The password contains a character that is not allowed.';
  if (confirm !== undefined && confirm !== password) return 'The two passwords do not match.';
  return null;
}

/** A quick sanity check before asking the server (which has the last word). */
export function looksLikeEmail(s: string): boolean {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s.trim()) && s.trim().length <= 254;
}

/** "42 seconds", "1 minute", "3 minutes": how long to wait after a 429. */
export function waitText(ms: number | null): string {
  const s = Math.max(1, Math.ceil((ms ?? 60_000) / 1000));
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}

export type TokenProblem = 'token_invalid' | 'token_used' | 'token_expired';

/** The reason a mailed link's token was refused (400 with details.reason), or null. */
export function tokenProblem(e: unknown): TokenProblem | null {
  if (!(e instanceof ApiError) || e.status !== 400) return null;
  const reason = e.details.reason;
  if (reason === 'token_invalid' || reason === 'token_used' || reason === 'token_expired') return reason;
  const fields = e.details.fields;
  if (fields && typeof fields === 'object' && 'token' in fields) return 'token_invalid';
  return null;
}

/** Which call failed: the same status means different things on each. */
export type EmailAction =
  | 'verify' // POST /auth/verify-email
  | 'reset-request' // POST /auth/password-reset
  | 'reset-confirm' // POST /auth/password-reset/confirm
  | 'send-verification' // POST /users/@me/email/verify
  | 'change-email'; // PATCH /users/@me/email

function fieldsOf(e: ApiError): Record<string, unknown> {
  const f = e.details.fields;
  return f && typeof f === 'object' ? (f as Record<string, unknown>) : {};
}

/** A sentence for a failed email call, specific to the call. */
export function emailErrorMessage(action: EmailAction, e: unknown): string {
  if (!(e instanceof ApiError)) return describeError(e);
  if (e.status === 0) return NETWORK_MESSAGE;
  const problem = tokenProblem(e);
  if (problem) {
    const what = action === 'reset-confirm' ? 'password reset link' : 'link';
    switch (problem) {
      case 'token_expired':
        return `This ${what} has expired.`;
      case 'token_used':
        return `This ${what} was already used. Each link works once.`;
      default:
        return `This ${what} is not valid. It may have been replaced by a newer one, or copied incompletely.`;
    }
  }
  if (e.status === 503 && e.code === 'unavailable') {
    switch (action) {
      case 'reset-request':
        return `${NO_EMAIL_MESSAGE}, so passwords cannot be reset by mail. Ask the server's administrator for help.`;
      case 'send-verification':
        return `${NO_EMAIL_MESSAGE}, so addresses cannot be verified.`;
      case 'change-email':
        return `${NO_EMAIL_MESSAGE}, so the address cannot be changed (the new one must confirm by mail).`;
      default:
        return 'The server is unavailable right now. Try again in a moment.';
    }
  }
  if (e.status === 429) {
    const wait = waitText(e.retryAfterMs);
    if (action === 'reset-request') return `Too many reset requests for this account. Try again in ${wait}.`;
    if (action === 'send-verification' || action === 'change-email') return `Too many mails were sent. Try again in ${wait}.`;
    return `Too many attempts. Try again in ${wait}.`;
  }
  const fields = fieldsOf(e);
  switch (action) {
    case 'verify':
      if (e.status === 409) return 'Another account started using this address meanwhile, so it cannot become yours. Choose a different address in your settings.';
      break;
    case 'reset-confirm':
      if (e.status === 400 && 'password' in fields) return `Choose a password of ${PASSWORD_MIN}-${PASSWORD_MAX} characters. Your link still works.`;
      break;
    case 'reset-request':
      if (e.status === 400 && 'login' in fields) return 'Enter your username or email address.';
      break;
    case 'send-verification':
      if (e.status === 409) return 'Your email address is already verified.';
      if (e.status === 400 && e.details.reason === 'email_bounced') return 'Mail to your address was refused by its mail server. Change your address below.';
      if (e.status === 400 && 'email' in fields) return 'Your account has no email address. Add one below.';
      break;
    case 'change-email':
      if (e.code === 'invalid_credentials') return 'Wrong password or two-factor code.';
      if (e.code === 'mfa_required') return 'Enter the code from your authenticator app.';
      if (e.status === 409) return 'Another account already uses that address.';
      if (e.status === 400 && 'email' in fields) {
        const why = String(fields.email);
        return /already your/i.test(why) ? 'That is already your address.' : 'That is not a valid email address.';
      }
      if (e.status === 400 && 'password' in fields) return 'Enter your current password.';
      if (e.status === 400 && 'totp_code' in fields) return 'Enter the 6-digit code from your authenticator app.';
      break;
  }
  return describeError(e);
}

/**
 * Runs `fn` once per key for the page's lifetime and shares its promise: React's
 * strict mode mounts effects twice, and a single-use token must be posted once.
 */
export function onceByKey<T>() {
  const calls = new Map<string, Promise<T>>();
  return (key: string, fn: () => Promise<T>): Promise<T> => {
    let p = calls.get(key);
    if (!p) {
      p = fn();
      calls.set(key, p);
    }
    return p;
  };
}
