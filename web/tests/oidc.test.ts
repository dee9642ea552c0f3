// Sign in with OpenID Connect, the pure parts: the callback's reasons in words, the
// start URL, the providers list as answered, which providers can still be linked, the
// confirmation after linking, errors of linking and removing; and the calls: the
// providers list needs no session, a wrong password on linking does not look like an
// expired session, and only a web address is handed back to navigate to.
import { afterEach, describe, expect, it } from 'vitest';
import type { LinkedIdentity } from '@/api/types';
import { setAuthHandlers, setBaseUrl } from '@/lib/api';
import { ApiError, errorFromResponse, NETWORK_MESSAGE, networkError } from '@/lib/errors';
import {
  fetchIdentities,
  fetchProviders,
  identityErrorMessage,
  linkedNotice,
  oidcErrorMessage,
  readProviders,
  removeIdentity,
  SIGN_IN_ERROR_OTHER,
  signInUrl,
  startLinking,
  unlinkedProviders,
} from '@/lib/oidc';
import { fakeServer, json, restoreFetch } from './fake-server';

const apiError = (status: number, code: string, message = 'x') => errorFromResponse(new Response(null, { status }), { error: { code, message, details: {} } });

const TEST_ID = { name: 'test', display_name: 'Test ID' };
const CORP = { name: 'corp', display_name: 'Corp SSO' };
const identity = (provider: string, id = `i-${provider}`): LinkedIdentity => ({ id, provider, display_name: provider, email: `${provider}@example.test`, created_at: '2025-01-02T03:04:05Z' });

describe('oidcErrorMessage', () => {
  const REASONS = ['invalid_state', 'provider_error', 'invalid_token', 'email_domain_not_allowed', 'account_exists', 'signup_disabled', 'already_linked', 'suspended'];

  it('has its own sentence for every reason of the contract', () => {
    const sentences = REASONS.map(oidcErrorMessage);
    for (const s of sentences) expect(s).not.toBe(SIGN_IN_ERROR_OTHER);
    expect(new Set(sentences).size).toBe(REASONS.length);
  });

  it('says what to do', () => {
    // The one most people hit: they already have a password account with that address.
    expect(oidcErrorMessage('account_exists')).toMatch(/already exists.*Sign in with its password.*link.*settings/i);
    expect(oidcErrorMessage('invalid_state')).toMatch(/try again/i);
    expect(oidcErrorMessage('provider_error')).toMatch(/cancelled|refused|could not be reached/);
    expect(oidcErrorMessage('email_domain_not_allowed')).toMatch(/domain/);
    expect(oidcErrorMessage('signup_disabled')).toMatch(/does not create accounts/);
    expect(oidcErrorMessage('already_linked')).toMatch(/another account/);
    expect(oidcErrorMessage('suspended')).toMatch(/suspended/);
  });

  it('answers anything else generically, Object.prototype names included', () => {
    for (const r of ['', 'nope', 'constructor', '__proto__', 'toString', 'ACCOUNT_EXISTS']) expect(oidcErrorMessage(r)).toBe(SIGN_IN_ERROR_OTHER);
  });
});

describe('signInUrl', () => {
  afterEach(() => setBaseUrl(''));

  it('is our start URL with the path to come back to', () => {
    expect(signInUrl('test', '/app')).toBe('/api/v1/auth/oidc/test/start?redirect=%2Fapp');
    expect(signInUrl('a b/c', '/invite?code=x&y=1')).toBe('/api/v1/auth/oidc/a%20b%2Fc/start?redirect=%2Finvite%3Fcode%3Dx%26y%3D1');
    setBaseUrl('http://hearth.test/');
    expect(signInUrl('test', '/app')).toBe('http://hearth.test/api/v1/auth/oidc/test/start?redirect=%2Fapp');
  });
});

describe('readProviders', () => {
  it('keeps well-formed entries, falling back to the name for a blank display name', () => {
    expect(readProviders([TEST_ID, { name: 'x', display_name: '' }, { name: '', display_name: 'Nameless' }, { display_name: 'No name' }, null, 'test', { name: 3, display_name: 'n' }])).toEqual([
      TEST_ID,
      { name: 'x', display_name: 'x' },
    ]);
    expect(readProviders([{ ...CORP, extra: true }])).toEqual([CORP]);
  });

  it('is empty for anything but a list', () => {
    for (const body of [undefined, null, {}, { providers: [TEST_ID] }, 'test']) expect(readProviders(body)).toEqual([]);
  });
});

describe('unlinkedProviders', () => {
  it('offers the configured providers this account has not linked', () => {
    expect(unlinkedProviders([TEST_ID, CORP], [])).toEqual([TEST_ID, CORP]);
    expect(unlinkedProviders([TEST_ID, CORP], [identity('test')])).toEqual([CORP]);
    expect(unlinkedProviders([TEST_ID, CORP], [identity('test'), identity('corp')])).toEqual([]);
    // An identity of a provider the operator has since removed offers nothing.
    expect(unlinkedProviders([TEST_ID], [identity('gone')])).toEqual([TEST_ID]);
  });
});

