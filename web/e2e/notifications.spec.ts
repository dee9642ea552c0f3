// Notifications in the browser against the real server: Bob mentions Alice while her
// page is open → her bell counts it and the inbox lists it; opening an entry reads it;
// "Mark all read" clears the rest; a channel set to "nothing" and a muted community add
// nothing (the mute shows in the rail and sidebar); account settings persist; the
// service worker is served at /sw.js and shows a push delivered to it.
// Set-up (accounts, community, messages from Bob) goes over REST; what is asserted is
// what Alice sees. That something did *not* notify is shown by a later message that
// does: the server handles one user's messages in order.
import { expect, test, type Browser, type Page } from '@playwright/test';
import { axeCheck, baseUrl, login, openCommunityMenu, rest, shot, tabTracker, apiAccount, type ApiAccount } from './helpers';

const PASSWORD = 'correct horse battery';

const tabs = tabTracker();
test.afterEach(async () => {
  await tabs.closeAll();
});

type Account = ApiAccount;

interface World {
  alice: Account;
  bob: Account;
  community: string;
  communityId: string;
  general: string;
  random: string;
}

const account = (prefix: string) => apiAccount(prefix, PASSWORD);

/** Alice owns a community with #general and #random; Bob joined it. */
async function world(): Promise<World> {
  const alice = await account('na');
  const bob = await account('nb');
  const community = `Notify ${alice.name.slice(-5)}`;
  const c = await rest<{ id: string }>('POST', '/api/v1/communities', alice.token, { name: community });
  const channels = await rest<{ id: string; name: string }[]>('GET', `/api/v1/communities/${c.id}/channels`, alice.token);
  const general = channels.find((x) => x.name === 'general');
  if (!general) throw new Error('no #general');
  const random = await rest<{ id: string }>('POST', `/api/v1/communities/${c.id}/channels`, alice.token, { name: 'random', kind: 'text' });
  const invite = await rest<{ code: string }>('POST', `/api/v1/communities/${c.id}/invites`, alice.token, {});
  await rest('POST', `/api/v1/invites/${invite.code}`, bob.token);
  return { alice, bob, community, communityId: c.id, general: general.id, random: random.id };
}

const post = (who: Account, channelId: string, content: string, extra: Record<string, unknown> = {}) =>
  rest<{ id: string }>('POST', `/api/v1/channels/${channelId}/messages`, who.token, { content, ...extra });

/** Alice, signed in, on `path` of the app. */
async function openAs(browser: Browser, who: Account, path: string): Promise<Page> {
  const { page } = await tabs.open(browser);
  await login(page, who.name, PASSWORD);
  await page.goto(path);
  await expect(page.getByRole('navigation', { name: 'Communities' })).toBeVisible();
  return page;
}

const bell = (page: Page) => page.getByRole('navigation', { name: 'Communities' }).getByRole('button', { name: /^Notifications/ });
const inbox = (page: Page) => page.getByRole('dialog', { name: 'Notifications', exact: true });
const entry = (page: Page, text: string | RegExp) => inbox(page).getByRole('listitem').filter({ hasText: text });

async function openInbox(page: Page) {
  if (!(await inbox(page).isVisible())) await bell(page).click();
  await expect(inbox(page)).toBeVisible();
}

/** The message ids of Alice's notifications, as the server lists them. */
async function notifiedMessageIds(who: Account): Promise<string[]> {
  const page = await rest<{ notifications: { message: { id: string } | null }[] }>('GET', '/api/v1/notifications?limit=100', who.token);
  return page.notifications.map((n) => n.message?.id ?? '');
}

