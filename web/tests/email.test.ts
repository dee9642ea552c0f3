// The pure parts of the email screens: tokens from mailed links, the password rule,
// error → sentence per call, the one-POST-per-token guard; and that a wrong password
// on "change email" does not look like an expired session to the REST client.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, errorFromResponse, NETWORK_MESSAGE } from '@/lib/errors';
import {
  emailErrorMessage,
  looksLikeEmail,
  NO_EMAIL_MESSAGE,
  onceByKey,
  passwordLength,
  passwordProblem,
  readToken,
  tokenProblem,
  waitText,
} from '@/lib/email';
import { requestJson, setAuthHandlers } from '@/lib/api';
import { changeEmail, confirmPasswordReset, requestPasswordReset, verifyEmail } from '@/lib/emailApi';
import { fakeServer, json, restoreFetch } from './fake-server';

const TOKEN = 'oXzn1VIZPEbHz3xybeGPh2mY0Nhj3BvCrS6xGkLFasE'; // 32 bytes, base64url, as the server makes them

const apiError = (status: number, code: string, details: Record<string, unknown> = {}, message = 'x') =>
  errorFromResponse(new Response(null, { status }), { error: { code, message, details } });

describe('readToken', () => {
  it('reads the token of a mailed link', () => {
    expect(readToken(`?token=${TOKEN}`)).toBe(TOKEN);
    expect(readToken(`token=${TOKEN}`)).toBe(TOKEN);
    expect(readToken(`?utm=x&token=${TOKEN}&y=1`)).toBe(TOKEN);
  });

  it('drops what mail clients glue to the end of a link', () => {
    expect(readToken(`?token=${TOKEN}.`)).toBe(TOKEN);
    expect(readToken(`?token=${TOKEN})`)).toBe(TOKEN);
    expect(readToken(`?token=${encodeURIComponent(TOKEN + '>')}`)).toBe(TOKEN);
    expect(readToken(`?token=%20${TOKEN}%20`)).toBe(TOKEN);
  });

  it('refuses a missing, empty, truncated or mangled token', () => {
    expect(readToken('')).toBeNull();
    expect(readToken('?code=abc')).toBeNull();
    expect(readToken('?token=')).toBeNull();
    expect(readToken('?token=abc')).toBeNull();
    // A quoted-printable "=3D" left in by a broken mail client, or a space in the middle.
    expect(readToken(`?token=${encodeURIComponent('=3D' + TOKEN)}`)).toBeNull();
    expect(readToken(`?token=${TOKEN.slice(0, 20)}%20${TOKEN.slice(20)}`)).toBeNull();
    expect(readToken(`?token=${'a'.repeat(600)}`)).toBeNull();
  });
});

describe('passwordProblem', () => {
  it('matches the server: 8-256 characters counted as code points', () => {
    expect(passwordProblem('1234567')).toMatch(/at least 8 characters \(this one has 7\)/);
    expect(passwordProblem('12345678')).toBeNull();
    expect(passwordProblem('x'.repeat(256))).toBeNull();
    expect(passwordProblem('x'.repeat(257))).toMatch(/at most 256/);
    // Four emoji are 8 UTF-16 units but 4 characters to the server.
    expect(passwordLength('😀😀😀😀')).toBe(4);
    expect(passwordProblem('😀😀😀😀')).toMatch(/at least 8/);
    expect(passwordProblem('😀'.repeat(256))).toBeNull();
    expect(passwordProblem('abcdefgh\0')).toMatch(/not allowed/);
  });

  it('checks the confirmation', () => {
    expect(passwordProblem('correct horse', 'correct horsf')).toBe('The two passwords do not match.');
    expect(passwordProblem('correct horse', 'correct horse')).toBeNull();
    // Length first: a short password is the problem to fix, whatever the confirmation.
    expect(passwordProblem('short', 'other')).toMatch(/at least 8/);
  });
});

describe('looksLikeEmail and waitText', () => {
  it('accepts addresses and refuses the rest', () => {
    expect(looksLikeEmail('ada@example.org')).toBe(true);
    expect(looksLikeEmail(' ada@example.org ')).toBe(true);
    expect(looksLikeEmail('ada')).toBe(false);
    expect(looksLikeEmail('ada@example')).toBe(false);
    expect(looksLikeEmail('a da@example.org')).toBe(false);
  });

  it('says how long to wait in words', () => {
    expect(waitText(1)).toBe('1 second');
    expect(waitText(42_000)).toBe('42 seconds');
    expect(waitText(60_000)).toBe('1 minute');
    expect(waitText(61_000)).toBe('2 minutes');
    expect(waitText(null)).toBe('1 minute');
  });
});

