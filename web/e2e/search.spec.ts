// Message search in the browser against the real server: Alice owns a community with
// #general, #random and a #secret that Bob may not see. Bob searches words, a Japanese
// sentence and a snake_case identifier, builds from: and in: filters from the suggestions
// with the keyboard, gets a bad filter named, and never sees #secret's messages. Then the
// jump: a result far back in a long channel opens with the history around it, marked;
// scrolling pages both ways until the window meets the present; "Jump to present" too.
// Set-up goes over REST; what is asserted is what Bob sees. The index is near-real-time
// (about a second), so a search that must find a fresh message is retried.
import { expect, test, type Browser, type Locator, type Page } from '@playwright/test';
import { axeCheck, login, message, rest, send, shot, tabTracker, apiAccount, type ApiAccount } from './helpers';

const PASSWORD = 'correct horse battery';

const tabs = tabTracker();
test.afterEach(async () => {
  await tabs.closeAll();
});

type Account = ApiAccount;

interface World {
  alice: Account;
  bob: Account;
  communityId: string;
  general: string;
  random: string;
  secret: string;
}

const account = (prefix: string) => apiAccount(prefix, PASSWORD);

/** Alice owns the community (#general, #random, #secret hidden from @everyone); Bob joined. */
async function world(): Promise<World> {
  const alice = await account('sa');
  const bob = await account('sb');
  const c = await rest<{ id: string }>('POST', '/api/v1/communities', alice.token, { name: `Search ${alice.name.slice(-5)}` });
  const channels = await rest<{ id: string; name: string }[]>('GET', `/api/v1/communities/${c.id}/channels`, alice.token);
  const general = channels.find((x) => x.name === 'general');
  if (!general) throw new Error('no #general');
  const random = await rest<{ id: string }>('POST', `/api/v1/communities/${c.id}/channels`, alice.token, { name: 'random', kind: 'text' });
  const secret = await rest<{ id: string }>('POST', `/api/v1/communities/${c.id}/channels`, alice.token, { name: 'secret', kind: 'text' });
  await rest('PUT', `/api/v1/channels/${secret.id}/overwrites/${c.id}`, alice.token, { target_type: 'role', allow: [], deny: ['VIEW_CHANNEL'] });
  const invite = await rest<{ code: string }>('POST', `/api/v1/communities/${c.id}/invites`, alice.token, {});
  await rest('POST', `/api/v1/invites/${invite.code}`, bob.token);
  return { alice, bob, communityId: c.id, general: general.id, random: random.id, secret: secret.id };
}

const post = (who: Account, channelId: string, content: string) => rest<{ id: string }>('POST', `/api/v1/channels/${channelId}/messages`, who.token, { content });

async function openAs(browser: Browser, who: Account, path: string): Promise<Page> {
  const { page } = await tabs.open(browser);
  await login(page, who.name, PASSWORD);
  await page.goto(path);
  await expect(page.getByRole('navigation', { name: 'Communities' })).toBeVisible();
  return page;
}

const searchBox = (page: Page) => page.getByRole('combobox', { name: /^Search / });
const panel = (page: Page) => page.getByRole('complementary', { name: 'Search results' });
const count = (page: Page) => panel(page).getByRole('status');
const group = (page: Page, channel: string) => panel(page).getByRole('region', { name: `#${channel}` });
const results = (page: Page) => panel(page).locator('.search-hit');

/**
 * Types `q` and searches until the count reads `expected`: a message sent a moment ago
 * may not be in the index yet, so the search runs again until it is.
 */
async function search(page: Page, q: string, expected: string | RegExp) {
  await expect(async () => {
    await searchBox(page).fill(q);
    await searchBox(page).press('Enter');
    await expect(count(page)).toHaveText(expected, { timeout: 2_000 });
  }).toPass({ timeout: 20_000 });
}

/** The option of the open suggestion list that is picked (aria-activedescendant). */
async function activeOption(box: Locator): Promise<string> {
  const id = await box.getAttribute('aria-activedescendant');
  if (!id) return '';
  return (await box.page().locator(`[id="${id}"]`).textContent()) ?? '';
}

