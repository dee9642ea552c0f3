// The email calls (contract "Email: verification, password reset, email change").
// Mailing calls answer 202 with no body, which the typed client would try to parse,
// so these read the answer as text (see requestJson).
import type { components } from '@/api/schema';
import { getBaseUrl, requestJson } from './api';
import { errorFromResponse, networkError } from './errors';

/** GET /users/@me: the signed-in user's own profile, email fields included. */
export type Me = components['schemas']['Me'];

/** A call that needs no sign-in: the mailed token is the proof. */
async function anonPost(path: string, body: unknown): Promise<void> {
  let res: Response;
  try {
    res = await globalThis.fetch(`${getBaseUrl()}${path}`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw networkError(e);
  }
  const text = await res.text();
  if (res.ok) return;
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  throw errorFromResponse(res, parsed);
}

/** Redeems a verification or email-change token (204). */
export const verifyEmail = (token: string) => anonPost('/api/v1/auth/verify-email', { token });

/** Asks for a reset mail (always 202, whether or not the account exists). */
export const requestPasswordReset = (login: string) => anonPost('/api/v1/auth/password-reset', { login });

/** Sets a new password; every session of the account is revoked (204). */
export const confirmPasswordReset = (token: string, password: string) =>
  anonPost('/api/v1/auth/password-reset/confirm', { token, password });

export const fetchMe = () => requestJson<Me>('GET', '/api/v1/users/@me');

/** Mails a new verification link to the account's address (202). */
export const sendVerification = () => requestJson<void>('POST', '/api/v1/users/@me/email/verify');

/** Mails a confirmation link to `email`; the change applies when it is opened (202). */
export const changeEmail = (email: string, password: string, totpCode?: string) =>
  requestJson<void>('PATCH', '/api/v1/users/@me/email', totpCode ? { email, password, totp_code: totpCode } : { email, password });