test('a mention while the page is open counts on the bell and lists in the inbox; opening reads it, "Mark all read" clears the rest', async ({ browser }) => {
  const w = await world();
  const mine = await post(w.alice, w.random, 'my own message in random');
  // Alice is on the DM home: no channel is open, so reading one does not read these.
  const A = await openAs(browser, w.alice, '/app?c=@me');
  await expect(bell(A)).toHaveAccessibleName('Notifications');

  const mention = await post(w.bob, w.general, `hey <@${w.alice.id}> look at this`);
  await expect(bell(A)).toHaveAccessibleName('Notifications, 1 unread');
  await expect(A.getByTestId('inbox-badge')).toHaveText('1');

  await openInbox(A);
  const first = entry(A, 'mentioned you');
  await expect(first).toContainText(w.bob.name);
  await expect(first).toContainText(`in #general · ${w.community}`);
  await expect(first).toContainText(`hey @${w.alice.name} look at this`);
  await expect(first).toContainText('Unread:');

  // A reply arrives while the inbox is open: listed on top at once.
  await post(w.bob, w.random, 'replying to you', { reply_to_id: mine.id });
  await expect(bell(A)).toHaveAccessibleName('Notifications, 2 unread');
  const reply = entry(A, 'replied to you');
  await expect(reply).toContainText(`in #random · ${w.community}`);
  await expect(inbox(A).getByRole('listitem').first()).toContainText('replied to you');
  await shot(A, 'notifications-inbox');
  await axeCheck(A, 'notifications inbox');

  // Opening the mention: read, and its channel is shown.
  await first.getByRole('button').click();
  await expect(inbox(A)).toHaveCount(0);
  await expect(A.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  await expect(bell(A)).toHaveAccessibleName('Notifications, 1 unread');
  expect(await notifiedMessageIds(w.alice)).toContain(mention.id);

  // Unread only: the reply is what is left; "Mark all read" clears it.
  await openInbox(A);
  await inbox(A).getByRole('switch', { name: 'Unread only' }).check();
  await expect(inbox(A).getByRole('listitem')).toHaveCount(1);
  await expect(entry(A, 'replied to you')).toBeVisible();
  await inbox(A).getByRole('button', { name: 'Mark all read' }).click();
  await expect(bell(A)).toHaveAccessibleName('Notifications');
  await expect(A.getByTestId('inbox-badge')).toHaveCount(0);
  await expect(entry(A, 'replied to you')).not.toContainText('Unread:');
  await expect(inbox(A).getByRole('button', { name: 'Mark all read' })).toBeDisabled();

  // The server agrees: nothing unread.
  const unread = await rest<{ unread_count: number; notifications: unknown[] }>('GET', '/api/v1/notifications?unread=true', w.alice.token);
  expect(unread.unread_count).toBe(0);
  expect(unread.notifications).toEqual([]);
  // Escape closes the inbox and gives focus back to the bell.
  await A.keyboard.press('Escape');
  await expect(inbox(A)).toHaveCount(0);
  await expect(bell(A)).toBeFocused();

  // A deleted message takes its notification with it (no dispatch says so: the count is re-read).
  const gone = await post(w.bob, w.random, `<@${w.alice.id}> never mind`);
  await expect(bell(A)).toHaveAccessibleName('Notifications, 1 unread');
  await rest('DELETE', `/api/v1/channels/${w.random}/messages/${gone.id}`, w.bob.token);
  await expect(bell(A)).toHaveAccessibleName('Notifications');
});

test('a mention in the channel Alice is reading is read at once; older notifications page in', async ({ browser }) => {
  const w = await world();
  const A = await openAs(browser, w.alice, `/app?c=${w.communityId}&ch=${w.general}`);
  await expect(A.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  // She sees it arrive, so it does not wait for her in the inbox.
  const seen = await post(w.bob, w.general, `<@${w.alice.id}> you are looking at this`);
  await expect(A.locator('article.message').filter({ hasText: 'you are looking at this' })).toBeVisible();
  // 27 more in #random, which she is not reading: two pages (25 a page).
  for (let i = 1; i <= 27; i++) await post(w.bob, w.random, `<@${w.alice.id}> ping ${i}`);
  await expect(bell(A)).toHaveAccessibleName('Notifications, 27 unread');
  await expect(A.getByTestId('inbox-badge')).toHaveText('27');
  await openInbox(A);
  await expect(inbox(A).getByRole('listitem')).toHaveCount(25);
  await expect(inbox(A).getByRole('listitem').first()).toContainText('ping 27');
  await inbox(A).getByRole('button', { name: 'Load older' }).click();
  await expect(inbox(A).getByRole('listitem')).toHaveCount(28);
  await expect(inbox(A).getByRole('button', { name: 'Load older' })).toHaveCount(0);
  await expect(inbox(A).getByRole('listitem').last()).toContainText('you are looking at this');
  await expect(inbox(A).getByRole('listitem').last()).not.toContainText('Unread:');
  const unread = await rest<{ unread_count: number; notifications: { message: { id: string } | null }[] }>('GET', '/api/v1/notifications?unread=true&limit=100', w.alice.token);
  expect(unread.unread_count).toBe(27);
  expect(unread.notifications.map((n) => n.message?.id)).not.toContain(seen.id);
});

test('a channel set to "nothing" adds no notification; reset brings the default back', async ({ browser }) => {
  const w = await world();
  const A = await openAs(browser, w.alice, `/app?c=${w.communityId}&ch=${w.general}`);
  await expect(A.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();

  await A.getByRole('button', { name: 'Notification settings' }).click();
  const dialog = A.getByRole('dialog', { name: 'Notifications: #general' });
  await expect(dialog.getByTestId('notif-now')).toHaveText('Now: Only @mentions and replies (your account default)');
  await dialog.getByLabel('Notify me about').selectOption('nothing');
  await expect(dialog.getByTestId('notif-now')).toHaveText('Now: Nothing (set on this channel)');
  await shot(A, 'notifications-channel-settings');
  await axeCheck(A, 'channel notification settings');
  await A.keyboard.press('Escape');
  const stored = await rest<{ channels: { channel_id: string; level: string | null }[] }>('GET', '/api/v1/users/@me/notification-settings', w.alice.token);
  expect(stored.channels).toContainEqual(expect.objectContaining({ channel_id: w.general, level: 'nothing' }));

  // Away from both channels, so neither is read by looking at it.
  await A.goto('/app?c=@me');
  await expect(bell(A)).toHaveAccessibleName('Notifications');
  const silenced = await post(w.bob, w.general, `<@${w.alice.id}> you will not hear of this`);
  const heard = await post(w.bob, w.random, `<@${w.alice.id}> but of this`);
  await expect(bell(A)).toHaveAccessibleName('Notifications, 1 unread');
  await openInbox(A);
  await expect(inbox(A).getByRole('listitem')).toHaveCount(1);
  await expect(entry(A, 'but of this')).toContainText('#random');
  const ids = await notifiedMessageIds(w.alice);
  expect(ids).toContain(heard.id);
  expect(ids).not.toContain(silenced.id);

  // Back to the default.
  await A.goto(`/app?c=${w.communityId}&ch=${w.general}`);
  await A.getByRole('button', { name: 'Notification settings' }).click();
  await dialog.getByRole('button', { name: 'Reset to default' }).click();
  await expect(dialog.getByTestId('notif-now')).toHaveText('Now: Only @mentions and replies (your account default)');
  await expect(dialog.getByLabel('Notify me about')).toHaveValue('');
});

test('muting a community shows in the rail and sidebar and silences it; DMs still notify; channel mutes show too', async ({ browser }) => {
  const w = await world();
  const A = await openAs(browser, w.alice, `/app?c=${w.communityId}&ch=${w.general}`);
  await expect(A.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  const rail = A.getByRole('navigation', { name: 'Communities' });
  const railIcon = rail.getByRole('button', { name: new RegExp(`^${w.community}`) });
  await expect(railIcon).not.toHaveAccessibleName(/muted/);

  await openCommunityMenu(A, w.community);
  await A.getByRole('menuitem', { name: 'Notification settings' }).click();
  const dialog = A.getByRole('dialog', { name: `Notifications: ${w.community}` });
  await dialog.getByLabel('Mute community').selectOption('1h');
  await expect(dialog.getByRole('status')).toHaveText(/^Muted until /);
  await expect(dialog.getByTestId('notif-now')).toHaveText(/^Now: Muted until .* \(the whole community\)$/);
  await axeCheck(A, 'community notification settings');
  await A.keyboard.press('Escape');

  await expect(railIcon).toHaveAccessibleName(/, muted$/);
  await expect(A.locator('.sidebar-title').getByRole('img', { name: 'muted' })).toBeVisible();
  const randomLink = A.getByRole('link', { name: /^channel random/ });
  await expect(randomLink).toHaveAccessibleName(/, muted$/);
  await expect(randomLink).toHaveClass(/silenced/);
  await expect(A.getByRole('button', { name: 'Notification settings (muted)' })).toBeVisible();
  await shot(A, 'notifications-community-muted');

  // A mention in the muted community: nothing. A DM after it: a notification.
  const silenced = await post(w.bob, w.random, `<@${w.alice.id}> shh`);
  const dm = await rest<{ id: string }>('POST', '/api/v1/dms', w.bob.token, { user_ids: [w.alice.id] });
  const direct = await post(w.bob, dm.id, 'a direct message');
  await expect(bell(A)).toHaveAccessibleName('Notifications, 1 unread');
  await openInbox(A);
  await expect(inbox(A).getByRole('listitem')).toHaveCount(1);
  await expect(entry(A, 'sent you a direct message')).toContainText('a direct message');
  const ids = await notifiedMessageIds(w.alice);
  expect(ids).toContain(direct.id);
  expect(ids).not.toContain(silenced.id);
  await A.keyboard.press('Escape');

  // Unmute: the marks go.
  await openCommunityMenu(A, w.community);
  await A.getByRole('menuitem', { name: 'Notification settings' }).click();
  await dialog.getByRole('button', { name: 'Unmute community' }).click();
  await expect(dialog.getByLabel('Mute community')).toHaveValue('');
  await A.keyboard.press('Escape');
  await expect(railIcon).not.toHaveAccessibleName(/muted/);
  await expect(randomLink).not.toHaveAccessibleName(/muted/);

  // A channel's own mute: dimmed with an icon in the sidebar, until it is lifted.
  await randomLink.click();
  await expect(A.getByRole('heading', { name: 'random', level: 1 })).toBeVisible();
  await A.getByRole('button', { name: 'Notification settings' }).click();
  const chDialog = A.getByRole('dialog', { name: 'Notifications: #random' });
  await chDialog.getByLabel('Mute channel').selectOption('forever');
  await expect(chDialog.getByRole('status')).toHaveText('Muted until you turn it back on');
  await A.keyboard.press('Escape');
  await expect(randomLink).toHaveAccessibleName(/, muted$/);
  await expect(randomLink.locator('.muted-icon')).toBeVisible();
  const stored = await rest<{ channels: { channel_id: string; muted_until: string | null }[] }>('GET', '/api/v1/users/@me/notification-settings', w.alice.token);
  const until = Date.parse(stored.channels.find((c) => c.channel_id === w.random)?.muted_until ?? '');
  expect(until - Date.now()).toBeGreaterThan(360 * 24 * 3600_000);
  await A.getByRole('button', { name: 'Notification settings (muted)' }).click();
  await chDialog.getByRole('button', { name: 'Reset to default' }).click();
  await A.keyboard.press('Escape');
  await expect(randomLink).not.toHaveAccessibleName(/muted/);
});

test('account notification settings are saved and survive a reload', async ({ browser }) => {
  const w = await world();
  const A = await openAs(browser, w.alice, '/app');
  await A.getByRole('button', { name: 'User settings' }).click();
  const section = A.getByRole('region', { name: 'Notifications' });
  const level = section.getByLabel('In communities, notify me about');
  await expect(level).toHaveValue('mentions');
  await level.selectOption('all');
  await expect(section.getByRole('status')).toHaveText('Saved.');
  await section.getByRole('switch', { name: 'Ignore @everyone' }).check();
  await expect(section.getByRole('status')).toHaveText('Saved.');
  await section.getByRole('switch', { name: 'Email me unread mentions while I’m away' }).uncheck();
  await expect(section.getByRole('status')).toHaveText('Saved.');
  await expect(section.getByRole('switch', { name: 'Desktop notifications', exact: true })).toBeVisible();
  await axeCheck(A, 'user settings, notifications');

  await A.reload();
  await A.getByRole('button', { name: 'User settings' }).click();
  await expect(level).toHaveValue('all');
  await expect(section.getByRole('switch', { name: 'Ignore @everyone' })).toBeChecked();
  await expect(section.getByRole('switch', { name: 'Email me unread mentions while I’m away' })).not.toBeChecked();
  const stored = await rest<{ level: string; suppress_everyone: boolean; email_digest: boolean }>('GET', '/api/v1/users/@me/notification-settings', w.alice.token);
  expect(stored).toMatchObject({ level: 'all', suppress_everyone: true, email_digest: false });
});

test('the service worker is served at /sw.js as JavaScript', async () => {
  const res = await fetch(`${baseUrl()}/sw.js`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^(text|application)\/javascript/);
  const text = await res.text();
  expect(text).toContain("addEventListener('push'");
  expect(text).toContain("addEventListener('notificationclick'");
});

test('desktop notifications: the switch registers the service worker, which shows a push delivered to it', async ({ browser }) => {
  const w = await world();
  const { context, page } = await tabs.open(browser);
  await context.grantPermissions(['notifications'], { origin: baseUrl() });
  await login(page, w.alice.name, PASSWORD);
  await page.getByRole('button', { name: 'User settings' }).click();
  const section = page.getByRole('region', { name: 'Notifications' });
  const sw = section.getByRole('switch', { name: 'Desktop notifications', exact: true });
  await expect(sw).toBeEnabled();
  await sw.click();
  // Subscribing needs the browser's push service (for Chromium, Google's, unreachable
  // here): either it worked and the switch is on, or the failure is said in words.
  await expect(async () => {
    const on = await sw.isChecked();
    const alert = await section.getByRole('alert').count();
    expect(on || alert > 0).toBe(true);
  }).toPass({ timeout: 30_000 });
  const scriptUrl = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration('/'))?.active?.scriptURL ?? null);
  expect(scriptUrl).toBe(`${baseUrl()}/sw.js`);

  // Deliver a push straight to the worker (DevTools protocol, as the DevTools "Push"
  // button does), in the payload shape the server sends.
  const cdp = await context.newCDPSession(page);
  const registrationId = new Promise<string>((resolve) => {
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: { registrationId: string; scopeURL: string; isDeleted: boolean }[] }) => {
      const r = e.registrations.find((x) => x.scopeURL === `${baseUrl()}/` && !x.isDeleted);
      if (r) resolve(r.registrationId);
    });
  });
  await cdp.send('ServiceWorker.enable');
  const payload = { notification_id: '1', kind: 'mention', channel_id: w.general, community_id: w.communityId, title: `${w.bob.name} in #general`, body: 'New message', tag: w.general };
  const id = await registrationId;
  const shown = () =>
    page.evaluate(async () => {
      const reg = await navigator.serviceWorker.ready;
      return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, url: (n.data as { url?: string } | null)?.url ?? null }));
    });
  // Once in CI, on a loaded machine, a push delivered this way showed nothing within
  // 10 s (cause not found: the worker may have been starting or stopping), so it is sent
  // again until shown.
  // The tag is the channel's, so a repeat replaces the notification: exactly one shows.
  await expect(async () => {
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: baseUrl(), registrationId: id, data: JSON.stringify(payload) });
    await expect.poll(shown, { timeout: 4000 }).toHaveLength(1);
  }).toPass({ timeout: 20_000 });
  expect(await shown()).toEqual([{ title: payload.title, body: 'New message', tag: w.general, url: `/app?c=${w.communityId}&ch=${w.general}` }]);
});