describe('emailErrorMessage', () => {
  const token = (reason: string) => apiError(400, 'invalid_request', { fields: { token: 'x' }, reason });

  it('names the token problem', () => {
    expect(tokenProblem(token('token_expired'))).toBe('token_expired');
    expect(tokenProblem(token('token_used'))).toBe('token_used');
    expect(tokenProblem(token('token_invalid'))).toBe('token_invalid');
    expect(tokenProblem(apiError(400, 'invalid_request', { fields: { token: 'bad' } }))).toBe('token_invalid');
    expect(tokenProblem(apiError(400, 'invalid_request', { fields: { password: '8-256 characters' } }))).toBeNull();
    expect(tokenProblem(new Error('x'))).toBeNull();
    expect(emailErrorMessage('verify', token('token_expired'))).toBe('This link has expired.');
    expect(emailErrorMessage('verify', token('token_used'))).toBe('This link was already used. Each link works once.');
    expect(emailErrorMessage('verify', token('token_invalid'))).toMatch(/^This link is not valid/);
    expect(emailErrorMessage('reset-confirm', token('token_expired'))).toBe('This password reset link has expired.');
    expect(emailErrorMessage('reset-confirm', token('token_used'))).toMatch(/password reset link was already used/);
  });

  it('says clearly when the server does not send email', () => {
    const off = apiError(503, 'unavailable', {}, 'mail (no smtp_url is configured) is unavailable; try again shortly');
    expect(emailErrorMessage('reset-request', off)).toMatch(new RegExp(`^${NO_EMAIL_MESSAGE}, so passwords cannot be reset by mail`));
    expect(emailErrorMessage('send-verification', off)).toMatch(new RegExp(`^${NO_EMAIL_MESSAGE}`));
    expect(emailErrorMessage('change-email', off)).toMatch(new RegExp(`^${NO_EMAIL_MESSAGE}`));
  });

  it('says how long to wait after a 429', () => {
    const limited = apiError(429, 'rate_limited', { retry_after_ms: 41_200 });
    expect(emailErrorMessage('reset-request', limited)).toBe('Too many reset requests for this account. Try again in 42 seconds.');
    expect(emailErrorMessage('send-verification', apiError(429, 'rate_limited', { retry_after_ms: 90_000 }))).toBe(
      'Too many mails were sent. Try again in 2 minutes.',
    );
    expect(emailErrorMessage('change-email', limited)).toMatch(/Try again in 42 seconds/);
  });

  it('maps each call’s refusals', () => {
    expect(emailErrorMessage('verify', apiError(409, 'conflict', { fields: { email: 'already taken' } }))).toMatch(/Another account started using this address/);
    expect(emailErrorMessage('reset-confirm', apiError(400, 'invalid_request', { fields: { password: '8-256 characters' } }))).toBe(
      'Choose a password of 8-256 characters. Your link still works.',
    );
    expect(emailErrorMessage('reset-request', apiError(400, 'invalid_request', { fields: { login: 'must not be empty' } }))).toBe(
      'Enter your username or email address.',
    );
    expect(emailErrorMessage('send-verification', apiError(409, 'conflict'))).toBe('Your email address is already verified.');
    expect(
      emailErrorMessage('send-verification', apiError(400, 'invalid_request', { fields: { email: 'mail to this address was refused' }, reason: 'email_bounced' })),
    ).toMatch(/refused by its mail server. Change your address/);
    expect(emailErrorMessage('send-verification', apiError(400, 'invalid_request', { fields: { email: 'the account has no email address' } }))).toMatch(
      /has no email address/,
    );
    expect(emailErrorMessage('change-email', apiError(401, 'invalid_credentials'))).toBe('Wrong password or two-factor code.');
    expect(emailErrorMessage('change-email', apiError(401, 'mfa_required'))).toBe('Enter the code from your authenticator app.');
    expect(emailErrorMessage('change-email', apiError(409, 'conflict', { fields: { email: 'already taken' } }))).toBe('Another account already uses that address.');
    expect(emailErrorMessage('change-email', apiError(400, 'invalid_request', { fields: { email: 'that is already your address' } }))).toBe(
      'That is already your address.',
    );
    expect(emailErrorMessage('change-email', apiError(400, 'invalid_request', { fields: { email: 'not an email address' } }))).toBe(
      'That is not a valid email address.',
    );
  });

  it('falls back to the general wording', () => {
    expect(emailErrorMessage('verify', new ApiError(0, 'network', NETWORK_MESSAGE))).toBe(NETWORK_MESSAGE);
    expect(emailErrorMessage('change-email', new Error('boom'))).toBe('boom');
    expect(emailErrorMessage('verify', apiError(500, 'internal', {}, 'internal error'))).toBe('internal error');
  });
});

