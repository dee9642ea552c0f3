// Bad input and bad networks, in Chromium against the real server: a broken invite, a
// message over the limit, a 403 after losing a permission, a 429, a server that is down
// and one that is slow. Each shows a sentence a person can act on, and nothing typed is lost.
import { expect, test, type Browser, type Page, type Route, type WebSocketRoute } from '@playwright/test';
import { baseUrl, composer, login, message, newUserPage, uniqueName, rest, tabTracker } from './helpers';

const PASSWORD = 'correct horse battery';

const tabs = tabTracker();
const openTab = (browser: Browser) => tabs.open(browser);
test.afterEach(async () => {
  await tabs.closeAll();
});


async function registerRest(username: string): Promise<string> {
  const r = await rest<{ access_token: string }>('POST', '/api/v1/auth/register', null, { username, password: PASSWORD });
  return r.access_token;
}

interface World {
  ownerToken: string;
  memberToken: string;
  member: string;
  communityId: string;
  channelId: string;
}

/** Owner A makes a community; member B joins it through an invite. All over REST. */
async function world(): Promise<World> {
  const owner = uniqueName('own');
  const member = uniqueName('mem');
  const ownerToken = await registerRest(owner);
  const memberToken = await registerRest(member);
  const community = await rest<{ id: string }>('POST', '/api/v1/communities', ownerToken, { name: `Errs ${owner.slice(-5)}` });
  const channels = await rest<{ id: string; name: string }[]>('GET', `/api/v1/communities/${community.id}/channels`, ownerToken);
  const general = channels.find((c) => c.name === 'general');
  if (!general) throw new Error('no #general');
  const invite = await rest<{ code: string }>('POST', `/api/v1/communities/${community.id}/invites`, ownerToken, {});
  await rest('POST', `/api/v1/invites/${invite.code}`, memberToken);
  return { ownerToken, memberToken, member, communityId: community.id, channelId: general.id };
}

/** What the server holds in the channel with exactly this content. */
async function serverCopies(w: World, content: string): Promise<number> {
  const list = await rest<{ content: string }[]>('GET', `/api/v1/channels/${w.channelId}/messages?limit=100`, w.ownerToken);
  return list.filter((m) => m.content === content).length;
}

