// "Sign in with …" in the browser against a real server configured with a real OpenID
// Connect provider (scripts/oidc.sh: panva's oidc-provider, known to the server as
// `test`, "Test ID"; see global-setup.ts): a first sign-in makes the account and lands in
// the app signed in; the callback's refusals (cancelled at the provider, an account with
// that address already, a badly signed ID token) come back to /login in words; a
// password account links the provider from settings (password, then a two-factor
// code), signs in with it, and removes it again. Without the provider these tests fail,
// never skip.
import { expect, test, type Page } from '@playwright/test';
import { OIDC_ISSUER } from './global-setup';
import { axeCheck, baseUrl, login, newUserPage, rest, uniqueName } from './helpers';
import { enableTotp, totp } from './totp';

const PASSWORD = 'correct horse battery';

test.beforeAll(async () => {
  const res = await fetch(`${OIDC_ISSUER}/.well-known/openid-configuration`).catch((e: Error) => e);
  if (res instanceof Error || !res.ok)
    throw new Error(`e2e: the OIDC provider is not answering at ${OIDC_ISSUER} (${res instanceof Error ? res.message : res.status}); start it with \`scripts/oidc.sh\``);
});

/**
 * The test provider has no login page: its authorization URL logs in the account named
 * by an extra `login_hint`. The browser's visits there get the hint. Without this they
 * go as they are, which the provider answers as a person cancelling.
 */
async function signInAtProviderAs(page: Page, account: string) {
  const atProvider = (url: URL) => url.origin === OIDC_ISSUER && url.pathname === '/auth';
  const withHint = (url: URL) => {
    const hinted = new URL(url);
    hinted.searchParams.set('login_hint', account);
    return hinted.href;
  };
  // Straight there (linking answers the provider's URL and the page goes to it).
  await page.route(atProvider, (route) => route.continue({ url: withHint(new URL(route.request().url())) }));
  // Through our start URL: the browser follows its redirect without routing it again, so
  // the redirect itself gets the hint; the cookie binding the flow still reaches the browser.
  await page.route(
    (url) => url.origin === baseUrl() && url.pathname.startsWith('/api/v1/auth/oidc/') && !url.pathname.endsWith('/callback'),
    async (route) => {
      if (!route.request().isNavigationRequest()) return route.fallback();
      const res = await route.fetch({ maxRedirects: 0 });
      const location = res.headers()['location'];
      const to = location ? new URL(location, route.request().url()) : null;
      if (!to || !atProvider(to)) return route.fulfill({ response: res });
      return route.fulfill({ response: res, headers: { ...res.headers(), location: withHint(to) } });
    },
  );
}

/** Makes the provider's ID tokens for this one account defective (or `normal` again); other tests' accounts are untouched. */
async function providerMode(account: string, mode: 'normal' | 'bad_signature') {
  const res = await fetch(`${OIDC_ISSUER}/test/mode`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ mode, account }) });
  expect(res.status, await res.text()).toBe(200);
}

async function registerWithPassword(username: string, email: string): Promise<string> {
  const res = await rest<{ access_token: string }>('POST', '/api/v1/auth/register', null, { username, password: PASSWORD, email });
  return res.access_token;
}

/** The page's error line (Next's route announcer is another, empty, role=alert outside <main>). */
function alertIn(page: Page) {
  return page.getByRole('main').getByRole('alert');
}

async function openSettings(page: Page) {
  await page.getByRole('button', { name: 'User settings' }).click();
  return page.getByRole('dialog', { name: 'User settings' });
}

async function identitiesSection(page: Page) {
  const section = (await openSettings(page)).getByRole('region', { name: 'Linked identities' });
  await expect(section).toBeVisible();
  return section;
}

async function closeSettings(page: Page) {
  await page.keyboard.press('Escape');
  await expect(page.getByRole('dialog', { name: 'User settings' })).toHaveCount(0);
}