describe('onceByKey', () => {
  it('runs once per key and shares the answer (strict mode mounts effects twice)', async () => {
    const once = onceByKey<number>();
    const fn = vi.fn(async () => 7);
    const [a, b] = await Promise.all([once('t1', fn), once('t1', fn)]);
    expect([a, b]).toEqual([7, 7]);
    expect(await once('t1', fn)).toBe(7);
    expect(fn).toHaveBeenCalledTimes(1);
    await once('t2', fn);
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('shares a failure too (a spent token is not posted again)', async () => {
    const once = onceByKey<void>();
    const fn = vi.fn(async () => {
      throw new Error('used');
    });
    await expect(once('t', fn)).rejects.toThrow('used');
    await expect(once('t', fn)).rejects.toThrow('used');
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe('email calls', () => {
  afterEach(restoreFetch);

  it('posts tokens and logins without a session, and reads 202/204 with no body', async () => {
    const seen = fakeServer((s) => new Response(null, { status: s.path.endsWith('/password-reset') ? 202 : 204 }));
    await verifyEmail(TOKEN);
    await requestPasswordReset('ada');
    await confirmPasswordReset(TOKEN, 'a new password');
    expect(seen.map((s) => [s.method, s.path, s.body])).toEqual([
      ['POST', '/api/v1/auth/verify-email', { token: TOKEN }],
      ['POST', '/api/v1/auth/password-reset', { login: 'ada' }],
      ['POST', '/api/v1/auth/password-reset/confirm', { token: TOKEN, password: 'a new password' }],
    ]);
  });

  it('turns a refusal into an ApiError with the reason', async () => {
    fakeServer(() => json(400, { error: { code: 'invalid_request', message: 'token: expired', details: { fields: { token: 'expired' }, reason: 'token_expired' } } }));
    const err = await verifyEmail(TOKEN).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(tokenProblem(err)).toBe('token_expired');
    fakeServer(() => json(429, { error: { code: 'rate_limited', message: 'slow', details: { retry_after_ms: 30_000 } } }));
    expect(emailErrorMessage('reset-request', await requestPasswordReset('ada').catch((e) => e))).toMatch(/30 seconds/);
  });

  it('a wrong password on "change email" does not refresh the session; an expired token does', async () => {
    let refreshes = 0;
    setAuthHandlers({ getToken: () => 'old', refresh: async () => (refreshes++, 'fresh') });
    let mode: 'wrong-password' | 'expired' = 'wrong-password';
    const seen = fakeServer((s) => {
      if (mode === 'wrong-password') return json(401, { error: { code: 'invalid_credentials', message: 'wrong login or password', details: {} } });
      return s.auth === 'Bearer fresh' ? new Response(null, { status: 202 }) : json(401, { error: { code: 'unauthorized', message: 'expired', details: {} } });
    });
    const err = await changeEmail('new@example.org', 'nope').catch((e) => e);
    expect(emailErrorMessage('change-email', err)).toBe('Wrong password or two-factor code.');
    expect(refreshes).toBe(0);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'PATCH', path: '/api/v1/users/@me/email', body: { email: 'new@example.org', password: 'nope' }, auth: 'Bearer old' });

    mode = 'expired';
    seen.length = 0;
    await changeEmail('new@example.org', 'right', '123456');
    expect(refreshes).toBe(1);
    expect(seen.map((s) => s.auth)).toEqual(['Bearer old', 'Bearer fresh']);
    expect(seen[1].body).toEqual({ email: 'new@example.org', password: 'right', totp_code: '123456' });
    // The same holds for any authenticated call.
    mode = 'wrong-password';
    await expect(requestJson('GET', '/api/v1/users/@me')).rejects.toBeInstanceOf(ApiError);
    expect(refreshes).toBe(1);
  });
});
