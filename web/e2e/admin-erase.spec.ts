// Erasure and takedown in the instance admin area, in Chromium against the real server.
// Staff try to erase a community owner (refused: owns_communities, with a way to find the
// community), take that community down from the Communities tab while a member has the
// app open (it leaves their rail live), then erase the owner with "remove": the member's
// open channel loses the erased user's messages live, their DM loses them too, and
// signing in as the erased user fails. Set-up goes over REST; assertions are what people see.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { axeCheck, composer, login, message, rest, tabTracker, uniqueName, WEB, apiAccount, type ApiAccount } from './helpers';

const PASSWORD = 'correct horse battery';
const tabs = tabTracker();
test.afterEach(async () => {
  await tabs.closeAll();
});

function hearthAdmin(args: string[]) {
  const bin = process.env.HEARTH_BIN ?? '/var/tmp/hearth-target/debug/hearth';
  const { dataDir } = JSON.parse(readFileSync(join(WEB, 'test-results', '.e2e-server.json'), 'utf8')) as { dataDir: string };
  execFileSync(bin, ['admin', ...args, '--data-dir', dataDir], { cwd: tmpdir(), stdio: 'pipe', env: { ...process.env, RUST_LOG: 'error' } });
}

type Account = ApiAccount;

const account = (prefix: string) => apiAccount(prefix, PASSWORD);

async function community(owner: Account, name: string, joiners: Account[]) {
  const c = await rest<{ id: string }>('POST', '/api/v1/communities', owner.token, { name });
  const channels = await rest<{ id: string; name: string }[]>('GET', `/api/v1/communities/${c.id}/channels`, owner.token);
  const invite = await rest<{ code: string }>('POST', `/api/v1/communities/${c.id}/invites`, owner.token, {});
  for (const j of joiners) await rest('POST', `/api/v1/invites/${invite.code}`, j.token);
  return { id: c.id, general: channels.find((x) => x.name === 'general')!.id };
}

const say = (who: Account, channel: string, content: string) => rest('POST', `/api/v1/channels/${channel}/messages`, who.token, { content });

