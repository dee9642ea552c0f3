// The chat screens, feature by feature, in Chromium against the real server: DMs,
// reactions, pins, replies, mentions, keyboard, typing, moderation, Markdown, settings.
// Set-up (accounts, community, invites) goes over REST; everything asserted is what a
// person sees in the browser.
import { expect, test, type Browser, type Page } from '@playwright/test';
import { baseUrl, composer, login, message, newUserPage, send, uniqueName, rest, tabTracker } from './helpers';

const PASSWORD = 'correct horse battery';

const tabs = tabTracker();
const openTab = (browser: Browser) => tabs.open(browser);
test.afterEach(async () => {
  await tabs.closeAll();
});


interface World {
  owner: string;
  ownerToken: string;
  members: string[];
  community: string;
  communityId: string;
  channelId: string;
}

/** Owner makes a community; `n` members join it through an invite. */
async function world(n: number): Promise<World> {
  const owner = uniqueName('own');
  const ownerToken = (await rest<{ access_token: string }>('POST', '/api/v1/auth/register', null, { username: owner, password: PASSWORD })).access_token;
  const community = `Screens ${owner.slice(-5)}`;
  const c = await rest<{ id: string }>('POST', '/api/v1/communities', ownerToken, { name: community });
  const channels = await rest<{ id: string; name: string }[]>('GET', `/api/v1/communities/${c.id}/channels`, ownerToken);
  const general = channels.find((x) => x.name === 'general');
  if (!general) throw new Error('no #general');
  const invite = await rest<{ code: string }>('POST', `/api/v1/communities/${c.id}/invites`, ownerToken, {});
  const members: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = uniqueName(['bob', 'cat', 'dan'][i] ?? 'mem');
    const t = (await rest<{ access_token: string }>('POST', '/api/v1/auth/register', null, { username: name, password: PASSWORD })).access_token;
    await rest('POST', `/api/v1/invites/${invite.code}`, t);
    members.push(name);
  }
  return { owner, ownerToken, members, community, communityId: c.id, channelId: general.id };
}

/** Signs in and opens #general of the world's community. */
async function open(browser: Browser, w: World, user: string, channelId = w.channelId, channelName = 'general'): Promise<Page> {
  const { page } = await openTab(browser);
  await login(page, user, PASSWORD);
  await page.goto(`/app?c=${w.communityId}&ch=${channelId}`);
  await expect(page.getByRole('heading', { name: channelName, level: 1 })).toBeVisible();
  await expect(composer(page)).toBeEditable();
  return page;
}

const dmRail = (page: Page) => page.getByRole('navigation', { name: 'Communities' }).getByRole('button', { name: /^Direct messages/ });

test('DMs: open a DM from the member list, the other side sees it live; a group DM with two others', async ({ browser }) => {
  const w = await world(2);
  const [bob, cat] = w.members;
  const A = await open(browser, w, w.owner);
  const B = await open(browser, w, bob);
  const C = await open(browser, w, cat);
  // Bob and Cat wait on their DM screens.
  await dmRail(B).click();
  await expect(B.getByRole('heading', { name: 'Direct messages', exact: true })).toBeVisible();
  await dmRail(C).click();
  await expect(C.getByRole('heading', { name: 'Direct messages', exact: true })).toBeVisible();

  // Alice: member list → Bob → Message.
  const members = A.getByRole('complementary', { name: 'Members' });
  await members.getByRole('button', { name: bob }).click();
  await members.getByRole('group', { name: `${bob} profile` }).getByRole('button', { name: 'Message' }).click();
  await expect(A.getByRole('heading', { name: bob, level: 1 })).toBeVisible();
  await send(A, 'psst, just you and me');
  await expect(message(A, 'psst, just you and me')).toBeVisible();

  // Bob sees the conversation appear live under DMs, named after Alice (the
  // live CHANNEL_CREATE carries the participants), and the message in it.
  const bobsDms = B.getByRole('navigation', { name: 'Direct messages' }).getByRole('link');
  await expect(bobsDms).toHaveCount(1);
  await expect(B.getByRole('navigation', { name: 'Direct messages' }).getByRole('link', { name: w.owner })).toBeVisible();
  await bobsDms.click();
  await expect(message(B, 'psst, just you and me')).toBeVisible();
  // After a reload the conversation is named after Alice.
  await B.reload();
  await expect(B.getByRole('navigation', { name: 'Direct messages' }).getByRole('link', { name: w.owner })).toBeVisible();
  await expect(B.getByRole('heading', { name: w.owner, level: 1 })).toBeVisible();
  await expect(message(B, 'psst, just you and me')).toBeVisible();
  // …and a reply arrives live for Alice.
  await send(B, 'got it');
  await expect(message(A, 'got it')).toBeVisible();

  // Group DM: New message → pick Bob and Cat → Create group.
  await dmRail(A).click();
  await A.getByRole('button', { name: 'New message' }).click();
  const dialog = A.getByRole('dialog');
  await dialog.getByRole('checkbox', { name: new RegExp(bob) }).check();
  await dialog.getByRole('checkbox', { name: new RegExp(cat) }).check();
  await dialog.getByRole('button', { name: 'Create group' }).click();
  await expect(dialog).toHaveCount(0);
  await send(A, 'hello group');
  await expect(message(A, 'hello group')).toBeVisible();
  const catsGroup = C.getByRole('navigation', { name: 'Direct messages' }).getByRole('link');
  await expect(catsGroup).toBeVisible();
  await expect(catsGroup).toHaveCount(1);
  await catsGroup.click();
  await expect(message(C, 'hello group')).toBeVisible();
  await send(C, 'cat here');
  await expect(message(A, 'cat here')).toBeVisible();
});