test('a first sign-in with the provider makes an account and lands in the app, signed in', async ({ browser }) => {
  const account = uniqueName('oi');
  const { context, page } = await newUserPage(browser);
  await signInAtProviderAs(page, account);

  await page.goto('/login');
  const button = page.getByRole('link', { name: 'Sign in with Test ID' });
  await expect(button).toHaveAttribute('href', '/api/v1/auth/oidc/test/start?redirect=%2Fapp');
  await expect(page.locator('.auth-or')).toHaveText('or');
  await axeCheck(page, 'login, with a provider');
  await page.goto('/register');
  await expect(page.getByRole('link', { name: 'Sign in with Test ID' })).toBeVisible();

  // The app trades the cookie the callback set for an access token, as a web client.
  const refreshed = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/auth/refresh');
  await page.getByRole('link', { name: 'Sign in with Test ID' }).click();
  await page.waitForURL(/\/app/);
  expect((await refreshed).headers()['x-hearth-client']).toBe('web');
  await expect(page.getByRole('navigation', { name: 'Communities' })).toBeVisible();

  // The account: named after the email's local part, its address verified (the provider says so).
  const settings = await openSettings(page);
  await expect(settings.getByText(`Username @${account} ·`)).toBeVisible();
  await expect(settings.getByTestId('account-email')).toHaveText(`${account}@oidc.test`);
  await expect(settings.getByRole('region', { name: 'Email' }).getByText('Verified', { exact: true })).toBeVisible();
  const section = settings.getByRole('region', { name: 'Linked identities' });
  await expect(section.getByRole('listitem')).toHaveCount(1);
  await expect(section.getByRole('listitem')).toContainText('Test ID');
  await expect(section.getByRole('listitem')).toContainText(`${account}@oidc.test`);
  await expect(section.getByRole('button', { name: /^Link / })).toHaveCount(0);
  // It is the account's only way in: removing it is refused, and said why.
  await section.getByRole('button', { name: `Remove Test ID (${account}@oidc.test)` }).click();
  await expect(section.getByRole('alert')).toContainText('This is the only way to sign in to your account: it has no password.');
  await expect(section.getByRole('listitem')).toHaveCount(1);
  await axeCheck(page, 'user settings, linked identities');
  await closeSettings(page);

  // A reload keeps the session (the refresh cookie).
  await page.reload();
  await expect(page.getByRole('navigation', { name: 'Communities' })).toBeVisible();
  expect(new URL(page.url()).pathname).toBe('/app');
  await context.close();
});