test('staff take down a community live, are told why an owner cannot be erased, then erase the owner with "remove" everywhere', async ({ browser }) => {
  const boss = uniqueName('boss');
  hearthAdmin(['create-user', '--username', boss, '--password', PASSWORD, '--admin']);
  const owner = await account('own');
  const member = await account('mem');
  const tag = owner.name.slice(-6);
  const doomedName = `Doomed ${tag}`;
  const doomed = await community(owner, doomedName, [member]);
  const keep = await community(member, `Keep ${tag}`, [owner]);
  await say(owner, doomed.general, `doomed words ${tag}`);
  await say(owner, keep.general, `owner in keep ${tag}`);
  await say(member, keep.general, `member in keep ${tag}`);
  const dm = await rest<{ id: string }>('POST', '/api/v1/dms', owner.token, { user_ids: [member.id] });
  await say(owner, dm.id, `owner in dm ${tag}`);
  await say(member, dm.id, `member in dm ${tag}`);

  // The member has the app open on the channel they share with the owner.
  const M = (await tabs.open(browser)).page;
  await login(M, member.name, PASSWORD);
  await M.goto(`/app?c=${keep.id}&ch=${keep.general}`);
  await expect(composer(M)).toBeEditable();
  await expect(message(M, `owner in keep ${tag}`)).toBeVisible();
  const rail = M.getByRole('navigation', { name: 'Communities' });
  await expect(rail.getByRole('button', { name: new RegExp(`^${doomedName}`) })).toBeVisible();

  // Staff open the owner in the Users tab and try to erase them.
  const S = (await tabs.open(browser)).page;
  await login(S, boss, PASSWORD);
  await S.goto('/admin');
  await expect(S.getByRole('tab')).toHaveText(['Overview', 'Users', 'Communities', 'Reports', 'Staff', 'Audit log']);
  await S.getByRole('tab', { name: 'Users' }).click();
  // Never on one's own account.
  await S.getByLabel('Find users').fill(boss);
  await S.getByRole('button', { name: 'Search' }).click();
  await S.getByRole('option', { name: new RegExp(`@${boss}`) }).click();
  await expect(S.getByRole('article', { name: `User @${boss}` })).toContainText("staff can't act on themselves");
  await expect(S.getByRole('button', { name: 'Erase account…' })).toHaveCount(0);
  await S.getByLabel('Find users').fill(owner.name);
  await S.getByRole('button', { name: 'Search' }).click();
  await S.getByRole('option', { name: new RegExp(`@${owner.name}`) }).click();
  const detail = S.getByRole('article', { name: `User @${owner.name}` });
  await detail.getByRole('button', { name: 'Erase account…' }).click();
  let dialog = S.getByRole('dialog', { name: `Erase @${owner.name} for good` });
  await expect(dialog).toContainText('This cannot be undone.');
  const eraseBtn = dialog.getByRole('button', { name: 'Erase account', exact: true });
  await expect(eraseBtn).toBeDisabled();
  await dialog.getByLabel('Type the username').fill(owner.name.toUpperCase());
  await expect(eraseBtn).toBeDisabled();
  await dialog.getByLabel('Type the username').fill(owner.name);
  await expect(eraseBtn).toBeEnabled();
  await eraseBtn.click();
  const owned = dialog.getByRole('alert');
  await expect(owned).toContainText(`@${owner.name} owns a community: “${doomedName}” (${doomed.id}). Nothing was erased`);
  await axeCheck(S, 'erase dialog with the owns_communities refusal');
  // Nothing changed: the owner can still sign in (checked over REST).
  await rest('POST', '/api/v1/auth/login', null, { login: owner.name, password: PASSWORD });

  // "Find in Communities" opens the Communities tab on that community.
  await owned.getByRole('button', { name: 'Find in Communities' }).click();
  await expect(S.getByRole('tab', { name: 'Communities' })).toHaveAttribute('aria-selected', 'true');
  await expect(S.getByLabel('Find communities')).toHaveValue(doomed.id);
  const row = S.getByRole('row', { name: new RegExp(doomedName) });
  await expect(row).toBeVisible();
  await expect(row).toContainText(doomed.id);
  await expect(row).toContainText(`@${owner.name}`);
  await expect(row.locator('[data-count="members"]')).toHaveText('2');

  await axeCheck(S, 'communities tab');
  // Take it down: the confirmation wants the exact name.
  await row.getByRole('button', { name: /Take down/ }).click();
  dialog = S.getByRole('dialog', { name: `Take down “${doomedName}”` });
  await expect(dialog).toContainText('deleted with everything in it');
  const takeBtn = dialog.getByRole('button', { name: 'Take down community' });
  await dialog.getByLabel('Reason').fill('spam operation');
  await dialog.getByLabel('Type the community name').fill(doomedName.toLowerCase());
  await expect(takeBtn).toBeDisabled();
  await dialog.getByLabel('Type the community name').fill(doomedName);
  await takeBtn.click();
  await expect(dialog).toHaveCount(0);
  await expect(S.getByRole('tabpanel').getByRole('status')).toHaveText(`“${doomedName}” (${doomed.id}) was taken down: it is deleted with everything in it.`);
  await expect(S.getByRole('row', { name: new RegExp(doomedName) })).toHaveCount(0);
  // …and it leaves the member's rail at once (COMMUNITY_DELETE), their open channel untouched.
  await expect(rail.getByRole('button', { name: new RegExp(`^${doomedName}`) })).toHaveCount(0);
  await expect(rail.getByRole('button', { name: new RegExp(`^Keep ${tag}`) })).toBeVisible();

  // Now the owner can be erased, messages removed everywhere.
  await S.getByRole('tab', { name: 'Users' }).click();
  await S.getByLabel('Find users').fill(owner.name);
  await S.getByRole('button', { name: 'Search' }).click();
  await S.getByRole('option', { name: new RegExp(`@${owner.name}`) }).click();
  await detail.getByRole('button', { name: 'Erase account…' }).click();
  dialog = S.getByRole('dialog', { name: `Erase @${owner.name} for good` });
  await dialog.getByLabel('Remove them everywhere').check();
  await dialog.getByLabel('Reason').fill('asked to be forgotten');
  await dialog.getByLabel('Type the username').fill(owner.name);
  await dialog.getByRole('button', { name: 'Erase account', exact: true }).click();
  await expect(dialog).toHaveCount(0);
  const erased = S.locator('article.admin-user');
  await expect(erased.getByRole('status')).toHaveText(`@${owner.name} is erased for good: 2 messages deleted, 1 community left.`);
  await expect(erased).toContainText(`@deleted-${owner.id}`);
  await expect(erased).toContainText('Erased');
  await expect(erased).toContainText(`by @${boss}`);
  await expect(erased).toContainText('messages removed everywhere');
  await expect(erased.getByRole('button')).toHaveCount(0);
  await expect(S.getByRole('option', { name: new RegExp(`deleted-${owner.id}`) })).toContainText('erased');
  // The community they were in lists one member fewer (a plain visit lists them all).
  await S.getByRole('tab', { name: 'Communities' }).click();
  await expect(S.getByLabel('Find communities')).toHaveValue('');
  await expect(S.getByRole('row', { name: new RegExp(`Keep ${tag}`) }).locator('[data-count="members"]')).toHaveText('1');

  // The member's open channel loses the owner's message live; their own stays.
  await expect(message(M, `owner in keep ${tag}`)).toHaveCount(0);
  await expect(message(M, `member in keep ${tag}`)).toBeVisible();
  // The DM no longer shows it either.
  await M.goto(`/app?c=@me&ch=${dm.id}`);
  await expect(message(M, `member in dm ${tag}`)).toBeVisible();
  await expect(message(M, `owner in dm ${tag}`)).toHaveCount(0);

  // Signing in as the erased user fails like a wrong password.
  const O = (await tabs.open(browser)).page;
  await O.goto('/login');
  await O.getByLabel('Username or email').fill(owner.name);
  await O.getByLabel('Password').fill(PASSWORD);
  await O.getByRole('button', { name: 'Sign in' }).click();
  await expect(O.getByRole('alert').filter({ hasText: 'Wrong username/email or password.' })).toBeVisible();
  await expect(O).toHaveURL(/\/login/);

  // The instance audit log words the takedown by the community's name.
  await S.getByRole('tab', { name: 'Audit log' }).click();
  await S.getByLabel('Action', { exact: true }).selectOption('admin_community_takedown');
  const entry = S.locator('.audit-entry[data-action="admin_community_takedown"]').filter({ hasText: doomedName }).first();
  await expect(async () => {
    await S.getByRole('button', { name: 'Refresh' }).click();
    await expect(entry).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await expect(entry).toContainText(`@${boss}`);
  await expect(entry).toContainText(`took down community “${doomedName}” (${doomed.id})`);
  await expect(entry).toContainText('Reason: spam operation');
});