test('reactions: B reacts, A sees the count live, clicking again removes it', async ({ browser }) => {
  const w = await world(1);
  const A = await open(browser, w, w.owner);
  const B = await open(browser, w, w.members[0]);
  await send(A, 'react to this');
  const onB = message(B, 'react to this');
  await expect(onB).toBeVisible();
  await onB.hover();
  await onB.getByRole('button', { name: 'Add reaction' }).click();
  await onB.getByRole('group', { name: 'Pick a reaction' }).getByRole('button').first().click();
  await expect(onB.getByRole('button', { name: /1 reaction, including you/ })).toBeVisible();
  const onA = message(A, 'react to this');
  await expect(onA.getByRole('list', { name: 'Reactions' }).getByRole('button', { name: /1 reaction$/ })).toBeVisible();
  // Bob clicks his reaction again: it is gone on both sides.
  await onB.getByRole('button', { name: /1 reaction, including you/ }).click();
  await expect(onB.getByRole('list', { name: 'Reactions' })).toHaveCount(0);
  await expect(onA.getByRole('list', { name: 'Reactions' })).toHaveCount(0);
});

test('pins: the owner pins a message and the pins view lists it', async ({ browser }) => {
  const w = await world(0);
  const A = await open(browser, w, w.owner);
  await send(A, 'not this one');
  await send(A, 'pin me please');
  const m = message(A, 'pin me please');
  await expect(m).toBeVisible();
  await m.hover();
  await m.getByRole('button', { name: 'Pin message' }).click();
  await expect(m.getByText('Pinned')).toBeVisible();
  await A.getByRole('button', { name: 'Pinned messages' }).click();
  const pins = A.getByRole('region', { name: 'Pinned messages' });
  await expect(pins.getByText('pin me please')).toBeVisible();
  await expect(pins.getByText('not this one')).toHaveCount(0);
});

test('replies: replying shows the reply reference', async ({ browser }) => {
  const w = await world(1);
  const bob = w.members[0];
  const A = await open(browser, w, w.owner);
  const B = await open(browser, w, bob);
  await send(A, 'original question');
  const orig = message(B, 'original question');
  await expect(orig).toBeVisible();
  await orig.hover();
  await orig.getByRole('button', { name: 'Reply' }).click();
  await expect(B.getByText(`Replying to ${w.owner}`)).toBeVisible();
  await send(B, 'the answer');
  await expect(B.getByText(`Replying to ${w.owner}`)).toHaveCount(0);
  for (const page of [A, B]) {
    const reply = message(page, 'the answer');
    await expect(reply).toBeVisible();
    await expect(reply.getByText(`@${w.owner}`)).toBeVisible();
    await expect(reply.getByText('original question')).toBeVisible();
  }
});

