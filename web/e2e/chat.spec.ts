// Two people, two browser contexts, one real server: the whole product path.
import { expect, test, type Page } from '@playwright/test';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { axeCheck, composer, login, message, newUserPage, openCommunityMenu, register, send, shot, uniqueName, WEB } from './helpers';


test('two users chat live; edits, deletes, overwrites, reload and sign-out everywhere', async ({ browser }) => {
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');
  const community = `Town ${alice.slice(-5)}`;

  const A = await newUserPage(browser);
  const B = await newUserPage(browser);

  // Sign-up screens (and their accessibility) before anyone is signed in.
  await A.page.goto('/register');
  await shot(A.page, 'register');
  await axeCheck(A.page, 'register');
  await A.page.goto('/login');
  await shot(A.page, 'login');
  await axeCheck(A.page, 'login');

  await register(A.page, alice);
  await register(B.page, bob);

  // Alice creates a community; #general opens.
  await A.page.getByRole('button', { name: 'Create or join a community' }).click();
  await A.page.getByLabel('Community name').fill(community);
  await A.page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(A.page.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();

  // …and an invite.
  await openCommunityMenu(A.page, community);
  await A.page.getByRole('menuitem', { name: 'Invite people' }).click();
  await A.page.getByRole('button', { name: 'Create invite link' }).click();
  const inviteInput = A.page.locator('input[data-invite-code]').first();
  await expect(inviteInput).toBeVisible();
  const link = await inviteInput.inputValue();
  expect(link).toMatch(/\/invite\?code=/);
  await A.page.getByRole('button', { name: 'Close' }).click();

  // Bob follows the link.
  await B.page.goto(link);
  await expect(B.page.getByRole('heading', { name: community })).toBeVisible();
  await shot(B.page, 'invite');
  await axeCheck(B.page, 'invite');
  await B.page.getByRole('button', { name: 'Accept invite' }).click();
  await B.page.waitForURL(/\/app\?c=/);
  await expect(B.page.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();

  // Live both ways.
  await send(A.page, 'hello from **alice**');
  await expect(message(B.page, 'hello from alice')).toBeVisible();
  await expect(message(B.page, 'hello from alice').locator('strong')).toHaveText('alice');
  await send(B.page, `hi <@x> @${alice} welcome`);
  await expect(message(A.page, 'welcome')).toBeVisible();
  await send(B.page, 'second line from bob');
  await expect(message(A.page, 'second line from bob')).toBeVisible();
  // Each message appears exactly once on both sides.
  await expect(message(A.page, 'hello from alice')).toHaveCount(1);
  await expect(message(B.page, 'second line from bob')).toHaveCount(1);

  // Edit (Up in an empty composer edits your last message) shows live for Bob.
  await composer(A.page).click();
  await composer(A.page).press('ArrowUp');
  const edit = A.page.getByLabel('Edit message', { exact: true });
  await expect(edit).toBeVisible();
  await edit.fill('hello from alice, edited');
  await edit.press('Enter');
  await expect(message(B.page, 'hello from alice, edited')).toBeVisible();
  await expect(message(B.page, 'hello from alice, edited')).toContainText('(edited)');

  // Delete shows live for Bob.
  await send(A.page, 'this will be deleted');
  await expect(message(B.page, 'this will be deleted')).toBeVisible();
  const doomed = message(A.page, 'this will be deleted');
  await doomed.hover();
  await doomed.getByRole('button', { name: 'Delete message' }).click();
  await expect(message(B.page, 'this will be deleted')).toHaveCount(0);
  await expect(message(A.page, 'this will be deleted')).toHaveCount(0);

  await shot(A.page, 'app-chat');
  await axeCheck(A.page, 'app');

  // A new channel appears for Bob; hiding it with an @everyone overwrite removes it live.
  await openCommunityMenu(A.page, community);
  await A.page.getByRole('menuitem', { name: 'Create channel' }).click();
  await A.page.getByLabel('Channel name').fill('secret');
  await A.page.getByRole('button', { name: 'Create channel' }).click();
  await expect(A.page.getByRole('heading', { name: 'secret', level: 1 })).toBeVisible();
  const bobSecret = B.page.locator('a[data-channel-name="secret"]');
  await expect(bobSecret).toBeVisible();

  await openCommunityMenu(A.page, community);
  await A.page.getByRole('menuitem', { name: 'Community settings' }).click();
  const settings = A.page.getByRole('dialog');
  await settings.getByRole('tab', { name: 'Roles' }).click();
  await expect(settings.getByRole('option', { name: '@everyone' })).toBeVisible();
  await shot(A.page, 'community-settings-roles');
  await axeCheck(A.page, 'community settings (roles)');
  await settings.getByRole('tab', { name: 'Channels' }).click();
  await settings.getByRole('option', { name: /secret/ }).click();
  await settings.getByLabel('Role or member').selectOption({ label: '@everyone' });
  await settings.getByLabel('deny View channels').check();
  await settings.getByRole('button', { name: 'Save overwrite' }).click();
  await expect(settings.getByText('Permissions saved.')).toBeVisible();
  await shot(A.page, 'community-settings-channels');
  await axeCheck(A.page, 'community settings (channels)');
  await expect(bobSecret).toHaveCount(0);
  // The owner still sees it.
  await settings.getByRole('button', { name: 'Close' }).click();
  await expect(A.page.locator('a[data-channel-name="secret"]')).toBeVisible();

  // A reload keeps everything (session restored from the refresh cookie, history fetched).
  await B.page.reload();
  await expect(B.page.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  await expect(message(B.page, 'hello from alice, edited')).toBeVisible();
  await expect(message(B.page, 'second line from bob')).toBeVisible();
  await expect(message(B.page, 'this will be deleted')).toHaveCount(0);
  await expect(B.page.locator('a[data-channel-name="secret"]')).toHaveCount(0);
  await expect(B.page.getByRole('link', { name: /channel general/ })).toBeVisible();

  // Alice signs in elsewhere; "sign out everywhere" ends that session too.
  const A2 = await newUserPage(browser);
  await login(A2.page, alice);
  await expect(A2.page.getByRole('heading', { name: 'general', level: 1 })).toBeVisible();
  await A.page.getByRole('button', { name: 'User settings' }).click();
  await expect(A.page.getByRole('heading', { name: 'Sessions' })).toBeVisible();
  await expect(A.page.locator('.session-list li')).toHaveCount(2);
  await shot(A.page, 'user-settings');
  await axeCheck(A.page, 'user settings');
  await A.page.getByRole('button', { name: 'Sign out everywhere' }).click();
  await A.page.waitForURL(/\/login/);
  await A2.page.waitForURL(/\/login/, { timeout: 15_000 });
  // And the refresh cookie no longer restores the session.
  await A2.page.goto('/app');
  await A2.page.waitForURL(/\/login/);

  await Promise.all([A.context.close(), A2.context.close(), B.context.close()]);
});

test('sign-in to first channel render is fast', async ({ browser }) => {
  const user = uniqueName('perf');
  const setup = await newUserPage(browser);
  await register(setup.page, user);
  await setup.page.getByRole('button', { name: 'Create or join a community' }).click();
  await setup.page.getByLabel('Community name').fill('Perf');
  await setup.page.getByRole('button', { name: 'Create', exact: true }).click();
  for (let i = 0; i < 30; i++) await send(setup.page, `message ${i}`);
  await expect(message(setup.page, 'message 29')).toBeVisible();
  await setup.context.close();

  const samples: number[] = [];
  const phases: Record<string, number>[] = [];
  for (let run = 0; run < 5; run++) {
    const { context, page } = await newUserPage(browser);
    await page.goto('/login');
    await page.getByLabel('Username or email').fill(user);
    await page.getByLabel('Password').fill('correct horse battery');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(message(page, 'message 29')).toBeVisible();
    const ms = await measure(page);
    samples.push(ms);
    phases.push(await page.evaluate(() => {
      const t = (n: string) => performance.getEntriesByName(n)[0]?.startTime ?? NaN;
      const click = t('hearth:signin-click');
      return { signed_in: Math.round(t('hearth:signed-in') - click), data_loaded: Math.round(t('hearth:data-loaded') - click), first_channel_render: Math.round(t('hearth:first-channel-render') - click) };
    }));
    await context.close();
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  mkdirSync(join(WEB, 'test-results'), { recursive: true });
  const file = join(WEB, 'test-results', 'perf.json');
  const prev = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  writeFileSync(
    file,
    JSON.stringify({ ...prev, metric: 'sign-in click to first channel render', unit: 'ms', target_ms: 300, median_ms: median, samples_ms: samples, phases_ms: phases, load_average: loadavg().map((x) => Math.round(x * 100) / 100), pass: median < 300, measured_at: new Date().toISOString() }, null, 2) + '\n',
  );
  // A benchmark, not a timed test: the figure (target < 300 ms on an idle
  // machine) is recorded in test-results/perf.json and docs/benchmarks.md; the
  // assertion only catches a channel that does not render in reasonable time.
  expect(median).toBeLessThan(3000);
});

async function measure(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      new Promise<number>((resolve, reject) => {
        const t0 = Date.now();
        const tick = () => {
          const click = performance.getEntriesByName('hearth:signin-click')[0];
          const render = performance.getEntriesByName('hearth:first-channel-render')[0];
          if (click && render) return resolve(Math.round(render.startTime - click.startTime));
          if (Date.now() - t0 > 5000) return reject(new Error('performance marks missing'));
          setTimeout(tick, 20);
        };
        tick();
      }),
  );
}
