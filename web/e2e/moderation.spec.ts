// Moderation screens in Chromium against the real server: audit log, slowmode and lock,
// reports (with the 409 of a report someone else closed), automod, bulk delete.
// Set-up goes over REST; what is asserted is what people see.
import { expect, test, type Browser, type Page } from '@playwright/test';
import { composer, login, message, openCommunityMenu, rest, send, tabTracker, uniqueName } from './helpers';

const PASSWORD = 'correct horse battery';
const tabs = tabTracker();
test.afterEach(async () => {
  await tabs.closeAll();
});

interface World {
  owner: string;
  ownerToken: string;
  members: { name: string; token: string }[];
  community: string;
  communityId: string;
  channelId: string;
}

async function world(n: number): Promise<World> {
  const owner = uniqueName('mod');
  const ownerToken = (await rest<{ access_token: string }>('POST', '/api/v1/auth/register', null, { username: owner, password: PASSWORD })).access_token;
  const community = `Mod ${owner.slice(-6)}`;
  const c = await rest<{ id: string }>('POST', '/api/v1/communities', ownerToken, { name: community });
  const channels = await rest<{ id: string; name: string }[]>('GET', `/api/v1/communities/${c.id}/channels`, ownerToken);
  const general = channels.find((x) => x.name === 'general')!;
  const invite = await rest<{ code: string }>('POST', `/api/v1/communities/${c.id}/invites`, ownerToken, {});
  const members: World['members'] = [];
  for (let i = 0; i < n; i++) {
    const name = uniqueName(['eve', 'fay'][i] ?? 'mem');
    const token = (await rest<{ access_token: string }>('POST', '/api/v1/auth/register', null, { username: name, password: PASSWORD })).access_token;
    await rest('POST', `/api/v1/invites/${invite.code}`, token);
    members.push({ name, token });
  }
  return { owner, ownerToken, members, community, communityId: c.id, channelId: general.id };
}