test("the callback's refusals come back to /login in words", async ({ browser }) => {
  const { context, page } = await newUserPage(browser);

  // Cancelled at the provider (no account given: it answers access_denied).
  await page.goto('/login');
  // Back on /login the page asks whether a session is still there (after a failed linking there is).
  const asked = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/v1/auth/refresh');
  await page.getByRole('link', { name: 'Sign in with Test ID' }).click();
  await page.waitForURL(/\/login\?oidc_error=provider_error$/);
  await expect(alertIn(page)).toHaveText(/^The sign-in was cancelled or refused at the provider/);
  expect((await asked).ok()).toBe(false);
  await expect(page.getByText('You are still signed in.')).toHaveCount(0);
  await axeCheck(page, 'login, provider error');

  // An account already has the address the provider gives: never linked by itself.
  const taken = uniqueName('ox');
  await registerWithPassword(uniqueName('oy'), `${taken}@oidc.test`);
  await signInAtProviderAs(page, taken);
  await page.getByRole('link', { name: 'Sign in with Test ID' }).click();
  await page.waitForURL(/\/login\?oidc_error=account_exists$/);
  await expect(alertIn(page)).toHaveText(
    'An account with that email address already exists. Sign in with its password, then link the provider to it in User settings → Linked identities.',
  );

  // An ID token whose signature does not verify.
  const forged = uniqueName('oz');
  await page.unrouteAll();
  await signInAtProviderAs(page, forged);
  await providerMode(forged, 'bad_signature');
  try {
    await page.getByRole('link', { name: 'Sign in with Test ID' }).click();
    await page.waitForURL(/\/login\?oidc_error=invalid_token$/);
    await expect(alertIn(page)).toHaveText(/^The provider's answer could not be verified, so you were not signed in\./);
  } finally {
    await providerMode(forged, 'normal');
  }

  // A reason this client does not know yet.
  await page.goto('/login?oidc_error=brand_new_reason');
  await expect(alertIn(page)).toHaveText('Signing in with the provider did not work. Please try again.');

  // Trying the password instead puts the provider's refusal away, address included.
  await page.getByLabel('Username or email').fill(uniqueName('nobody'));
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect(alertIn(page)).toHaveText('Wrong username/email or password.');
  expect(new URL(page.url()).search).toBe('');
  await context.close();
});

test('a password account links the provider from settings, signs in with it, and removes it', async ({ browser }) => {
  const username = uniqueName('ol');
  const account = uniqueName('oa');
  const token = await registerWithPassword(username, `${username}@example.test`);
  const { context, page } = await newUserPage(browser);
  await login(page, username, PASSWORD);
  await signInAtProviderAs(page, account);

  let section = await identitiesSection(page);
  await expect(section.getByText('None linked yet.')).toBeVisible();
  await section.getByRole('button', { name: 'Link Test ID' }).click();
  let form = section.getByRole('form', { name: 'Link Test ID' });
  await form.getByRole('button', { name: 'Continue to Test ID' }).click();
  await expect(form.getByRole('alert')).toHaveText('Enter your current password.');
  await form.getByLabel('Current password').fill('not my password');
  await form.getByRole('button', { name: 'Continue to Test ID' }).click();
  await expect(form.getByRole('alert')).toHaveText(/^Wrong password or two-factor code\./);
  await axeCheck(page, 'user settings, linking a provider');

  // A round trip that fails (a badly signed ID token) lands on /login, still signed in.
  await providerMode(account, 'bad_signature');
  try {
    await form.getByLabel('Current password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Continue to Test ID' }).click();
    await page.waitForURL(/\/login\?oidc_error=invalid_token$/);
    await expect(alertIn(page)).toHaveText(/^The provider's answer could not be verified/);
  } finally {
    await providerMode(account, 'normal');
  }
  await expect(page.getByRole('status')).toHaveText('You are still signed in. Back to Hearth');
  await page.getByRole('link', { name: 'Back to Hearth' }).click();
  await page.waitForURL(/\/app/);
  await expect(page.getByRole('navigation', { name: 'Communities' })).toBeVisible();

  // With two-factor sign-in on, the server asks for a code as well.
  const t0 = Date.now();
  const secret = await enableTotp(token, PASSWORD, t0);
  section = await identitiesSection(page);
  await section.getByRole('button', { name: 'Link Test ID' }).click();
  form = section.getByRole('form', { name: 'Link Test ID' });
  await form.getByLabel('Current password').fill(PASSWORD);
  await form.getByRole('button', { name: 'Continue to Test ID' }).click();
  await expect(form.getByRole('alert')).toHaveText('Enter the code from your authenticator app.');
  await form.getByLabel('Two-factor code').fill(totp(secret, t0));
  await form.getByRole('button', { name: 'Continue to Test ID' }).click();

  // Back from the provider: confirmed once, and the address cleaned.
  await page.waitForURL(/\/app\?/);
  await expect(page.getByRole('status').filter({ hasText: 'Test ID is linked to your account: you can sign in with it now.' })).toBeVisible();
  await expect.poll(() => new URL(page.url()).searchParams.has('linked')).toBe(false);
  section = await identitiesSection(page);
  await expect(section.getByRole('listitem')).toHaveCount(1);
  await expect(section.getByRole('listitem')).toContainText(`${account}@oidc.test`);
  await expect(section.getByRole('button', { name: 'Link Test ID' })).toHaveCount(0);
  await closeSettings(page);

  // Another browser signs in to this account with the provider, no password asked.
  const other = await newUserPage(browser);
  await signInAtProviderAs(other.page, account);
  await other.page.goto('/login');
  await other.page.getByRole('link', { name: 'Sign in with Test ID' }).click();
  await other.page.waitForURL(/\/app/);
  await expect(other.page.getByRole('navigation', { name: 'Communities' })).toBeVisible();
  await expect((await openSettings(other.page)).getByText(`Username @${username} ·`)).toBeVisible();
  await other.context.close();

  // Removed again (the password remains a way in).
  section = await identitiesSection(page);
  await section.getByRole('button', { name: `Remove Test ID (${account}@oidc.test)` }).click();
  await expect(section.getByText('None linked yet.')).toBeVisible();
  await expect(section.getByRole('listitem')).toHaveCount(0);
  await expect(section.getByRole('button', { name: 'Link Test ID' })).toBeVisible();
  expect(await rest<unknown[]>('GET', '/api/v1/users/@me/identities', token)).toEqual([]);
  await context.close();
});