test('search: words, Japanese and identifiers; from: and in: by keyboard; a bad filter named; a hidden channel stays hidden', async ({ browser }) => {
  const w = await world();
  await post(w.alice, w.general, 'the deploy pipeline is green again');
  await post(w.bob, w.general, 'please rename parse_search_query before the release');
  await post(w.bob, w.random, '東京都に住んでいます');
  await post(w.alice, w.random, 'deploy notes for friday');
  await post(w.alice, w.secret, 'deploy the secret launch codes');
  // The owner's search includes #secret: what Bob misses below is hidden, not missing.
  await expect
    .poll(async () => (await rest<{ total: number }>('GET', `/api/v1/communities/${w.communityId}/messages/search?q=deploy`, w.alice.token)).total, { timeout: 15_000 })
    .toBe(3);

  const B = await openAs(browser, w.bob, `/app?c=${w.communityId}&ch=${w.general}`);
  await expect(B.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();

  // Ctrl+K goes to the box, from anywhere.
  await B.locator('.composer textarea').click();
  await B.keyboard.press('Control+k');
  await expect(searchBox(B)).toBeFocused();
  // An empty box offers the filters, none picked (Enter would still search).
  await expect(B.getByRole('listbox', { name: 'Search options' }).getByRole('option')).toHaveCount(8);
  expect(await activeOption(searchBox(B))).toBe('');

  // A word: Bob's two, grouped by channel, the word marked; never #secret's.
  await search(B, 'deploy', '2 results');
  await expect(group(B, 'general')).toContainText('the deploy pipeline is green again');
  await expect(group(B, 'random')).toContainText('deploy notes for friday');
  await expect(group(B, 'general').locator('mark')).toHaveText(['deploy']);
  await expect(group(B, 'secret')).toHaveCount(0);
  await expect(panel(B)).not.toContainText('launch codes');
  await shot(B, 'search-results');
  await axeCheck(B, 'search results');

  // Newest first, then oldest first.
  await panel(B).getByRole('button', { name: 'Newest' }).click();
  await expect(panel(B).getByRole('button', { name: 'Newest' })).toHaveAttribute('aria-pressed', 'true');
  await expect(panel(B).locator('.search-group-title').first()).toHaveText('#random');
  await panel(B).getByRole('button', { name: 'Oldest' }).click();
  await expect(panel(B).locator('.search-group-title').first()).toHaveText('#general');

  // Part of a Japanese sentence, and an identifier whole or by its parts.
  await search(B, '東京', '1 result');
  await expect(results(B)).toContainText('東京都に住んでいます');
  await expect(results(B).locator('mark').first()).toBeVisible();
  await search(B, 'parse_search_query', '1 result');
  await expect(group(B, 'general')).toContainText('parse_search_query');
  await search(B, 'search', '1 result');

  // from: by keyboard: the members as you type, the first picked, Tab takes it.
  const box = searchBox(B);
  await box.fill('');
  await box.pressSequentially('from:');
  const members = B.getByRole('listbox', { name: 'Members' });
  await expect(members.getByRole('option')).toHaveCount(2);
  expect(await activeOption(box)).toContain(w.alice.name);
  await box.pressSequentially(w.bob.name.slice(0, 3));
  await expect(members.getByRole('option')).toHaveCount(1);
  expect(await activeOption(box)).toContain(w.bob.name);
  // Arrows move (and wrap) within the list.
  await box.press('ArrowDown');
  expect(await activeOption(box)).toContain(w.bob.name);
  await box.press('Backspace');
  await box.press('Backspace');
  await box.press('Backspace');
  await expect(members.getByRole('option')).toHaveCount(2);
  await box.press('ArrowDown');
  expect(await activeOption(box)).toContain(w.bob.name);
  await box.press('ArrowUp');
  expect(await activeOption(box)).toContain(w.alice.name);
  await box.press('Tab');
  await expect(box).toHaveValue(`from:${w.alice.name} `);
  await expect(box).toBeFocused();
  await box.pressSequentially('deploy');
  await box.press('Enter');
  await expect(count(B)).toHaveText('2 results');
  await expect(results(B).locator('.author')).toHaveText([w.alice.name, w.alice.name]);

  // in: suggests the channels Bob can see (not #secret); Enter takes one.
  await box.fill('deploy ');
  await box.pressSequentially('in:');
  const channels = B.getByRole('listbox', { name: 'Channels' });
  await expect(channels.getByRole('option')).toHaveText(['#general', '#random']);
  // A name that starts so comes before one that has it inside.
  await box.pressSequentially('ra');
  await expect(channels.getByRole('option')).toHaveText(['#random', '#general']);
  await box.pressSequentially('n');
  await expect(channels.getByRole('option')).toHaveText(['#random']);
  await axeCheck(B, 'search suggestions');
  await box.press('Enter');
  await expect(box).toHaveValue('deploy in:random ');
  await box.press('Enter');
  await expect(count(B)).toHaveText('1 result');
  await expect(results(B)).toContainText('deploy notes for friday');

  // A filter the server does not know: the error names it, at the box and in the panel.
  await box.fill('deploy color:blue');
  await box.press('Enter');
  const boxError = B.locator('.search-box').getByRole('alert');
  await expect(boxError).toContainText('Unknown filter');
  await expect(boxError.locator('code')).toHaveText('color:blue');
  await expect(box).toHaveAttribute('aria-invalid', 'true');
  await expect(panel(B).getByRole('alert')).toContainText('color:blue');
  // Naming a channel Bob cannot see is refused like an unknown one.
  await box.fill('deploy in:secret');
  await box.press('Enter');
  await expect(boxError).toContainText('secret');
  await expect(panel(B)).not.toContainText('launch codes');

  // Escape: first the suggestions, then the results.
  await box.fill('has:');
  await expect(B.getByRole('listbox', { name: 'Has' }).getByRole('option')).toHaveCount(5);
  await box.press('Escape');
  await expect(B.getByRole('listbox', { name: 'Has' })).toBeHidden();
  await box.press('Escape');
  await expect(panel(B)).toHaveCount(0);

  // In a DM, the box searches the DMs.
  const dm = await rest<{ id: string }>('POST', '/api/v1/dms', w.alice.token, { user_ids: [w.bob.id] });
  await post(w.alice, dm.id, 'a pineapple for you');
  await B.goto(`/app?c=@me&ch=${dm.id}`);
  await expect(searchBox(B)).toHaveAccessibleName('Search direct messages');
  await search(B, 'pineapple', '1 result');
  await expect(group(B, w.alice.name)).toHaveCount(0);
  await expect(panel(B).getByRole('region', { name: `@${w.alice.name}` })).toContainText('a pineapple for you');
});

test('a result far back opens with the history around it, marked; scrolling meets the present; "Jump to present"', async ({ browser }) => {
  const w = await world();
  const pad = (n: number) => String(n).padStart(2, '0');
  for (let i = 1; i <= 40; i++) await post(w.alice, w.general, `older filler #${pad(i)}.`);
  const needle = await post(w.alice, w.general, 'the needle in the haystack');
  for (let i = 1; i <= 80; i++) await post(w.alice, w.general, `newer filler #${pad(i)}.`);

  const B = await openAs(browser, w.bob, `/app?c=${w.communityId}&ch=${w.general}`);
  await expect(message(B, 'newer filler #80.')).toBeVisible();
  await expect(message(B, 'the needle in the haystack')).toHaveCount(0);

  await search(B, 'needle', '1 result');
  await results(B).getByRole('button').click();
  const target = message(B, 'the needle in the haystack');
  await expect(target).toBeInViewport();
  await expect(target).toHaveClass(/jump-target/);
  // Its neighbours on both sides are there; the newest page is not.
  await expect(message(B, 'older filler #40.')).toBeVisible();
  await expect(message(B, 'newer filler #01.')).toBeVisible();
  await expect(message(B, 'newer filler #80.')).toHaveCount(0);
  const bar = B.getByRole('status').filter({ hasText: 'You’re viewing older messages' });
  await expect(bar).toBeVisible();
  await shot(B, 'search-jump');
  // The mark fades.
  await expect(target).not.toHaveClass(/jump-target/, { timeout: 6_000 });
  await axeCheck(B, 'jumped to a message');

  // Sent now: not spliced after the gap under the window.
  await post(w.alice, w.general, 'live while you were away');
  await B.waitForTimeout(1_000);
  await expect(message(B, 'live while you were away')).toHaveCount(0);

  const scroller = B.locator('.message-scroller');
  // Up: older pages load until the channel's beginning.
  await expect(async () => {
    await scroller.evaluate((el) => (el.scrollTop = 0));
    await expect(B.getByRole('heading', { name: 'Welcome to #general!' })).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(message(B, 'older filler #01.')).toBeVisible();
  // Down: newer pages load until the window meets the present, which is live again.
  await expect(async () => {
    await scroller.evaluate((el) => (el.scrollTop = el.scrollHeight));
    await expect(message(B, 'live while you were away')).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(bar).toHaveCount(0);
  await expect(message(B, 'newer filler #80.')).toHaveCount(1);
  await expect(message(B, 'live while you were away')).toHaveCount(1);
  await post(w.alice, w.general, 'and one more, live');
  await expect(message(B, 'and one more, live')).toBeVisible();

  // Again: now it is in the loaded history, so the list only scrolls there (no window).
  await results(B).getByRole('button').click();
  await expect(target).toBeInViewport();
  await expect(target).toHaveClass(/jump-target/);
  await expect(bar).toHaveCount(0);
  await B.locator('.jump-bottom').click();
  await expect(message(B, 'and one more, live')).toBeInViewport();

  // After a reload only the newest page is loaded: the jump is a window again, and
  // "Jump to present" goes back.
  await B.reload();
  await expect(message(B, 'and one more, live')).toBeVisible();
  await search(B, 'needle', '1 result');
  await results(B).getByRole('button').click();
  await expect(target).toBeInViewport();
  await expect(bar).toBeVisible();
  await expect(message(B, 'and one more, live')).toHaveCount(0);
  await bar.getByRole('button', { name: 'Jump to present ↓' }).click();
  await expect(bar).toHaveCount(0);
  await expect(message(B, 'and one more, live')).toBeInViewport();
  await expect(target).toHaveCount(0);
  // Live at the bottom: what Bob and Alice send shows up.
  await send(B, 'bob is back in the present');
  await expect(message(B, 'bob is back in the present')).toBeInViewport();
  await post(w.alice, w.general, 'welcome back bob');
  await expect(message(B, 'welcome back bob')).toBeInViewport();

  // A reply to it: its preview goes to the original the same way.
  await rest('POST', `/api/v1/channels/${w.general}/messages`, w.alice.token, { content: 'replying to that old one', reply_to_id: needle.id });
  const reply = message(B, 'replying to that old one');
  await expect(reply).toContainText('Original message was deleted or is not loaded.');
  await reply.getByRole('button', { name: /Original message/ }).click();
  await expect(target).toBeInViewport();
  await expect(target).toHaveClass(/jump-target/);
  await expect(bar).toBeVisible();
});