async function open(browser: Browser, w: World, user: string): Promise<Page> {
  const { page } = await tabs.open(browser);
  await login(page, user, PASSWORD);
  await page.goto(`/app?c=${w.communityId}&ch=${w.channelId}`);
  await expect(page.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  await expect(composer(page)).toBeEditable();
  return page;
}

async function settingsTab(page: Page, w: World, tab: string) {
  await openCommunityMenu(page, w.community);
  await page.getByRole('menuitem', { name: 'Community settings' }).click();
  const dialog = page.getByRole('dialog', { name: `${w.community} settings` });
  await dialog.getByRole('tab', { name: tab }).click();
  return dialog;
}

test('channel settings: slowmode and lock are audited; a member sees the slowmode countdown and the locked notice', async ({ browser }) => {
  const w = await world(1);
  const [eve] = w.members;
  const A = await open(browser, w, w.owner);
  const settings = await settingsTab(A, w, 'Channels');
  await settings.getByLabel('Slowmode').selectOption({ label: '5 seconds' });
  await settings.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(settings.getByRole('status').filter({ hasText: 'Channel saved.' })).toBeVisible();

  // The audit log shows it (entries are written a moment after the change).
  await settings.getByRole('tab', { name: 'Audit log' }).click();
  const entry = settings.locator('.audit-entry[data-action="channel_update"]').filter({ hasText: '#general' }).first();
  await expect(async () => {
    await settings.getByRole('button', { name: 'Refresh' }).click();
    await expect(entry).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await expect(entry).toContainText(w.owner);
  await expect(entry).toContainText('updated channel');
  await expect(entry.getByRole('row', { name: /slowmode_secs/ })).toContainText(/off\s*→?\s*5s/);
  // Filtering by another action hides it; by this one keeps only channel updates.
  await settings.getByLabel('Action', { exact: true }).selectOption('invite_create');
  await expect(settings.locator('.audit-entry[data-action="invite_create"]').first()).toBeVisible();
  await expect(settings.locator('.audit-entry[data-action="channel_update"]')).toHaveCount(0);
  await settings.getByLabel('Action', { exact: true }).selectOption('channel_update');
  await expect(entry).toBeVisible();
  await expect(settings.locator('.audit-entry:not([data-action="channel_update"])')).toHaveCount(0);
  // By actor: the member did nothing.
  await settings.getByLabel('Who', { exact: true }).selectOption({ label: `${eve.name} (@${eve.name})` });
  await expect(settings.getByText('No entries match these filters.')).toBeVisible();
  await A.keyboard.press('Escape');

  // The member: first message goes, the second is refused with a countdown and kept.
  const E = await open(browser, w, eve.name);
  await expect(E.getByText('Slowmode: one message every 5s.')).toBeVisible();
  await send(E, 'first under slowmode');
  await expect(message(E, 'first under slowmode')).toBeVisible();
  await expect(message(E, 'first under slowmode')).not.toHaveClass(/pending/);
  await send(E, 'second under slowmode');
  const countdown = E.locator('.composer-slowmode');
  await expect(countdown).toHaveText(/You can send again in [1-5]s\./);
  await expect(composer(E)).toHaveValue('second under slowmode');
  await expect(message(E, 'second under slowmode')).toHaveCount(0);
  // Enter during the countdown does nothing; afterwards it sends.
  await composer(E).press('Enter');
  await expect(composer(E)).toHaveValue('second under slowmode');
  await expect(countdown).toBeHidden({ timeout: 8_000 });
  await composer(E).press('Enter');
  await expect(message(E, 'second under slowmode')).toBeVisible();
  await expect(message(A, 'second under slowmode')).toBeVisible();

  // Lock: the member's composer says so at once; the owner still posts.
  const s2 = await settingsTab(A, w, 'Channels');
  await s2.getByRole('switch', { name: /Locked/ }).check();
  await s2.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(s2.getByRole('status').filter({ hasText: 'Channel saved.' })).toBeVisible();
  await A.keyboard.press('Escape');
  await expect(E.getByText('This channel is locked. Only moderators can send messages here.')).toBeVisible();
  await expect(composer(E)).toHaveAttribute('placeholder', 'This channel is locked.');
  await expect(A.getByText(/This channel is locked: members can.t post, you can\./)).toBeVisible();
  await send(A, 'mods only now');
  await expect(message(E, 'mods only now')).toBeVisible();
});

test('reports: a member reports a message and a member; the evidence outlives the deletion; a second handler gets a clear 409', async ({ browser }) => {
  const w = await world(2);
  const [eve, fay] = w.members;
  const sent = await rest<{ id: string }>('POST', `/api/v1/channels/${w.channelId}/messages`, eve.token, { content: 'buy followers at shady.example' });
  const F = await open(browser, w, fay.name);
  const m = message(F, 'buy followers at shady.example');
  await m.hover();
  await m.getByRole('button', { name: 'Report message' }).click();
  const dialog = F.getByRole('dialog', { name: /Report message by/ });
  await expect(dialog.getByRole('radio', { name: /community.s moderators/ })).toBeChecked();
  await dialog.getByLabel('Reason').fill('spam link');
  await dialog.getByRole('button', { name: 'Send report' }).click();
  await expect(F.getByText('Thanks. The moderators will look at your report.')).toBeVisible();
  // …and the author as a member, from the member list.
  const members = F.getByRole('complementary', { name: 'Members' });
  await members.getByRole('button', { name: eve.name }).click();
  await members.getByRole('group', { name: `${eve.name} profile` }).getByRole('button', { name: 'Report' }).click();
  const userDialog = F.getByRole('dialog', { name: `Report ${eve.name}` });
  await userDialog.getByLabel('Reason').fill('keeps spamming');
  await userDialog.getByRole('button', { name: 'Send report' }).click();
  await expect(userDialog).toHaveCount(0);

  // The author deletes the message: the report keeps what was said.
  await rest('DELETE', `/api/v1/channels/${w.channelId}/messages/${sent.id}`, eve.token);

  // Two moderator tabs open the same report.
  const A1 = await open(browser, w, w.owner);
  const A2 = await open(browser, w, w.owner);
  const q1 = await settingsTab(A1, w, 'Reports');
  const q2 = await settingsTab(A2, w, 'Reports');
  for (const q of [q1, q2]) {
    await expect(q.getByRole('option', { name: new RegExp(`User @${eve.name}`) })).toBeVisible();
    await q.getByRole('option', { name: new RegExp(`Message by @${eve.name}`) }).click();
    await expect(q.getByLabel('Evidence')).toHaveText('buy followers at shady.example');
    await expect(q.locator('.report-detail')).toContainText('spam link');
    await expect(q.locator('.report-detail')).toContainText(`Reported by @${fay.name}`);
  }
  await q1.getByLabel('Add a note').fill('deleted by the author; warned them');
  await q1.getByRole('button', { name: 'Mark actioned' }).click();
  await expect(q1.getByRole('status').filter({ hasText: 'Marked as actioned.' })).toBeVisible();
  await expect(q1.locator('.report-detail')).toContainText('deleted by the author; warned them');

  await q2.getByRole('button', { name: 'Dismiss' }).click();
  await expect(q2.getByRole('alert')).toHaveText('Someone else already closed this report (it is now actioned). Showing the latest version.');
  await expect(q2.locator('.report-detail .tag')).toHaveText('actioned');
  await expect(q2.locator('.report-detail')).toContainText('deleted by the author; warned them');
  await expect(q2.getByRole('button', { name: 'Dismiss' })).toHaveCount(0);
  // The open queue no longer lists it; "Actioned" does.
  await expect(q2.getByRole('option', { name: new RegExp(`Message by @${eve.name}`) })).toHaveCount(0);
  await q2.getByLabel('Show').selectOption('actioned');
  await expect(q2.getByRole('option', { name: new RegExp(`Message by @${eve.name}`) })).toBeVisible();
});

test('automod: a rule made in the editor blocks a message with its name; the test box says blocked; bad regexes are shown on their rule', async ({ browser }) => {
  const w = await world(1);
  const [eve] = w.members;
  const A = await open(browser, w, w.owner);
  const s = await settingsTab(A, w, 'Automod');
  await expect(s.getByText('No rules yet.')).toBeVisible();
  await s.getByRole('button', { name: 'Add rule' }).click();
  await s.getByLabel('Rule name').fill('No spam please');
  await s.getByLabel('Keywords').fill('spam, scam*');
  await s.getByLabel('Time the author out for').check();
  await s.getByLabel('Timeout length', { exact: true }).fill('5');
  await s.getByLabel('Timeout length unit').selectOption('min');
  // A second rule with a regex the server refuses.
  await s.getByLabel('New rule type').selectOption('regex');
  await s.getByRole('button', { name: 'Add rule' }).click();
  await s.getByLabel('Rule name').fill('Broken pattern');
  await s.getByLabel('Regular expressions').fill('(unclosed');
  await s.getByRole('button', { name: 'Save rules' }).click();
  await expect(s.locator('.rule-error')).toContainText('Invalid regular expression');
  await expect(s.getByRole('option', { name: /Broken pattern/ })).toHaveClass(/invalid/);
  await s.getByRole('button', { name: 'Delete rule' }).click();
  await expect(s.getByRole('option', { name: /Broken pattern/ })).toHaveCount(0);
  await s.getByRole('button', { name: 'Save rules' }).click();
  await expect(s.getByRole('status').filter({ hasText: 'Rules saved.' })).toBeVisible();
  await expect(s.getByRole('option', { name: /No spam please/ })).toContainText('Keywords: spam, scam* → block, timeout 5 min');

  await s.getByLabel('Message', { exact: true }).fill('total scammer alert');
  await s.getByRole('button', { name: 'Test', exact: true }).click();
  const verdict = s.locator('.verdict');
  await expect(verdict).toHaveAttribute('data-verdict', 'blocked');
  await expect(verdict).toContainText('Blocked by “No spam please”');
  await expect(verdict).toContainText('timed out for 5 min');
  await s.getByLabel('Message', { exact: true }).fill('a perfectly fine message');
  await s.getByRole('button', { name: 'Test', exact: true }).click();
  await expect(verdict).toHaveAttribute('data-verdict', 'allowed');
  await A.keyboard.press('Escape');

  // A member's message is refused with the rule's name, and the text stays in the box.
  const E = await open(browser, w, eve.name);
  await send(E, 'free spam for everyone');
  await expect(E.locator('.composer-error[role="alert"]')).toHaveText(/Your message was blocked by the automod rule “No spam please”\./);
  await expect(composer(E)).toHaveValue('free spam for everyone');
  await expect(message(A, 'free spam for everyone')).toHaveCount(0);
  // The rule's timeout action follows a moment later: the member shows as timed out.
  await expect(E.getByRole('complementary', { name: 'Members' }).getByTitle('Timed out')).toBeVisible();
  // The audit log names the rule that blocked it.
  const log = await settingsTab(A, w, 'Audit log');
  await log.getByLabel('Action', { exact: true }).selectOption('automod_block');
  await expect(async () => {
    await log.getByRole('button', { name: 'Refresh' }).click();
    await expect(log.locator('.audit-entry[data-action="automod_block"]').first()).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await expect(log.locator('.audit-entry[data-action="automod_block"]').first()).toContainText('Automod');
});

test('bulk delete: a moderator picks messages and deletes them in one go; they vanish for another viewer', async ({ browser }) => {
  const w = await world(1);
  const [eve] = w.members;
  for (const t of ['bulk one', 'bulk two', 'bulk three', 'bulk keep']) await rest('POST', `/api/v1/channels/${w.channelId}/messages`, eve.token, { content: t });
  const A = await open(browser, w, w.owner);
  const E = await open(browser, w, eve.name);
  await expect(message(E, 'bulk three')).toBeVisible();
  // Members have no select mode.
  await expect(E.getByRole('button', { name: 'Select messages' })).toHaveCount(0);

  await A.getByRole('button', { name: 'Select messages' }).click();
  const bar = A.getByRole('region', { name: 'Bulk delete' });
  await expect(bar).toContainText('Pick 2 to 100 messages.');
  await message(A, 'bulk one').getByRole('checkbox').check();
  await expect(bar.getByRole('button', { name: /Delete/ })).toBeDisabled();
  await message(A, 'bulk two').getByRole('checkbox').check();
  await message(A, 'bulk three').getByRole('checkbox').check();
  await expect(bar).toContainText('3 selected');
  await bar.getByRole('button', { name: 'Delete 3 messages' }).click();
  await expect(bar).toHaveCount(0);
  for (const t of ['bulk one', 'bulk two', 'bulk three']) {
    await expect(message(A, t)).toHaveCount(0);
    await expect(message(E, t)).toHaveCount(0);
  }
  await expect(message(E, 'bulk keep')).toBeVisible();
  await expect(message(A, 'bulk keep')).toBeVisible();
});
