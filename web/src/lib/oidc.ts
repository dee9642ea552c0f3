// Sign in with OpenID Connect (docs/api.md "Sign in with OpenID Connect"): the calls,
// and the pure parts the screens use, tested in tests/oidc.test.ts. The screens are
// components/SignInProviders.tsx (the buttons on /login and /register, and the errors
// that come back to /login) and components/LinkedIdentities.tsx (user settings, and
// the confirmation after linking).
import type { IdentityLinkStart, LinkedIdentity, OidcProvider } from '@/api/types';
import { getBaseUrl, requestJson } from './api';
import { ApiError, describeError } from './errors';

/** Why the callback sent the browser to /login?oidc_error=<reason>, in words. */
const SIGN_IN_ERRORS = new Map<string, string>([
  ['invalid_state', 'That sign-in expired, was already used, or was started in another browser. Please try again from here.'],
  ['provider_error', 'The sign-in was cancelled or refused at the provider, or the provider could not be reached. Please try again, or sign in with your password.'],
  ['invalid_token', "The provider's answer could not be verified, so you were not signed in. Please try again; if it keeps happening, tell this server's administrator."],
  ['email_domain_not_allowed', "This server does not accept sign-ins with that email address's domain. Use an account with an allowed address, or sign in with your password."],
  [
    'account_exists',
    'An account with that email address already exists. Sign in with its password, then link the provider to it in User settings → Linked identities.',
  ],
  ['signup_disabled', 'No account here is linked to that sign-in, and this server does not create accounts through it. Sign in with your password, then link it in User settings.'],
  ['already_linked', 'That sign-in is already linked to another account on this server, so it cannot be linked to this one. Remove it from the other account first.'],
  ['suspended', "This account is suspended, so it cannot sign in. Contact this server's administrator."],
]);

export const SIGN_IN_ERROR_OTHER = 'Signing in with the provider did not work. Please try again.';

/** The sentence for /login?oidc_error=<reason>; unknown reasons get a generic one. */
export function oidcErrorMessage(reason: string): string {
  return SIGN_IN_ERRORS.get(reason) ?? SIGN_IN_ERROR_OTHER;
}

/**
 * Where a "Sign in with …" button goes: our start URL, which redirects to the provider.
 * A browser navigation, not a fetch: it sets the cookie that binds the flow to this
 * browser, and the provider's page must be the top-level document.
 */
export function signInUrl(provider: string, redirect: string): string {
  return `${getBaseUrl()}/api/v1/auth/oidc/${encodeURIComponent(provider)}/start?redirect=${encodeURIComponent(redirect)}`;
}

/** The providers list as answered, keeping only well-formed entries (buttons need both names). */
export function readProviders(body: unknown): OidcProvider[] {
  if (!Array.isArray(body)) return [];
  return body
    .filter((p): p is OidcProvider => !!p && typeof p === 'object' && typeof p.name === 'string' && p.name !== '' && typeof p.display_name === 'string')
    .map((p) => ({ name: p.name, display_name: p.display_name || p.name }));
}

/** Configured providers this account has not linked yet: the "Link …" buttons. */
export function unlinkedProviders(providers: readonly OidcProvider[], identities: readonly LinkedIdentity[]): OidcProvider[] {
  const linked = new Set(identities.map((i) => i.provider));
  return providers.filter((p) => !linked.has(p.name));
}

/** The confirmation after /app?linked=<name>. */
export function linkedNotice(name: string, providers: readonly OidcProvider[]): string {
  const display = providers.find((p) => p.name === name)?.display_name ?? name;
  return `${display} is linked to your account: you can sign in with it now.`;
}

/** A sentence for a failed linking or removal. */
export function identityErrorMessage(action: 'link' | 'remove', e: unknown): string {
  if (e instanceof ApiError) {
    if (action === 'link') {
      // Accounts made through a provider have no password, and linking re-asks for it.
      if (e.code === 'invalid_credentials')
        return 'Wrong password or two-factor code. (An account created by signing in with a provider has no password until you set one with “Forgot password?” on the sign-in page.)';
      if (e.code === 'mfa_required') return 'Enter the code from your authenticator app.';
      if (e.status === 404) return 'That provider is no longer set up on this server.';
      // The server could not reach the provider to start; not the "busy, retrying" of other 503s.
      if (e.status === 503) return 'The provider could not be reached. Please try again in a moment.';
    }
    if (action === 'remove' && e.status === 409)
      return 'This is the only way to sign in to your account: it has no password. Set one first with “Forgot password?” on the sign-in page (it mails you a link), then remove this.';
  }
  return describeError(e);
}

const PROVIDERS = '/api/v1/auth/oidc/providers';
const IDENTITIES = '/api/v1/users/@me/identities';

/** GET /auth/oidc/providers (no sign-in needed). */
export async function fetchProviders(): Promise<OidcProvider[]> {
  return readProviders(await requestJson<unknown>('GET', PROVIDERS, undefined, { anonymous: true }));
}

export const fetchIdentities = () => requestJson<LinkedIdentity[]>('GET', IDENTITIES);

/** DELETE: 204, or 409 when it is the account's only way to sign in. */
export const removeIdentity = (id: string) => requestJson<void>('DELETE', `${IDENTITIES}/${encodeURIComponent(id)}`);

/** Re-authenticates and answers the provider URL to send the browser to. */
export async function startLinking(provider: string, password: string, totpCode?: string): Promise<string> {
  const body = totpCode ? { password, totp_code: totpCode } : { password };
  const { url } = await requestJson<IdentityLinkStart>('POST', `${IDENTITIES}/${encodeURIComponent(provider)}`, body);
  // It becomes the window's location: nothing but a web address may get there.
  if (typeof url !== 'string' || !/^https?:\/\//i.test(url)) throw new Error('The server answered without a usable provider address.');
  return url;
}