/** B signs in in the browser and opens #general. */
async function openAsMember(browser: Browser, w: World): Promise<Page> {
  const { page } = await openTab(browser);
  await login(page, w.member, PASSWORD);
  await page.goto(`/app?c=${w.communityId}&ch=${w.channelId}`);
  await expect(page.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  await expect(composer(page)).toBeEditable();
  return page;
}

const isMessagePost = (w: World) => (url: URL) => url.pathname === `/api/v1/channels/${w.channelId}/messages`;

// ---- the cases ----------------------------------------------------------------------

test('a broken invite link says so in words', async ({ browser }) => {
  const w = await world();
  // Signed in…
  const page = await openAsMember(browser, w);
  await page.goto('/invite?code=doesnotexist');
  await expect(page.getByRole('heading', { name: 'Invite not found' })).toBeVisible();
  await expect(page.getByRole('alert').filter({ hasText: /\S/ })).toHaveText(/This invite is invalid or has expired/);
  await expect(page.getByRole('button', { name: 'Accept invite' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Back to Hearth' })).toBeVisible();

  // …and signed out.
  const anon = await openTab(browser);
  await anon.page.goto('/invite?code=doesnotexist');
  await expect(anon.page.getByRole('alert').filter({ hasText: /\S/ })).toHaveText(/This invite is invalid or has expired/);
  await expect(anon.page.getByRole('link', { name: 'Sign in' })).toBeVisible();
});

test('a message over the limit names the limit and keeps the text', async ({ browser }) => {
  const w = await world();
  const page = await openAsMember(browser, w);
  const long = 'x'.repeat(4001);
  await composer(page).fill(long);
  await composer(page).press('Enter');
  const tooLong = page.getByRole('alert').filter({ hasText: 'too long' });
  await expect(tooLong).toBeVisible();
  await expect(tooLong).toContainText('4000');
  await expect(composer(page)).toHaveValue(long);
  expect(await serverCopies(w, long)).toBe(0);

  // Trimming it to the limit sends it.
  await composer(page).press('End');
  await composer(page).press('Backspace');
  await composer(page).press('Enter');
  await expect(message(page, 'x'.repeat(4000))).toHaveCount(1);
  await expect(tooLong).toHaveCount(0);
  await expect(composer(page)).toHaveValue('');
});

test('a 403 after losing SEND_MESSAGES says so and keeps what was typed', async ({ browser }) => {
  const w = await world();
  const { page } = await openTab(browser);
  // Hold back the tab's news of the permission change (the CHANNEL_UPDATE frame and the
  // overwrites it would re-read) so that Enter really meets the server's 403: the case of
  // a change that hasn't reached this tab yet.
  let holding = false;
  const heldFrames: (() => void)[] = [];
  const heldReads: (() => void)[] = [];
  await page.routeWebSocket('**/api/v1/gateway', (ws) => {
    const server = ws.connectToServer();
    server.onMessage((m) => {
      if (holding && typeof m === 'string' && m.includes('"CHANNEL_UPDATE"')) heldFrames.push(() => ws.send(m));
      else ws.send(m);
    });
  });
  await page.route(
    (url) => url.pathname.endsWith('/overwrites'),
    async (route) => {
      if (holding) await new Promise<void>((r) => heldReads.push(r));
      await route.fallback();
    },
  );
  await login(page, w.member, PASSWORD);
  await page.goto(`/app?c=${w.communityId}&ch=${w.channelId}`);
  await expect(page.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  await page.getByRole('textbox', { name: 'Message #general' }).fill('first, while allowed');
  await composer(page).press('Enter');
  await expect(message(page, 'first, while allowed')).toHaveCount(1);
  await expect(message(page, 'first, while allowed').getByRole('status')).toHaveCount(0);

  const typed = 'typed before the permission went away';
  await composer(page).fill(typed);
  holding = true;
  await rest('PUT', `/api/v1/channels/${w.channelId}/overwrites/${w.communityId}`, w.ownerToken, {
    target_type: 'role',
    allow: [],
    deny: ['SEND_MESSAGES'],
  });
  await composer(page).press('Enter');
  await expect(page.getByRole('alert').filter({ hasText: 'You no longer have permission to send messages in this channel.' })).toBeVisible();
  await expect(composer(page)).toHaveValue(typed);
  await expect(message(page, typed)).toHaveCount(0);
  expect(await serverCopies(w, typed)).toBe(0);

  // The news arrives: the box explains itself and refuses Enter without losing the text.
  holding = false;
  for (const release of heldFrames.splice(0)) release();
  for (const release of heldReads.splice(0)) release();
  const readOnlyNote = page.getByText('You no longer have permission to send messages here. Your text is kept below.');
  await expect(readOnlyNote).toBeVisible();
  await expect(composer(page)).not.toBeEditable();
  await composer(page).press('Enter');
  await expect(composer(page)).toHaveValue(typed);
  expect(await serverCopies(w, typed)).toBe(0);

  // Given back, the kept text goes out once.
  await rest('DELETE', `/api/v1/channels/${w.channelId}/overwrites/${w.communityId}`, w.ownerToken);
  await expect(readOnlyNote).toHaveCount(0);
  await expect(composer(page)).toBeEditable();
  await composer(page).press('Enter');
  await expect(message(page, typed)).toHaveCount(1);
  await expect(composer(page)).toHaveValue('');
  await expect.poll(() => serverCopies(w, typed)).toBe(1);
});

test('a permission lost while the channel is open makes the composer read-only, text kept', async ({ browser }) => {
  const w = await world();
  const page = await openAsMember(browser, w);
  const typed = 'half a thought when the rules changed';
  await composer(page).fill(typed);
  await rest('PUT', `/api/v1/channels/${w.channelId}/overwrites/${w.communityId}`, w.ownerToken, {
    target_type: 'role',
    allow: [],
    deny: ['SEND_MESSAGES'],
  });
  // Live: no Enter needed to find out.
  await expect(page.getByText('You no longer have permission to send messages here. Your text is kept below.')).toBeVisible();
  await expect(composer(page)).toHaveValue(typed);
  await expect(composer(page)).not.toBeEditable();
  // A reload shows the same (the draft lives in memory only, so it is the explanation
  // that must survive here).
  await page.reload();
  await expect(page.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  await expect(page.getByPlaceholder('You do not have permission to send messages here.')).toBeVisible();
  await expect(composer(page)).not.toBeEditable();
});

test('a 429 says slow down, then the message goes out once', async ({ browser }) => {
  const w = await world();
  const page = await openAsMember(browser, w);
  let posts = 0;
  const handler = async (route: Route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    posts++;
    if (posts === 1) {
      return route.fulfill({
        status: 429,
        headers: { 'Retry-After': '3', 'Content-Type': 'application/json' },
        body: JSON.stringify({ error: { code: 'rate_limited', message: 'Too many requests', details: { retry_after_ms: 3000 } } }),
      });
    }
    return route.fallback();
  };
  await page.route(isMessagePost(w), handler);
  const text = 'sent too fast, but not lost';
  await composer(page).fill(text);
  await composer(page).press('Enter');
  await expect(message(page, text)).toHaveCount(1);
  await expect(message(page, text).getByRole('status')).toHaveText(/Slow down, retry in 3s\./);
  await page.unroute(isMessagePost(w), handler);
  // The outbox retries by itself after Retry-After, with the same nonce.
  await expect(message(page, text).getByRole('status')).toHaveCount(0, { timeout: 15_000 });
  await expect(message(page, text)).toHaveCount(1);
  await expect.poll(() => serverCopies(w, text)).toBe(1);
  await page.reload();
  await expect(message(page, text)).toHaveCount(1);
});

test("a server that is down: can't reach it, reconnecting, then the queued message goes out once", async ({ browser }) => {
  const w = await world();
  const { page } = await openTab(browser);
  // The gateway goes through the test so it can be cut: while `down`, open sockets are
  // closed and new ones refused, as when the server process is gone.
  let down = false;
  const sockets = new Set<WebSocketRoute>();
  await page.routeWebSocket('**/api/v1/gateway', (ws) => {
    if (down) {
      void ws.close({ code: 1011, reason: 'server down' });
      return;
    }
    sockets.add(ws);
    ws.connectToServer();
  });
  await login(page, w.member, PASSWORD);
  await page.goto(`/app?c=${w.communityId}&ch=${w.channelId}`);
  await expect(page.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  await expect(composer(page)).toBeEditable();

  // The server goes away: REST is refused and the socket drops.
  const refused = (route: Route) => route.abort('connectionrefused');
  await page.route('**/api/v1/**', refused);
  down = true;
  for (const ws of sockets) await ws.close({ code: 1011, reason: 'server down' });
  sockets.clear();
  await expect(page.getByRole('status').filter({ hasText: 'Reconnecting… Messages you send will go out when the connection is back.' })).toBeVisible();

  const text = 'written while the server was down';
  await composer(page).fill(text);
  await composer(page).press('Enter');
  await expect(composer(page)).toHaveValue('');
  await expect(message(page, text)).toHaveCount(1);
  await expect(message(page, text).getByRole('status')).toHaveText(/Can't reach the server, retrying…/);
  expect(await serverCopies(w, text)).toBe(0);

  // Back up: the socket reconnects and the same nonce goes out: exactly one message.
  down = false;
  await page.unroute('**/api/v1/**', refused);
  await expect(page.getByText('Reconnecting…')).toHaveCount(0, { timeout: 20_000 });
  await expect(message(page, text).getByRole('status')).toHaveCount(0, { timeout: 20_000 });
  await expect(message(page, text)).toHaveCount(1);
  await expect.poll(() => serverCopies(w, text)).toBe(1);
  await page.reload();
  await expect(message(page, text)).toHaveCount(1);
});

test('going offline queues the message; back online it goes out once', async ({ browser }) => {
  const w = await world();
  const { context, page } = await openTab(browser);
  await login(page, w.member, PASSWORD);
  await page.goto(`/app?c=${w.communityId}&ch=${w.channelId}`);
  await expect(page.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  // The browser goes offline (Chromium keeps the open socket, but REST is refused and
  // navigator.onLine is false): the message waits, and says so.
  await context.setOffline(true);
  const text = 'typed while offline';
  await composer(page).fill(text);
  await composer(page).press('Enter');
  await expect(message(page, text)).toHaveCount(1);
  await expect(message(page, text).getByRole('status')).toHaveText(/will send automatically|Can't reach the server/);
  await context.setOffline(false);
  await expect(message(page, text).getByRole('status')).toHaveCount(0, { timeout: 20_000 });
  await expect.poll(() => serverCopies(w, text)).toBe(1);
  await expect(message(page, text)).toHaveCount(1);
});

test('a slow server shows the message as sending, then sent, once', async ({ browser }) => {
  const w = await world();
  const page = await openAsMember(browser, w);
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const slow = async (route: Route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    // A ~3 s answer, and never before the test has looked at the pending state.
    await Promise.all([released, new Promise((r) => setTimeout(r, 3000))]);
    return route.fallback();
  };
  await page.route(isMessagePost(w), slow);
  const text = 'patience is a virtue';
  await composer(page).fill(text);
  await composer(page).press('Enter');
  await expect(composer(page)).toHaveValue('');
  await expect(message(page, text)).toHaveCount(1);
  const sending = message(page, text).getByText('Sending…');
  await expect(sending).toBeVisible();
  release();
  await expect(sending).toHaveCount(0);
  await expect(message(page, text).getByRole('status')).toHaveCount(0);
  await expect(message(page, text)).toHaveCount(1);
  await expect(message(page, text)).not.toHaveClass(/pending/);
  await expect.poll(() => serverCopies(w, text)).toBe(1);
  await page.unroute(isMessagePost(w), slow);
});