test('mentions: @ autocomplete offers the member, renders @name and raises the mention badge', async ({ browser }) => {
  const w = await world(1);
  const bob = w.members[0];
  const other = await rest<{ id: string }>('POST', `/api/v1/communities/${w.communityId}/channels`, w.ownerToken, { name: 'elsewhere', kind: 'text' });
  const A = await open(browser, w, w.owner);
  const B = await open(browser, w, bob, other.id, 'elsewhere');

  await composer(A).pressSequentially(`hey @${bob.slice(0, 4)}`);
  const list = A.getByRole('listbox', { name: 'Mention a member' });
  await expect(list.getByRole('option', { name: new RegExp(bob) })).toBeVisible();
  await list.getByRole('option', { name: new RegExp(bob) }).click();
  await expect(composer(A)).toHaveValue(`hey @${bob} `);
  await composer(A).pressSequentially('look');
  await composer(A).press('Enter');
  const sent = message(A, 'look');
  await expect(sent).toBeVisible();
  await expect(sent.locator('.mention')).toHaveText(`@${bob}`);
  await expect(sent).not.toContainText('<@');

  // Bob, in #elsewhere, sees #general marked with one mention.
  await expect(B.getByRole('link', { name: 'channel general, 1 mention' })).toBeVisible();
  await B.getByRole('link', { name: 'channel general, 1 mention' }).click();
  await expect(message(B, 'look').locator('.mention')).toHaveText(`@${bob}`);
});

test('keyboard: Shift+Enter adds a line, Up edits the last message, Escape cancels', async ({ browser }) => {
  const w = await world(0);
  const A = await open(browser, w, w.owner);
  await composer(A).pressSequentially('line one');
  await composer(A).press('Shift+Enter');
  await composer(A).pressSequentially('line two');
  await expect(composer(A)).toHaveValue('line one\nline two');
  await composer(A).press('Enter');
  const m = message(A, 'line one');
  await expect(m).toBeVisible();
  await expect(composer(A)).toHaveValue('');
  const body = m.locator('.message-body');
  expect(await body.evaluate((el) => (el as HTMLElement).innerText.trim())).toBe('line one\nline two');

  await composer(A).press('ArrowUp');
  const edit = A.getByRole('textbox', { name: 'Edit message', exact: true });
  await expect(edit).toBeVisible();
  await expect(edit).toHaveValue('line one\nline two');
  await edit.fill('changed my mind');
  await edit.press('Escape');
  await expect(edit).toHaveCount(0);
  await expect(message(A, 'changed my mind')).toHaveCount(0);
  await expect(m).not.toContainText('(edited)');
});

test('typing indicator: while B types, A sees "B is typing"', async ({ browser }) => {
  const w = await world(1);
  const bob = w.members[0];
  const A = await open(browser, w, w.owner);
  const B = await open(browser, w, bob);
  await expect(A.getByText(/is typing/)).toHaveCount(0);
  await composer(B).pressSequentially('I am writing some');
  await expect(A.getByText(`${bob} is typing…`)).toBeVisible();
  // Sending ends it (the message arrives, the indicator eventually clears).
  await composer(B).press('Enter');
  await expect(message(A, 'I am writing some')).toBeVisible();
});

test('members: the owner times out, kicks and bans; the member loses access', async ({ browser }) => {
  const w = await world(2);
  const [bob, cat] = w.members;
  const A = await open(browser, w, w.owner);
  const B = await open(browser, w, bob);
  const C = await open(browser, w, cat);
  const rail = (p: Page) => p.getByRole('navigation', { name: 'Communities' }).getByRole('button', { name: new RegExp(`^${w.community}`) });
  await expect(rail(B)).toBeVisible();

  await A.locator('.sidebar-title').filter({ hasText: w.community }).click();
  await A.getByRole('menuitem', { name: 'Community settings' }).click();
  const settings = A.getByRole('dialog');
  await settings.getByRole('tab', { name: 'Members' }).click();
  const row = (name: string) => settings.getByRole('listitem').filter({ hasText: `@${name}` });

  // Time out Bob for 10 minutes: tagged, and his composer is shut.
  await settings.getByLabel(`Time out ${bob}`).selectOption({ label: '10 minutes' });
  await expect(row(bob).getByText('Timed out')).toBeVisible();
  await expect(row(bob).getByRole('button', { name: 'Remove timeout' })).toBeVisible();
  await expect(composer(B)).toHaveAttribute('placeholder', 'You do not have permission to send messages here.');

  // Kick Bob: the community disappears for him.
  await row(bob).getByRole('button', { name: 'Kick' }).click();
  await expect(row(bob)).toHaveCount(0);
  await expect(rail(B)).toHaveCount(0);

  // Ban Cat: gone for her, and still gone after a reload.
  await row(cat).getByRole('button', { name: 'Ban' }).click();
  await expect(row(cat)).toHaveCount(0);
  await expect(rail(C)).toHaveCount(0);
  await C.reload();
  await expect(C.getByRole('navigation', { name: 'Communities' })).toBeVisible();
  await expect(rail(C)).toHaveCount(0);
});