describe('linkedNotice', () => {
  it('names the provider as its buttons do, or by its name when it is not listed', () => {
    expect(linkedNotice('test', [CORP, TEST_ID])).toBe('Test ID is linked to your account: you can sign in with it now.');
    expect(linkedNotice('test', [])).toBe('test is linked to your account: you can sign in with it now.');
  });
});

describe('identityErrorMessage', () => {
  it('linking: a wrong password (maybe there is none), a missing code, a provider gone or unreachable', () => {
    const wrong = identityErrorMessage('link', apiError(401, 'invalid_credentials'));
    expect(wrong).toMatch(/^Wrong password or two-factor code\./);
    expect(wrong).toMatch(/no password until you set one with “Forgot password\?”/);
    expect(identityErrorMessage('link', apiError(401, 'mfa_required'))).toBe('Enter the code from your authenticator app.');
    expect(identityErrorMessage('link', apiError(404, 'not_found'))).toMatch(/no longer set up/);
    // The server could not reach the provider to begin (nothing is retried by itself).
    expect(identityErrorMessage('link', apiError(503, 'unavailable', 'the identity provider is unavailable'))).toBe('The provider could not be reached. Please try again in a moment.');
  });

  it('removing the only way to sign in (409) says how to get another', () => {
    const msg = identityErrorMessage('remove', apiError(409, 'conflict', 'cannot remove the last sign-in method'));
    expect(msg).toMatch(/only way to sign in/);
    expect(msg).toMatch(/Forgot password\?/);
    // A 409 on linking is not that.
    expect(identityErrorMessage('link', apiError(409, 'conflict', 'something else'))).toBe('something else');
  });

  it('anything else as usual', () => {
    expect(identityErrorMessage('remove', networkError(new TypeError('x')))).toBe(NETWORK_MESSAGE);
    expect(identityErrorMessage('link', new Error('boom'))).toBe('boom');
  });
});

describe('oidc calls', () => {
  afterEach(restoreFetch);

  it('lists providers without a session (no token, no refresh on a 401)', async () => {
    let refreshes = 0;
    setAuthHandlers({ getToken: () => 'tok', refresh: async () => (refreshes++, 'fresh') });
    const seen = fakeServer(() => json(200, [TEST_ID, { bogus: true }]));
    expect(await fetchProviders()).toEqual([TEST_ID]);
    expect(seen).toEqual([{ method: 'GET', path: '/api/v1/auth/oidc/providers', body: undefined, auth: null }]);
    fakeServer(() => json(401, { error: { code: 'unauthorized', message: 'no', details: {} } }));
    await expect(fetchProviders()).rejects.toBeInstanceOf(ApiError);
    expect(refreshes).toBe(0);
  });

  it('reads, removes and links identities with the session', async () => {
    setAuthHandlers({ getToken: () => 'tok', refresh: async () => null });
    const seen = fakeServer((s) => {
      if (s.method === 'GET') return json(200, [identity('test', 'id/1')]);
      if (s.method === 'DELETE') return new Response(null, { status: 204 });
      return json(200, { url: 'http://127.0.0.1:9400/auth?client_id=hearth-test&state=s' });
    });
    expect(await fetchIdentities()).toEqual([identity('test', 'id/1')]);
    await removeIdentity('id/1');
    expect(await startLinking('test', 'pw')).toBe('http://127.0.0.1:9400/auth?client_id=hearth-test&state=s');
    await startLinking('test', 'pw', '123456');
    expect(seen.map((s) => [s.method, s.path, s.body, s.auth])).toEqual([
      ['GET', '/api/v1/users/@me/identities', undefined, 'Bearer tok'],
      ['DELETE', '/api/v1/users/@me/identities/id%2F1', undefined, 'Bearer tok'],
      ['POST', '/api/v1/users/@me/identities/test', { password: 'pw' }, 'Bearer tok'],
      ['POST', '/api/v1/users/@me/identities/test', { password: 'pw', totp_code: '123456' }, 'Bearer tok'],
    ]);
  });

  it('linking: a wrong password or a missing code does not refresh the session', async () => {
    let refreshes = 0;
    setAuthHandlers({ getToken: () => 'tok', refresh: async () => (refreshes++, 'fresh') });
    for (const code of ['invalid_credentials', 'mfa_required']) {
      fakeServer(() => json(401, { error: { code, message: 'x', details: {} } }));
      const err = await startLinking('test', 'pw').catch((e) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe(code);
    }
    expect(refreshes).toBe(0);
  });

  it('linking hands back only a web address to navigate to', async () => {
    setAuthHandlers({ getToken: () => 'tok', refresh: async () => null });
    for (const url of ['javascript:alert(1)', '/relative', '', 42, null]) {
      fakeServer(() => json(200, { url }));
      await expect(startLinking('test', 'pw')).rejects.toThrow(/usable provider address/);
    }
    fakeServer(() => json(200, {}));
    await expect(startLinking('test', 'pw')).rejects.toThrow(/usable provider address/);
  });
});
