// Email in the browser against a real server that really mails (HEARTH_SMTP_URL → the
// SMTP sink, scripts/smtp.sh): sign-up with an address → welcome mail → verification
// link → /verify-email; forgot password → mail → /reset-password (the old password and
// every open session stop working); change of address → confirmation link → settings
// show the new one. The mails are read from the sink's files and their links opened.
// Without the sink these tests fail (assertSinkUp), never skip.
import { expect, test, type Page } from '@playwright/test';
import { axeCheck, baseUrl, login, newUserPage, uniqueName } from './helpers';
import { assertSinkUp, linkIn, mailsTo, waitForMail } from './mail';
import { enableTotp, totp } from './totp';

const PASSWORD = 'correct horse battery';

test.beforeAll(async () => {
  await assertSinkUp();
});

async function apiRegister(username: string, email: string, password = PASSWORD): Promise<string> {
  const res = await fetch(`${baseUrl()}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password, email }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function openEmailSettings(page: Page) {
  await page.getByRole('button', { name: 'User settings' }).click();
  const section = page.getByRole('region', { name: 'Email' });
  await expect(section).toBeVisible();
  return section;
}

async function closeSettings(page: Page) {
  await page.keyboard.press('Escape');
  await expect(page.getByRole('dialog', { name: 'User settings' })).toHaveCount(0);
}

/** The page's error line (Next's route announcer is another, empty, role=alert outside <main>). */
function alertIn(page: Page) {
  return page.getByRole('main').getByRole('alert');
}

/** Counts the POSTs a page makes to one API path. */
function countPosts(page: Page, path: string) {
  const n = { value: 0 };
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === path) n.value++;
  });
  return n;
}

test('sign up with an address, get the welcome mail, verify it from a mailed link', async ({ browser }) => {
  const since = Date.now();
  const username = uniqueName('mv');
  const email = `${username}@example.test`;
  const { context, page } = await newUserPage(browser);

  await page.goto('/register');
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Email (optional)').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(/\/app/);

  // The welcome mail, with a link to this server (public_url).
  const welcome = await waitForMail(email, /welcome/i, since);
  expect(welcome.text).toContain(baseUrl());

  // Settings: the address, not verified yet; ask for a link.
  const section = await openEmailSettings(page);
  await expect(section.getByTestId('account-email')).toHaveText(email);
  await expect(section.getByText('Not verified')).toBeVisible();
  await section.getByRole('button', { name: 'Send verification link' }).click();
  await expect(section.getByRole('status')).toContainText(`We sent a verification link to ${email}`);
  await axeCheck(page, 'user settings, email section');

  const mail = await waitForMail(email, /verify-email\?token=/, since);
  const link = linkIn(mail, '/verify-email');
  expect(link.startsWith(`${baseUrl()}/verify-email?token=`)).toBe(true);

  // Open it in another tab of the same browser: verified, with one POST.
  const tab = await context.newPage();
  const posts = countPosts(tab, '/api/v1/auth/verify-email');
  await tab.goto(link);
  await expect(tab.getByRole('heading', { name: 'Email address verified' })).toBeVisible({ timeout: 20_000 });
  await expect(tab.getByRole('status')).toHaveText(`Your email address ${email} is verified.`);
  await expect(tab.getByRole('link', { name: 'Open Hearth' })).toHaveAttribute('href', '/app');
  expect(posts.value).toBe(1);
  await axeCheck(tab, 'verify-email, success');

  // The settings now say verified, and offer no verification link any more.
  await closeSettings(page);
  const again = await openEmailSettings(page);
  await expect(again.getByText('Verified', { exact: true })).toBeVisible();
  await expect(again.getByRole('button', { name: 'Send verification link' })).toHaveCount(0);

  // The same link a second time: used, said in words, and the address is verified already.
  await tab.goto(link);
  await expect(tab.getByRole('heading', { name: 'This link did not work' })).toBeVisible();
  await expect(alertIn(tab)).toHaveText('This link was already used. Each link works once.');
  await expect(tab.getByText(`Your email address ${email} is verified already`)).toBeVisible();

  // A token the server never issued, signed out (a fresh browser): a clear error and the way on.
  const stranger = await newUserPage(browser);
  await stranger.page.goto(`/verify-email?token=${'A'.repeat(43)}`);
  await expect(alertIn(stranger.page)).toContainText('This link is not valid');
  await expect(stranger.page.getByText('send yourself a new link from')).toBeVisible();
  await expect(stranger.page.getByRole('link', { name: 'Sign in' })).toBeVisible();
  // No token at all.
  await stranger.page.goto('/verify-email');
  await expect(stranger.page.getByRole('heading', { name: 'This link is incomplete' })).toBeVisible();
  await stranger.context.close();
  await context.close();
});

test('forgot password: mailed link, new password works, old one does not, other sessions signed out', async ({ browser }) => {
  const since = Date.now();
  const username = uniqueName('mr');
  const email = `${username}@example.test`;
  await apiRegister(username, email);
  const NEW_PASSWORD = 'a brand new passphrase';

  // A session on another device, open in the app.
  const other = await newUserPage(browser);
  await login(other.page, username);
  await expect(other.page.getByRole('navigation', { name: 'Communities' })).toBeVisible();

  // "Forgot password?" from the sign-in page carries what was typed.
  const { context, page } = await newUserPage(browser);
  await page.goto('/login');
  await page.getByLabel('Username or email').fill(username);
  await page.getByRole('link', { name: 'Forgot password?' }).click();
  await page.waitForURL(/\/forgot-password\?login=/);
  await expect(page.getByLabel('Username or email')).toHaveValue(username);
  await page.getByRole('button', { name: 'Send reset link' }).click();
  await expect(page.getByRole('status')).toContainText(`If an account exists for “${username}” and it has an email address, we sent a link to it.`);
  await axeCheck(page, 'forgot-password, sent');

  // An account that does not exist gets the very same answer; the fourth request for one
  // login within a minute is refused with the wait.
  const nobody = uniqueName('nobody');
  await page.getByLabel('Username or email').fill(nobody);
  for (let i = 0; i < 3; i++) {
    await page.getByRole('button', { name: /Send (reset link|again)/ }).click();
    await expect(page.getByRole('status')).toContainText(`If an account exists for “${nobody}”`);
  }
  await page.getByRole('button', { name: 'Send again' }).click();
  await expect(alertIn(page)).toHaveText(/^Too many reset requests for this account\. Try again in \d+ (seconds?|minute)\.$/);

  const mail = await waitForMail(email, /reset-password\?token=/, since);
  const link = linkIn(mail, '/reset-password');
  expect(link.startsWith(`${baseUrl()}/reset-password?token=`)).toBe(true);

  const posts = countPosts(page, '/api/v1/auth/password-reset/confirm');
  await page.goto(link);
  await expect(page.getByRole('heading', { name: 'Choose a new password' })).toBeVisible();
  // Checked here before asking the server: too short, then not the same twice.
  await page.getByLabel('New password', { exact: true }).fill('short');
  await page.getByLabel('Confirm new password').fill('short');
  await page.getByRole('button', { name: 'Set new password' }).click();
  await expect(alertIn(page)).toHaveText('Use at least 8 characters (this one has 5).');
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('Confirm new password').fill(NEW_PASSWORD + '!');
  await page.getByRole('button', { name: 'Set new password' }).click();
  await expect(alertIn(page)).toHaveText('The two passwords do not match.');
  expect(posts.value).toBe(0);
  await axeCheck(page, 'reset-password, form');
  await page.getByLabel('Confirm new password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Set new password' }).click();
  await expect(page.getByRole('heading', { name: 'Password changed' })).toBeVisible();
  await expect(page.getByRole('status')).toContainText('every session of your account was signed out');
  expect(posts.value).toBe(1);

  // The other device's session ended: it is back on the sign-in page, told why.
  await other.page.waitForURL(/\/login/, { timeout: 15_000 });
  await expect(other.page.getByText('You were signed out')).toBeVisible();

  // The old password no longer works; the new one does.
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.waitForURL(/\/login/);
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(alertIn(page)).toHaveText('Wrong username/email or password.');
  await login(page, email, NEW_PASSWORD);
  await expect(page.getByRole('navigation', { name: 'Communities' })).toBeVisible();

  // The link is spent: opening it again says so and offers a new one.
  const spent = await newUserPage(browser);
  await spent.page.goto(link);
  await spent.page.getByLabel('New password', { exact: true }).fill('yet another password');
  await spent.page.getByLabel('Confirm new password').fill('yet another password');
  await spent.page.getByRole('button', { name: 'Set new password' }).click();
  await expect(alertIn(spent.page)).toHaveText(/^This password reset link (was already used|is not valid)/);
  await expect(spent.page.getByRole('link', { name: 'Request a new link' })).toHaveAttribute('href', '/forgot-password');
  await spent.context.close();
  await other.context.close();
  await context.close();
});

test('change the address: password checked, confirmation mailed to the new one, settings show it', async ({ browser }) => {
  const since = Date.now();
  const username = uniqueName('mc');
  const oldEmail = `${username}@example.test`;
  const newEmail = `${username}.new@example.test`;
  const takenBy = uniqueName('mt');
  await apiRegister(username, oldEmail);
  await apiRegister(takenBy, `${takenBy}@example.test`);

  const { context, page } = await newUserPage(browser);
  await login(page, username);
  const section = await openEmailSettings(page);
  await expect(section.getByTestId('account-email')).toHaveText(oldEmail);
  await section.getByRole('button', { name: 'Change email' }).click();

  const form = section.getByRole('form', { name: 'Change email' });
  await form.getByLabel('New email address').fill(newEmail);
  await form.getByLabel('Current password').fill('not my password');
  await form.getByRole('button', { name: 'Send confirmation link' }).click();
  await expect(section.getByRole('alert')).toHaveText('Wrong password or two-factor code.');
  // Still signed in: a wrong password is not an ended session.
  await expect(page.getByRole('navigation', { name: 'Communities' })).toBeVisible();

  await form.getByLabel('Current password').fill(PASSWORD);
  await form.getByLabel('New email address').fill(oldEmail.toUpperCase());
  await form.getByRole('button', { name: 'Send confirmation link' }).click();
  await expect(section.getByRole('alert')).toHaveText('That is already your address.');
  await form.getByLabel('New email address').fill(`${takenBy}@example.test`);
  await form.getByRole('button', { name: 'Send confirmation link' }).click();
  await expect(section.getByRole('alert')).toHaveText('Another account already uses that address.');

  await form.getByLabel('New email address').fill(newEmail);
  await form.getByRole('button', { name: 'Send confirmation link' }).click();
  await expect(section.getByRole('status')).toContainText(`We sent a confirmation link to ${newEmail}. Your address changes when you open it; until then it stays ${oldEmail}.`);
  await expect(section.getByTestId('account-email')).toHaveText(oldEmail);

  // The new address gets the link; the current one gets a notice (and no link).
  const mail = await waitForMail(newEmail, /verify-email\?token=/, since);
  const link = linkIn(mail, '/verify-email');
  const notice = await waitForMail(oldEmail, new RegExp(newEmail.replace(/[.]/g, '\\.')), since);
  expect(notice.text).not.toMatch(/token=/);

  const tab = await context.newPage();
  await tab.goto(link);
  await expect(tab.getByRole('heading', { name: 'Email address changed' })).toBeVisible({ timeout: 20_000 });
  await expect(tab.getByRole('status')).toHaveText(`Your email address is now ${newEmail}.`);

  await closeSettings(page);
  const after = await openEmailSettings(page);
  await expect(after.getByTestId('account-email')).toHaveText(newEmail);
  await expect(after.getByText('Verified', { exact: true })).toBeVisible();
  // Only the mails this test caused went to these addresses.
  expect(mailsTo(newEmail, since)).toHaveLength(1);
  await context.close();
});

test('with two-factor sign-in on, changing the address asks for a current code', async ({ browser }) => {
  const since = Date.now();
  const username = uniqueName('mf');
  const newEmail = `${username}.new@example.test`;
  const token = await apiRegister(username, `${username}@example.test`);
  // Three codes of three successive steps: enabling, signing in, changing the address.
  const t0 = Date.now();
  const secret = await enableTotp(token, PASSWORD, t0);

  const { context, page } = await newUserPage(browser);
  await page.goto('/login');
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Two-factor code').fill(totp(secret, t0));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/app/);

  const section = await openEmailSettings(page);
  await section.getByRole('button', { name: 'Change email' }).click();
  const form = section.getByRole('form', { name: 'Change email' });
  // The code field is there from the start: the account has two-factor sign-in on.
  await form.getByLabel('New email address').fill(newEmail);
  await form.getByLabel('Current password').fill(PASSWORD);
  await form.getByRole('button', { name: 'Send confirmation link' }).click();
  await expect(section.getByRole('alert')).toHaveText('Enter the code from your authenticator app.');
  await form.getByLabel('Two-factor code').fill(totp(secret, Date.now() - 10 * 60_000));
  await form.getByRole('button', { name: 'Send confirmation link' }).click();
  await expect(section.getByRole('alert')).toHaveText('Wrong password or two-factor code.');
  await form.getByLabel('Two-factor code').fill(totp(secret, t0 + 30_000));
  await form.getByRole('button', { name: 'Send confirmation link' }).click();
  await expect(section.getByRole('status')).toContainText(`We sent a confirmation link to ${newEmail}.`);
  linkIn(await waitForMail(newEmail, /verify-email\?token=/, since), '/verify-email');
  await context.close();
});

test('a server that does not send email says so', async ({ browser }) => {
  // This suite's server mails; the answer of one without smtp_url is played back here
  // (the body is the server's own for that case).
  const noMail = {
    status: 503,
    contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'unavailable', message: 'mail (no smtp_url is configured) is unavailable; try again shortly', details: {} } }),
  };
  const { context, page } = await newUserPage(browser);
  await context.route('**/api/v1/auth/password-reset', (route) => route.fulfill(noMail));
  await context.route('**/api/v1/users/@me/email/verify', (route) => route.fulfill(noMail));
  await page.goto('/forgot-password');
  await page.getByLabel('Username or email').fill('someone');
  await page.getByRole('button', { name: 'Send reset link' }).click();
  await expect(alertIn(page)).toHaveText("This server does not send email, so passwords cannot be reset by mail. Ask the server's administrator for help.");

  const username = uniqueName('mn');
  await apiRegister(username, `${username}@example.test`);
  await login(page, username);
  const section = await openEmailSettings(page);
  await section.getByRole('button', { name: 'Send verification link' }).click();
  await expect(section.getByRole('alert')).toHaveText('This server does not send email, so addresses cannot be verified.');
  await context.close();
});
