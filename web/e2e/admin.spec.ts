// The instance admin area in Chromium against the real server: a staff account (made
// with `hearth admin create-user --admin`, as an operator would) suspends a user, whose
// open page is signed out at once; roles and permissions decide what staff see; people
// who aren't staff see no admin link and a clear refusal at /admin.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { login, rest, tabTracker, uniqueName, WEB } from './helpers';

const PASSWORD = 'correct horse battery';
const tabs = tabTracker();
test.afterEach(async () => {
  await tabs.closeAll();
});

/** Runs the server's own CLI against the suite's data directory. */
function hearthAdmin(args: string[]) {
  const bin = process.env.HEARTH_BIN ?? '/var/tmp/hearth-target/debug/hearth';
  const { dataDir } = JSON.parse(readFileSync(join(WEB, 'test-results', '.e2e-server.json'), 'utf8')) as { dataDir: string };
  execFileSync(bin, ['admin', ...args, '--data-dir', dataDir], { cwd: tmpdir(), stdio: 'pipe', env: { ...process.env, RUST_LOG: 'error' } });
}

async function registerUser(prefix: string) {
  const name = uniqueName(prefix);
  await rest('POST', '/api/v1/auth/register', null, { username: name, password: PASSWORD });
  return name;
}

test('staff suspend a user from /admin and that user is signed out at once; permissions shape what staff see; non-staff get no admin area', async ({ browser }) => {
  const boss = uniqueName('boss');
  hearthAdmin(['create-user', '--username', boss, '--password', PASSWORD, '--admin']);
  const victim = await registerUser('vic');
  const helper = await registerUser('sup');

  // Non-staff: no admin link in the app, and /admin says why.
  const H = (await tabs.open(browser)).page;
  await login(H, helper, PASSWORD);
  await expect(H.getByRole('navigation', { name: 'Communities' })).toBeVisible();
  await expect(H.getByRole('link', { name: 'Instance admin' })).toHaveCount(0);
  await H.goto('/admin');
  await expect(H.getByRole('alert').filter({ hasText: "You are not on this server's staff, so there is nothing for you here." })).toBeVisible();
  await expect(H.getByRole('tab')).toHaveCount(0);

  // The victim has the app open.
  const V = (await tabs.open(browser)).page;
  await login(V, victim, PASSWORD);
  await expect(V.getByRole('navigation', { name: 'Communities' })).toBeVisible();

  // Staff: the rail links to the admin area.
  const S = (await tabs.open(browser)).page;
  await login(S, boss, PASSWORD);
  await S.getByRole('link', { name: 'Instance admin' }).click();
  await S.waitForURL(/\/admin/);
  await expect(S.getByRole('heading', { name: 'Instance admin', level: 1 })).toBeVisible();
  await expect(S.getByRole('tab')).toHaveText(['Overview', 'Users', 'Communities', 'Reports', 'Staff', 'Audit log']);
  const users = Number((await S.locator('[data-stat="users"]').textContent())?.replace(/\D/g, ''));
  expect(users).toBeGreaterThanOrEqual(3);

  await S.getByRole('tab', { name: 'Users' }).click();
  await S.getByLabel('Find users').fill(victim);
  await S.getByRole('button', { name: 'Search' }).click();
  await S.getByRole('option', { name: new RegExp(`@${victim}`) }).click();
  const detail = S.getByRole('article', { name: `User @${victim}` });
  await expect(detail).toContainText('Active');
  await detail.getByLabel('Suspension reason').fill('spam wave');
  await detail.getByRole('button', { name: 'Suspend' }).click();
  await expect(detail.getByRole('status')).toHaveText(`@${victim} is suspended and signed out everywhere.`);
  await expect(detail).toContainText('Suspended');
  await expect(detail).toContainText('reason: spam wave');
  await expect(S.getByRole('option', { name: new RegExp(`@${victim}`) })).toContainText('suspended');

  // The victim's open page is signed out, and signing in again is refused.
  await V.waitForURL(/\/login/, { timeout: 10_000 });
  await V.getByLabel('Username or email').fill(victim);
  await V.getByLabel('Password').fill(PASSWORD);
  await V.getByRole('button', { name: 'Sign in' }).click();
  await expect(V.getByRole('alert').filter({ hasText: /suspended/i })).toBeVisible();

  // Lift it again.
  await detail.getByRole('button', { name: 'Lift suspension' }).click();
  await expect(detail.getByRole('status')).toHaveText(`@${victim} can sign in again.`);
  await expect(detail).toContainText('Active');

  // Staff roles: give the helper "support" (users:read, users:reset_mfa, reports:read).
  await S.getByRole('tab', { name: 'Staff' }).click();
  const support = S.getByRole('region', { name: 'Staff role support' });
  await support.getByLabel('Add a member to support').fill(helper);
  await support.getByRole('button', { name: 'Add', exact: true }).click();
  await expect(support.getByRole('listitem').filter({ hasText: `@${helper}` })).toBeVisible();
  await expect(support.getByRole('checkbox', { name: 'users:read' })).toBeChecked();
  await expect(support.getByRole('checkbox', { name: 'users:suspend' })).not.toBeChecked();
  // The built-in admin role can't be edited.
  await expect(S.getByRole('region', { name: 'Staff role admin' }).getByRole('checkbox', { name: 'policy:edit' })).toBeDisabled();

  // The helper now sees the admin link, and only what support may do.
  await H.goto('/app');
  await expect(H.getByRole('link', { name: 'Instance admin' })).toBeVisible();
  await H.goto('/admin');
  await expect(H.getByRole('tab')).toHaveText(['Users', 'Reports']);
  await H.getByLabel('Find users').fill(victim);
  await H.getByRole('button', { name: 'Search' }).click();
  await H.getByRole('option', { name: new RegExp(`@${victim}`) }).click();
  const hd = H.getByRole('article', { name: `User @${victim}` });
  await expect(hd.getByRole('button', { name: 'Reset two-factor' })).toBeVisible();
  await expect(hd.getByRole('button', { name: 'Reset two-factor' })).toBeDisabled();
  await expect(hd.getByRole('button', { name: 'Suspend' })).toHaveCount(0);
  await expect(hd.getByRole('button', { name: 'Erase account…' })).toHaveCount(0);

  // The instance audit log records the suspension with its reason.
  await S.getByRole('tab', { name: 'Audit log' }).click();
  await S.getByLabel('Action', { exact: true }).selectOption('admin_user_suspend');
  const entry = S.locator('.audit-entry[data-action="admin_user_suspend"]').first();
  await expect(async () => {
    await S.getByRole('button', { name: 'Refresh' }).click();
    await expect(entry).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await expect(entry).toContainText(`@${boss}`);
  await expect(entry).toContainText('suspended');
  await expect(entry).toContainText('Reason: spam wave');
});