test('markdown: bold, italics, code, code block, link and quote render formatted', async ({ browser }) => {
  const w = await world(0);
  const A = await open(browser, w, w.owner);
  const text = ['**strong words** and *leaning words* and `inline code`', '```', 'block of code', '```', 'see https://example.com/docs', '> quoted wisdom'].join('\n');
  await composer(A).fill(text);
  await composer(A).press('Enter');
  const m = message(A, 'strong words');
  await expect(m).toBeVisible();
  await expect(m.locator('strong')).toHaveText('strong words');
  await expect(m.locator('em')).toHaveText('leaning words');
  await expect(m.locator('code.md-code')).toHaveText('inline code');
  await expect(m.locator('pre code')).toHaveText('block of code');
  await expect(m.getByRole('link', { name: 'https://example.com/docs' })).toHaveAttribute('href', 'https://example.com/docs');
  await expect(m.locator('blockquote')).toHaveText('quoted wisdom');
  const body = m.locator('.message-body');
  for (const marker of ['**', '`', '> ']) await expect(body).not.toContainText(marker);
  await expect(body).not.toContainText(/(^|\s)\*leaning/);
});

test('user settings: a new display name shows on the next message', async ({ browser }) => {
  const w = await world(1);
  const A = await open(browser, w, w.owner);
  const B = await open(browser, w, w.members[0]);
  const nick = `Alice ${w.owner.slice(-4)}`;
  await A.getByRole('button', { name: 'User settings' }).click();
  const dialog = A.getByRole('dialog');
  await dialog.getByLabel('Display name').fill(nick);
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog.getByRole('status').filter({ hasText: 'Saved.' })).toBeVisible();
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(A.getByRole('region', { name: 'Your account' }).getByText(nick)).toBeVisible();
  await send(A, 'now with a name');
  await expect(message(A, 'now with a name').locator('.author')).toHaveText(nick);
  await expect(message(B, 'now with a name').locator('.author')).toHaveText(nick);
});

test('privacy: B blocks A from the member list, A cannot open a DM; unblocked in settings it works; "Nobody" refuses again', async ({ browser }) => {
  const w = await world(1);
  const bob = w.members[0];
  const A = await open(browser, w, w.owner);
  const B = await open(browser, w, bob);
  const messageFrom = async (page: Page, name: string) => {
    const members = page.getByRole('complementary', { name: 'Members' });
    const button = members.getByRole('button', { name });
    // The card stays open after a refused attempt; only open it when closed.
    if ((await button.getAttribute('aria-expanded')) !== 'true') await button.click();
    return members.getByRole('group', { name: `${name} profile` });
  };
  // Bob blocks Alice.
  await (await messageFrom(B, w.owner)).getByRole('button', { name: 'Block' }).click();
  await expect(B.getByText(`${w.owner} is blocked.`)).toBeVisible();
  // Alice's "Message" is refused in words; no DM opens.
  await (await messageFrom(A, bob)).getByRole('button', { name: 'Message' }).click();
  await expect(A.getByText('You cannot open a DM with that user.')).toBeVisible();
  await expect(A.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  // Bob unblocks her in his settings.
  await B.getByRole('button', { name: 'User settings' }).click();
  const settings = B.getByRole('dialog');
  await settings.getByRole('button', { name: `Unblock ${w.owner}` }).click();
  await expect(settings.getByText('You have not blocked anyone.')).toBeVisible();
  // Now the DM opens.
  await (await messageFrom(A, bob)).getByRole('button', { name: 'Message' }).click();
  await expect(A.getByRole('heading', { name: bob, level: 1 })).toBeVisible();
  // Bob allows DMs from nobody: a new attempt is refused.
  await settings.getByLabel('Who can send you direct messages').selectOption('nobody');
  await expect(settings.getByRole('status').filter({ hasText: 'Saved.' })).toBeVisible();
  await A.goto(`/app?c=${w.communityId}&ch=${w.channelId}`);
  await expect(A.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  await (await messageFrom(A, bob)).getByRole('button', { name: 'Message' }).click();
  await expect(A.getByText('You cannot open a DM with that user.')).toBeVisible();
});
