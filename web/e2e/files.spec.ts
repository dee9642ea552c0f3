// Files in the browser against the real server: Alice attaches a PNG and a text file
// with the file picker, watches them finish, sends; Bob sees the image (its BlurHash
// while the preview loads, then the preview itself, decoded: the HttpOnly `hearth_files`
// cookie is what authorises a plain <img>), downloads the text file from its card and
// opens the image in the lightbox (Escape closes it). Then a pasted image and a dropped
// file, a large resumable upload cancelled half-way on a throttled link (Send and Enter
// wait for uploads; the upload is DELETEd, the server then answers 404 for it), an avatar
// cropped in the browser showing in the member list and next to messages, for Alice and
// for Bob; no attach button without ATTACH_FILES; a file over the server's limit refused
// with the limit named (and the next one before it is sent); an upload cut off in transit
// retried; a 20 MiB file sent in resumable chunks and downloaded by Bob byte for byte; a
// chunk whose answer is lost resumed from the server's offset (HEAD); a community icon
// cropped and set by the owner, in the rail for her and (COMMUNITY_UPDATE) for Bob; no
// icon control without MANAGE_COMMUNITY.
// Set-up goes over REST; what is asserted is what people see. Screenshots of each step go
// to test-results/files-*.png.
import { expect, test, type Browser, type Locator, type Page } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { apiAccount, axeCheck, baseUrl, composer, login, message, openCommunityMenu, rest, tabTracker, type ApiAccount } from './helpers';

const PASSWORD = 'correct horse battery';
const tabs = tabTracker();
test.afterEach(async () => {
  await tabs.closeAll();
});

// ---- a real PNG, made here (RGB, 8 bits, no filter) ----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/** A w×h gradient PNG (colours vary so the BlurHash and preview are not flat). */
function png(w: number, h: number, seed = 0): Buffer {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 255) / w;
      raw[o + 1] = (y * 255) / h;
      raw[o + 2] = (seed * 60 + ((x + y) * 255) / (w + h)) % 256;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// ---- the world ----

interface World {
  alice: ApiAccount;
  bob: ApiAccount;
  communityId: string;
  community: string;
  general: string;
}

async function world(): Promise<World> {
  const alice = await apiAccount('fa', PASSWORD);
  const bob = await apiAccount('fb', PASSWORD);
  const community = `Files ${alice.name.slice(-5)}`;
  const c = await rest<{ id: string }>('POST', '/api/v1/communities', alice.token, { name: community });
  const channels = await rest<{ id: string; name: string }[]>('GET', `/api/v1/communities/${c.id}/channels`, alice.token);
  const general = channels.find((x) => x.name === 'general');
  if (!general) throw new Error('no #general');
  const invite = await rest<{ code: string }>('POST', `/api/v1/communities/${c.id}/invites`, alice.token, {});
  await rest('POST', `/api/v1/invites/${invite.code}`, bob.token);
  return { alice, bob, communityId: c.id, community, general: general.id };
}

async function openAs(browser: Browser, who: ApiAccount, w: World): Promise<Page> {
  const { page } = await tabs.open(browser);
  await login(page, who.name, PASSWORD);
  await page.goto(`/app?c=${w.communityId}&ch=${w.general}`);
  await expect(composer(page)).toBeEnabled();
  return page;
}

const tray = (page: Page) => page.getByRole('region', { name: 'Files to send' });
const trayItem = (page: Page, name: string) => tray(page).locator('li.upload').filter({ hasText: name });

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A resumable upload's own URL (PATCH, HEAD, DELETE). */
const isUploadUrl = (url: string) => /\/api\/v1\/uploads\/\d+$/.test(url);

/** Fetches a file in the page (its `hearth_files` cookie authorises it): status, size and SHA-256. */
function fetchInPage(page: Page, url: string) {
  return page.evaluate(async (u) => {
    const res = await fetch(u, { credentials: 'same-origin' });
    const bytes = await res.arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    return { status: res.status, size: bytes.byteLength, sha256: Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('') };
  }, url);
}

/** The community's button in the rail, and its picture when it has one. */
const railIcon = (page: Page, w: World) => page.getByRole('navigation', { name: 'Communities' }).locator(`button[title="${w.community}"] img.rail-icon`);

async function openCommunitySettings(page: Page, w: World): Promise<Locator> {
  await openCommunityMenu(page, w.community);
  await page.getByRole('menuitem', { name: 'Community settings' }).click();
  const dialog = page.getByRole('dialog', { name: `${w.community} settings` });
  await expect(dialog).toBeVisible();
  return dialog;
}

/** Width of a decoded <img>: > 0 only once the bytes arrived and decoded. */
function naturalWidth(img: Locator) {
  return img.evaluate((el: HTMLImageElement) => (el.complete ? el.naturalWidth : 0));
}

test('attach, send, see the preview, download, lightbox', async ({ browser }) => {
  const w = await world();
  const alice = await openAs(browser, w.alice, w);
  const bob = await openAs(browser, w.bob, w);
  // Bob's previews arrive slowly: the BlurHash placeholder must be there meanwhile.
  let releasePreview: () => void = () => undefined;
  const previewHeld = new Promise<void>((r) => (releasePreview = r));
  await bob.route('**/previews/preview.webp', async (route) => {
    await previewHeld;
    await route.continue();
  });

  const picture = png(320, 200);
  await alice.getByRole('button', { name: 'Attach files' }).isVisible();
  await alice.locator('.composer input[type=file]').setInputFiles([
    { name: 'gradient.png', mimeType: 'image/png', buffer: picture },
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello from a file\n') },
  ]);
  await expect(trayItem(alice, 'gradient.png')).toHaveAttribute('data-upload-status', 'done');
  await expect(trayItem(alice, 'notes.txt')).toHaveAttribute('data-upload-status', 'done');
  await expect(tray(alice).getByRole('status')).toHaveText('2 files ready');
  await expect(trayItem(alice, 'gradient.png')).toContainText('uploaded');
  await axeCheck(alice, 'composer with the upload tray');
  await alice.screenshot({ path: 'test-results/files-tray.png' });
  await composer(alice).fill('two files');
  await composer(alice).press('Enter');
  await expect(tray(alice)).toHaveCount(0);

  // Bob: the message with a file card and the image, its BlurHash painted until the preview comes.
  const msg = message(bob, 'two files');
  await expect(msg.locator('.file-card')).toContainText('notes.txt');
  const image = msg.getByRole('button', { name: 'Open image gradient.png' });
  await expect(image).toBeVisible({ timeout: 20_000 });
  await expect(image.locator('canvas.blurhash')).toBeVisible();
  await bob.screenshot({ path: 'test-results/files-blurhash.png' });
  const box = await image.boundingBox();
  expect(Math.round(box!.width)).toBe(320);
  expect(Math.round(box!.height)).toBe(200);
  releasePreview();
  await expect.poll(() => naturalWidth(image.locator('img')), { timeout: 15_000 }).toBeGreaterThan(0);
  await expect(image.locator('canvas.blurhash')).toHaveCount(0);
  await bob.screenshot({ path: 'test-results/files-message.png' });

  // The cookie that makes it work: HttpOnly, on the API path; without it the file is refused.
  const cookies = await bob.context().cookies();
  const files = cookies.find((c) => c.name === 'hearth_files');
  expect(files).toMatchObject({ httpOnly: true, path: '/api/v1', sameSite: 'Strict' });
  const src = await image.locator('img').getAttribute('src');
  expect((await fetch(`${baseUrl()}${src}`)).status).not.toBe(200);

  // The file card downloads the file as it was.
  const [download] = await Promise.all([bob.waitForEvent('download'), msg.getByRole('link', { name: 'Download notes.txt' }).click()]);
  expect(download.suggestedFilename()).toBe('notes.txt');
  expect(readFileSync((await download.path())!, 'utf8')).toBe('hello from a file\n');

  // The lightbox: the original, full size; Escape closes it and focus comes back.
  await image.click();
  const viewer = bob.getByRole('dialog', { name: /^Image gradient\.png/ });
  await expect(viewer).toBeVisible();
  await expect.poll(() => naturalWidth(viewer.locator('img'))).toBe(320);
  await expect(viewer.getByRole('button', { name: 'Close image viewer' })).toBeFocused();
  await axeCheck(bob, 'lightbox');
  await bob.screenshot({ path: 'test-results/files-lightbox.png' });
  await bob.keyboard.press('Escape');
  await expect(viewer).toHaveCount(0);
  await expect(image).toBeFocused();
});

test('paste an image, drop a file, cancel a large upload half-way', async ({ browser }) => {
  const w = await world();
  const alice = await openAs(browser, w.alice, w);

  // Paste: images on the clipboard go into the tray; a files-only message can be sent.
  await composer(alice).evaluate((el, [a, b]) => {
    const data = new DataTransfer();
    for (const [name, b64] of [['pasted.png', a], ['second.png', b]]) data.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type: 'image/png' }));
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, [png(64, 64, 1).toString('base64'), png(96, 48, 3).toString('base64')]);
  await expect(trayItem(alice, 'pasted.png')).toHaveAttribute('data-upload-status', 'done');
  await expect(trayItem(alice, 'second.png')).toHaveAttribute('data-upload-status', 'done');
  await expect(trayItem(alice, 'pasted.png').locator('img.upload-thumb')).toBeVisible();
  await tray(alice).getByRole('button', { name: 'Send' }).click();
  const pasted = alice.locator('article.message').filter({ has: alice.getByRole('button', { name: 'Open image pasted.png' }) });
  await expect(pasted).toHaveCount(1, { timeout: 20_000 });
  await expect.poll(() => naturalWidth(pasted.locator('.attachment-image img').first()), { timeout: 15_000 }).toBeGreaterThan(0);

  // The lightbox goes between the message's images with the arrow keys and keeps focus inside.
  await pasted.getByRole('button', { name: 'Open image pasted.png' }).click();
  await expect(alice.getByRole('dialog', { name: 'Image pasted.png, 1 of 2' })).toBeVisible();
  await alice.keyboard.press('ArrowRight');
  const second = alice.getByRole('dialog', { name: 'Image second.png, 2 of 2' });
  await expect(second).toBeVisible();
  await expect.poll(() => naturalWidth(second.locator('.lightbox-stage img'))).toBe(96);
  for (let i = 0; i < 6; i++) {
    await alice.keyboard.press('Tab');
    expect(await second.evaluate((el) => el.contains(document.activeElement))).toBe(true);
  }
  await second.getByRole('button', { name: 'Previous image' }).click();
  await expect(alice.getByRole('dialog', { name: 'Image pasted.png, 1 of 2' })).toBeVisible();
  await alice.getByRole('button', { name: 'Close image viewer' }).click();
  await expect(alice.getByRole('dialog')).toHaveCount(0);

  // Drop: dragging files over the channel shows where they go; dropping adds them.
  const chat = alice.getByRole('main', { name: '#general' });
  await chat.evaluate((el) => {
    const data = new DataTransfer();
    data.items.add(new File(['dropped text'], 'dropped.txt', { type: 'text/plain' }));
    el.dispatchEvent(new DragEvent('dragenter', { dataTransfer: data, bubbles: true, cancelable: true }));
    (window as unknown as { __drop: DataTransfer }).__drop = data;
  });
  await expect(alice.locator('.drop-overlay')).toContainText('Drop files to send them to #general');
  await alice.screenshot({ path: 'test-results/files-drop.png' });
  await chat.evaluate((el) => {
    const data = (window as unknown as { __drop: DataTransfer }).__drop;
    el.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
  });
  await expect(alice.locator('.drop-overlay')).toHaveCount(0);
  await expect(trayItem(alice, 'dropped.txt')).toHaveAttribute('data-upload-status', 'done');
  await trayItem(alice, 'dropped.txt').getByRole('button', { name: 'Remove dropped.txt' }).click();
  await expect(tray(alice)).toHaveCount(0);

  // Cancel: 9 MiB is over the resumable threshold (8 MiB), so it goes up in chunks
  // (POST /channels/{id}/uploads, then PATCH /uploads/{id}) on a link throttled to 1 MiB/s.
  // Cancelled once the server holds the first chunk: the chunk in flight is aborted, the
  // upload DELETEd (its bytes with it) and the server knows it no more.
  const cdp = await alice.context().newCDPSession(alice);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1024 * 1024 });
  const isUpload = (url: string) => /\/api\/v1\/uploads\/\d+$/.test(url);
  const created = alice.waitForResponse((r) => r.url().endsWith(`/channels/${w.general}/uploads`) && r.request().method() === 'POST');
  const firstChunk = alice.waitForResponse((r) => isUpload(r.url()) && r.request().method() === 'PATCH');
  const failed = alice.waitForEvent('requestfailed', (r) => isUpload(r.url()) && r.method() === 'PATCH');
  const deleted = alice.waitForResponse((r) => isUpload(r.url()) && r.request().method() === 'DELETE');
  const big = Buffer.alloc(9 * 1024 * 1024, 7);
  await alice.locator('.composer input[type=file]').setInputFiles({ name: 'big.bin', mimeType: 'application/octet-stream', buffer: big });
  const bar = tray(alice).getByRole('progressbar', { name: 'Uploading big.bin' });
  await expect(bar).toBeVisible();
  const opened = await created;
  expect(opened.status()).toBe(201);
  const upload = (await opened.json()) as { id: string; size: number };
  expect(upload.size).toBe(big.length);
  // The first chunk is stored (204, the offset moved), the second is on its way.
  const stored = await firstChunk;
  expect(stored.status()).toBe(204);
  const held = Number(stored.headers()['upload-offset']);
  expect(held).toBeGreaterThan(0);
  expect(held).toBeLessThan(big.length);
  expect((await rest<{ offset: number }>('GET', `/api/v1/uploads/${upload.id}`, w.alice.token)).offset).toBe(held);
  await expect.poll(async () => Number(await bar.getAttribute('value')), { timeout: 20_000 }).toBeGreaterThan(Math.floor((held / big.length) * 100));
  expect(Number(await bar.getAttribute('value'))).toBeLessThan(100);
  await alice.screenshot({ path: 'test-results/files-progress.png' });
  // Sending waits for uploads, the button and Enter alike.
  await expect(tray(alice).getByRole('button', { name: 'Send' })).toBeDisabled();
  await composer(alice).fill('not yet');
  await composer(alice).press('Enter');
  await expect(alice.locator('.composer-error')).toContainText('Wait for the uploads to finish, then send.');
  await expect(composer(alice)).toHaveValue('not yet');
  await composer(alice).fill('');
  await tray(alice).getByRole('button', { name: 'Cancel upload of big.bin' }).click();
  await expect(tray(alice)).toHaveCount(0);
  const aborted = await failed;
  expect(aborted.failure()?.errorText).toMatch(/ABORTED/i);
  expect(aborted.url()).toContain(`/api/v1/uploads/${upload.id}`);
  const dropped = await deleted;
  expect(dropped.url()).toContain(`/api/v1/uploads/${upload.id}`);
  expect(dropped.status()).toBe(204);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  // The upload is gone: HEAD (and GET) are 404, and its id can't be sent.
  const head = await fetch(`${baseUrl()}/api/v1/uploads/${upload.id}`, { method: 'HEAD', headers: { Authorization: `Bearer ${w.alice.token}` } });
  expect(head.status).toBe(404);
  await expect(rest('GET', `/api/v1/uploads/${upload.id}`, w.alice.token)).rejects.toThrow(/→ 404/);
  await expect(rest('POST', `/api/v1/channels/${w.general}/messages`, w.alice.token, { content: 'sneaky', attachment_ids: [upload.id] })).rejects.toThrow(/→ 400/);
  // Nothing was sent: the channel holds only the pasted image's message.
  const list = await rest<{ attachments: { filename: string }[] }[]>('GET', `/api/v1/channels/${w.general}/messages?limit=10`, w.alice.token);
  expect(list.map((m) => m.attachments.map((a) => a.filename))).toEqual([['pasted.png', 'second.png']]);
});

test('avatar: upload, crop, and it shows in the member list and beside messages', async ({ browser }) => {
  const w = await world();
  const alice = await openAs(browser, w.alice, w);
  const bob = await openAs(browser, w.bob, w);

  await alice.getByRole('button', { name: 'User settings' }).click();
  const settings = alice.getByRole('dialog', { name: 'User settings' });
  await settings.locator('input[type=file][aria-label="Upload avatar"]').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: png(400, 240, 2) });
  const crop = alice.getByRole('dialog', { name: 'Crop your avatar' });
  await expect(crop).toBeVisible();
  const area = crop.getByRole('group', { name: /^Crop area/ });
  await area.focus();
  await alice.keyboard.press('+');
  await alice.keyboard.press('+');
  await alice.keyboard.press('ArrowLeft');
  await expect(crop.getByRole('slider', { name: 'Zoom' })).toHaveValue('1.2');
  await axeCheck(alice, 'crop dialog');
  await alice.screenshot({ path: 'test-results/files-crop.png' });
  // Escape belongs to the innermost dialog: the crop closes, settings stay.
  await alice.keyboard.press('Escape');
  await expect(crop).toHaveCount(0);
  await expect(settings).toBeVisible();
  await settings.locator('input[type=file][aria-label="Upload avatar"]').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: png(400, 240, 2) });
  await crop.getByRole('group', { name: /^Crop area/ }).focus();
  await alice.keyboard.press('+');
  await crop.getByRole('button', { name: 'Apply' }).click();
  await expect(settings.getByRole('status').filter({ hasText: 'Avatar updated.' })).toBeVisible();
  await expect(crop).toHaveCount(0);

  // The server holds the square the crop cut out: at zoom 1.1 the 240 px short side
  // shows 240 / 1.1 = 218 image pixels.
  const me = await rest<{ avatar_url: string | null }>('GET', '/api/v1/users/@me', w.alice.token);
  expect(me.avatar_url).toMatch(/^\/api\/v1\/attachments\/\d+/);
  const settingsImg = settings.locator('.avatar-editor img.avatar-img');
  await expect.poll(() => naturalWidth(settingsImg)).toBe(218);
  expect(await settingsImg.evaluate((el: HTMLImageElement) => el.naturalHeight)).toBe(218);
  await settings.getByRole('button', { name: 'Close' }).click();

  // Alice's own view: the member list and her messages show the picture.
  await composer(alice).fill('new look');
  await composer(alice).press('Enter');
  const memberImg = alice.getByRole('complementary', { name: 'Members' }).locator('li', { hasText: w.alice.name }).locator('img.avatar-img');
  await expect.poll(() => naturalWidth(memberImg)).toBe(218);
  await expect(memberImg).toHaveAttribute('src', me.avatar_url!);
  const mine = message(alice, 'new look').locator('img.avatar-img');
  await expect.poll(() => naturalWidth(mine)).toBe(218);

  // Bob learns it from her next message's author.
  const theirs = message(bob, 'new look').locator('img.avatar-img');
  await expect(theirs).toHaveAttribute('src', me.avatar_url!);
  await expect.poll(() => naturalWidth(theirs)).toBe(218);
  await bob.screenshot({ path: 'test-results/files-avatar.png' });
});

test('without ATTACH_FILES there is no attach button, and a pasted file is refused in words', async ({ browser }) => {
  const w = await world();
  await rest('PUT', `/api/v1/channels/${w.general}/overwrites/${w.communityId}`, w.alice.token, { target_type: 'role', allow: [], deny: ['ATTACH_FILES'] });
  const bob = await openAs(browser, w.bob, w);
  await expect(bob.getByRole('button', { name: 'Attach files' })).toHaveCount(0);
  await composer(bob).evaluate((el) => {
    const data = new DataTransfer();
    data.items.add(new File(['x'], 'nope.txt', { type: 'text/plain' }));
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  });
  await expect(bob.locator('.composer-error')).toContainText("You can't attach files in this channel.");
  await expect(tray(bob)).toHaveCount(0);
  // Text still goes.
  await composer(bob).fill('words only');
  await composer(bob).press('Enter');
  await expect(message(bob, 'words only')).toHaveCount(1);
  // The owner still may.
  const alice = await openAs(browser, w.alice, w);
  await expect(alice.getByRole('button', { name: 'Attach files' })).toBeVisible();
});

test('a file over the server limit is refused with the limit named, and the next one before it is sent', async ({ browser }) => {
  const w = await world();
  const alice = await openAs(browser, w.alice, w);
  const requests: string[] = [];
  alice.on('request', (r) => {
    if (r.url().includes(`/channels/${w.general}/`) && r.method() === 'POST' && !r.url().endsWith('/messages')) requests.push(r.url());
  });
  const tooBig = Buffer.alloc(25 * 1024 * 1024 + 1, 1);
  await alice.locator('.composer input[type=file]').setInputFiles({ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: tooBig });
  await expect(trayItem(alice, 'huge.bin')).toHaveAttribute('data-upload-status', 'failed', { timeout: 30_000 });
  await expect(trayItem(alice, 'huge.bin')).toContainText('Too large: the limit is 25 MB.');
  // No retry for a refusal; Send stays off until it is removed.
  await expect(trayItem(alice, 'huge.bin').getByRole('button', { name: 'Retry' })).toHaveCount(0);
  await expect(tray(alice).getByRole('button', { name: 'Send' })).toBeDisabled();
  await trayItem(alice, 'huge.bin').getByRole('button', { name: 'Remove huge.bin' }).click();
  const sent = requests.length;
  // Now the limit is known: the next big file is refused at once, nothing sent.
  await alice.locator('.composer input[type=file]').setInputFiles({ name: 'again.bin', mimeType: 'application/octet-stream', buffer: tooBig });
  await expect(trayItem(alice, 'again.bin')).toContainText('Too large: the limit is 25 MB.');
  await expect(trayItem(alice, 'again.bin')).toHaveAttribute('data-upload-status', 'failed');
  expect(requests.length).toBe(sent);
});

test('an upload cut off in transit says so and goes up on Retry', async ({ browser }) => {
  const w = await world();
  const alice = await openAs(browser, w.alice, w);
  let cut = true;
  await alice.route(`**/api/v1/channels/${w.general}/attachments`, async (route) => {
    if (cut) {
      cut = false;
      await route.abort('connectionreset');
    } else await route.continue();
  });
  await alice.locator('.composer input[type=file]').setInputFiles({ name: 'flaky.txt', mimeType: 'text/plain', buffer: Buffer.from('second time lucky') });
  await expect(trayItem(alice, 'flaky.txt')).toHaveAttribute('data-upload-status', 'failed');
  await expect(trayItem(alice, 'flaky.txt')).toContainText('The upload was interrupted. Check your connection and retry.');
  await expect(tray(alice).getByRole('button', { name: 'Send' })).toBeDisabled();
  await trayItem(alice, 'flaky.txt').getByRole('button', { name: 'Retry' }).click();
  await expect(trayItem(alice, 'flaky.txt')).toHaveAttribute('data-upload-status', 'done');
  await tray(alice).getByRole('button', { name: 'Send' }).click();
  const card = alice.locator('article.message .file-card').filter({ hasText: 'flaky.txt' });
  await expect(card).toBeVisible();
  const href = await card.getByRole('link', { name: 'Download flaky.txt' }).getAttribute('href');
  // The same URL, fetched in the page with its cookie, is the file.
  expect(await alice.evaluate(async (u) => (await fetch(u!)).text(), href)).toBe('second time lucky');
});

test('a link becomes a preview card; a video shows its poster frame and length', async ({ browser }) => {
  const w = await world();
  // A site on 127.0.0.2, which this server's unfurler is allowed to reach.
  const picture = png(600, 300, 2);
  const site = createServer((req, res) => {
    if (req.url === '/card.png') {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(picture);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      '<html><head><title>fallback</title><meta property="og:title" content="The Hearth field guide">' +
        '<meta property="og:description" content="Everything about campfires &amp; chat.">' +
        '<meta property="og:site_name" content="Guides"><meta property="og:image" content="/card.png">' +
        '<meta property="og:image:width" content="600"><meta property="og:image:height" content="300"></head><body>hi</body></html>',
    );
  });
  await new Promise<void>((r) => site.listen(0, '127.0.0.2', () => r()));
  const port = (site.address() as AddressInfo).port;
  try {
    const alice = await openAs(browser, w.alice, w);
    const bob = await openAs(browser, w.bob, w);
    const link = `http://127.0.0.2:${port}/guide`;
    await composer(alice).fill(`read this ${link}`);
    await composer(alice).press('Enter');
    const card = message(bob, 'read this').getByRole('article', { name: 'Link preview: The Hearth field guide' });
    await expect(card).toBeVisible({ timeout: 20_000 });
    await expect(card.getByRole('link', { name: 'The Hearth field guide' })).toHaveAttribute('href', link);
    await expect(card).toContainText('Everything about campfires & chat.');
    await expect(card).toContainText('Guides');
    // The image comes from Hearth (stored by the server), never from the site.
    const img = card.locator('img');
    await expect(img).toHaveAttribute('src', /^\/api\/v1\/embeds\//);
    await expect.poll(() => naturalWidth(img), { timeout: 15_000 }).toBeGreaterThan(0);
    await bob.screenshot({ path: 'test-results/files-link-preview.png' });

    // A two-second WebM made by ffmpeg: the server's poster frame and "0:02".
    const dir = mkdtempSync(join(tmpdir(), 'hearth-e2e-'));
    const clip = join(dir, 'clip.webm');
    const made = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '2', '-c:v', 'libvpx', '-b:v', '200k', clip]);
    expect(made.status, 'ffmpeg made a clip (scripts/test.sh installs ffmpeg)').toBe(0);
    await alice.locator('.composer input[type=file]').setInputFiles([{ name: 'clip.webm', mimeType: 'video/webm', buffer: readFileSync(clip) }]);
    await expect(trayItem(alice, 'clip.webm')).toHaveAttribute('data-upload-status', 'done');
    await composer(alice).fill('a clip');
    await composer(alice).press('Enter');
    const video = message(bob, 'a clip').locator('video');
    await expect(video).toHaveAttribute('poster', /\/previews\/preview\.webp$/, { timeout: 20_000 });
    await expect(message(bob, 'a clip')).toContainText('0:02');
  } finally {
    site.close();
  }
});

test('a 20 MiB file goes up in chunks over the resumable route; Bob downloads the same bytes', async ({ browser }) => {
  const w = await world();
  const alice = await openAs(browser, w.alice, w);
  const bob = await openAs(browser, w.bob, w);
  const seen: { method: string; url: string; offset: string | undefined }[] = [];
  alice.on('request', (r) => {
    const url = r.url();
    if (isUploadUrl(url) || url.endsWith(`/channels/${w.general}/uploads`) || url.endsWith(`/channels/${w.general}/attachments`)) seen.push({ method: r.method(), url, offset: r.headers()['upload-offset'] });
  });
  const bytes = randomBytes(20 * 1024 * 1024);
  await alice.locator('.composer input[type=file]').setInputFiles({ name: 'archive.bin', mimeType: 'application/octet-stream', buffer: bytes });
  await expect(trayItem(alice, 'archive.bin')).toHaveAttribute('data-upload-status', 'done', { timeout: 60_000 });

  // One resumable upload, no multipart: the bytes went as PATCHes, in order, from 0, none twice.
  expect(seen.filter((r) => r.url.endsWith('/attachments'))).toEqual([]);
  expect(seen.filter((r) => r.url.endsWith('/uploads')).map((r) => r.method)).toEqual(['POST']);
  const patches = seen.filter((r) => r.method === 'PATCH');
  expect(patches.length).toBeGreaterThanOrEqual(3);
  const offsets = patches.map((r) => Number(r.offset));
  expect(offsets[0]).toBe(0);
  for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBeGreaterThan(offsets[i - 1]);
  expect(offsets[offsets.length - 1]).toBeLessThan(bytes.length);
  expect(new Set(patches.map((r) => r.url)).size).toBe(1);
  // Finished: the upload itself is no more (HEAD 404); its id is the file's.
  const uploadId = patches[0].url.split('/').pop()!;
  expect((await fetch(`${baseUrl()}/api/v1/uploads/${uploadId}`, { method: 'HEAD', headers: { Authorization: `Bearer ${w.alice.token}` } })).status).toBe(404);

  await composer(alice).fill('the archive');
  await composer(alice).press('Enter');
  await expect(tray(alice)).toHaveCount(0);
  const [sent] = await rest<{ attachments: { id: string; filename: string; size: number }[] }[]>('GET', `/api/v1/channels/${w.general}/messages?limit=1`, w.alice.token);
  expect(sent.attachments).toEqual([expect.objectContaining({ id: uploadId, filename: 'archive.bin', size: bytes.length })]);

  // Bob sees the file card with its size, downloads it: the same bytes.
  const card = message(bob, 'the archive').locator('.file-card');
  await expect(card).toContainText('archive.bin', { timeout: 20_000 });
  await expect(card).toContainText('20 MB');
  const [download] = await Promise.all([bob.waitForEvent('download'), card.getByRole('link', { name: 'Download archive.bin' }).click()]);
  expect(download.suggestedFilename()).toBe('archive.bin');
  const got = readFileSync((await download.path())!);
  expect(got.length).toBe(bytes.length);
  expect(sha256(got)).toBe(sha256(bytes));
  // And fetched in his page, with the cookie: the same again.
  const href = await card.getByRole('link', { name: 'Download archive.bin' }).getAttribute('href');
  expect(await fetchInPage(bob, href!)).toEqual({ status: 200, size: bytes.length, sha256: sha256(bytes) });
});

test('a chunk whose answer is lost: the upload asks the server where it got to and carries on from there', async ({ browser }) => {
  const w = await world();
  const alice = await openAs(browser, w.alice, w);
  const log: string[] = [];
  alice.on('request', (r) => {
    if (isUploadUrl(r.url())) log.push(r.method() === 'PATCH' ? `PATCH ${r.headers()['upload-offset']}` : r.method());
  });
  // The second chunk reaches the server (which stores it) but the browser's request is cut:
  // the app never hears the 204, so its own idea of the offset is one chunk behind.
  let patches = 0;
  let lost: { status: number; offset: string | undefined } | null = null;
  await alice.route((url) => isUploadUrl(url.href), async (route) => {
    if (route.request().method() !== 'PATCH' || ++patches !== 2) return route.fallback();
    const answer = await route.fetch();
    lost = { status: answer.status(), offset: answer.headers()['upload-offset'] };
    await route.abort('connectionreset');
  });
  const bytes = randomBytes(12 * 1024 * 1024);
  await alice.locator('.composer input[type=file]').setInputFiles({ name: 'resumed.bin', mimeType: 'application/octet-stream', buffer: bytes });
  await expect(trayItem(alice, 'resumed.bin')).toHaveAttribute('data-upload-status', 'done', { timeout: 60_000 });
  // No "interrupted", no Retry: it resumed by itself.
  await expect(trayItem(alice, 'resumed.bin').getByRole('button', { name: 'Retry' })).toHaveCount(0);
  expect(lost).not.toBeNull();
  expect(lost!.status).toBe(204);
  // PATCH 0, PATCH c (cut), HEAD → 2c, PATCH 2c (the last): never the stored chunk again.
  const c = Number(log[1]?.split(' ')[1]);
  expect(c).toBeGreaterThan(0);
  expect(Number(lost!.offset)).toBe(2 * c);
  expect(log).toEqual(['PATCH 0', `PATCH ${c}`, 'HEAD', `PATCH ${2 * c}`]);

  await tray(alice).getByRole('button', { name: 'Send' }).click();
  const card = alice.locator('article.message .file-card').filter({ hasText: 'resumed.bin' });
  await expect(card).toBeVisible({ timeout: 20_000 });
  const href = await card.getByRole('link', { name: 'Download resumed.bin' }).getAttribute('href');
  expect(await fetchInPage(alice, href!)).toEqual({ status: 200, size: bytes.length, sha256: sha256(bytes) });
});

test('community icon: the owner uploads and crops it; the rail shows it to her and, live, to Bob', async ({ browser }) => {
  const w = await world();
  const alice = await openAs(browser, w.alice, w);
  const bob = await openAs(browser, w.bob, w);
  await expect(railIcon(alice, w)).toHaveCount(0);
  await expect(railIcon(bob, w)).toHaveCount(0);

  const settings = await openCommunitySettings(alice, w);
  await settings.locator('input[type=file][aria-label="Upload icon"]').setInputFiles({ name: 'icon.png', mimeType: 'image/png', buffer: png(400, 240, 4) });
  const crop = alice.getByRole('dialog', { name: 'Crop the community icon' });
  await expect(crop).toBeVisible();
  await crop.getByRole('group', { name: /^Crop area/ }).focus();
  await alice.keyboard.press('+');
  await alice.keyboard.press('ArrowRight');
  await expect(crop.getByRole('slider', { name: 'Zoom' })).toHaveValue('1.1');
  await alice.screenshot({ path: 'test-results/files-icon-crop.png' });
  await crop.getByRole('button', { name: 'Apply' }).click();
  await expect(settings.getByRole('status').filter({ hasText: 'Icon updated.' })).toBeVisible();
  await expect(crop).toHaveCount(0);

  // The server holds the cut square (at zoom 1.1: 240 / 1.1 = 218 px a side).
  const community = await rest<{ icon_url: string | null }>('GET', `/api/v1/communities/${w.communityId}`, w.alice.token);
  expect(community.icon_url).toMatch(/^\/api\/v1\/attachments\/\d+/);
  const preview = settings.getByRole('group', { name: 'Community icon' }).locator('img');
  await expect.poll(() => naturalWidth(preview)).toBe(218);
  // (The file input behind the button carries the same name: the <button> is what people see.)
  await expect(settings.locator('button', { hasText: 'Change icon' })).toBeVisible();
  await settings.getByRole('button', { name: 'Close' }).click();

  // Alice's rail, and Bob's: he learns it from COMMUNITY_UPDATE, without reloading.
  for (const page of [alice, bob]) {
    await expect(railIcon(page, w)).toHaveAttribute('src', community.icon_url!);
    await expect.poll(() => naturalWidth(railIcon(page, w))).toBe(218);
    expect(await railIcon(page, w).evaluate((el: HTMLImageElement) => el.naturalHeight)).toBe(218);
  }
  await bob.screenshot({ path: 'test-results/files-icon-rail.png' });
  // After a reload (READY) it is still there.
  await bob.reload();
  await expect(composer(bob)).toBeEnabled();
  await expect.poll(() => naturalWidth(railIcon(bob, w))).toBe(218);
});

test('without MANAGE_COMMUNITY there is no icon control (and the server refuses the upload)', async ({ browser }) => {
  const w = await world();
  // An icon already set (over REST), so "Remove icon" would show too if it were allowed.
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(png(64, 64, 5))], { type: 'image/png' }), 'icon.png');
  const up = await fetch(`${baseUrl()}/api/v1/communities/${w.communityId}/icon`, { method: 'POST', headers: { Authorization: `Bearer ${w.alice.token}` }, body: form });
  expect(up.status).toBe(201);
  const { id: iconId } = (await up.json()) as { id: string };
  await rest('PATCH', `/api/v1/communities/${w.communityId}`, w.alice.token, { icon_id: iconId });
  // Bob moderates (kicks, manages channels: he gets community settings) but may not manage the community.
  const role = await rest<{ id: string }>('POST', `/api/v1/communities/${w.communityId}/roles`, w.alice.token, { name: 'Mods', permissions: ['KICK_MEMBERS', 'MANAGE_CHANNELS'] });
  await rest('PUT', `/api/v1/communities/${w.communityId}/members/${w.bob.id}/roles/${role.id}`, w.alice.token);

  const bob = await openAs(browser, w.bob, w);
  await expect.poll(() => naturalWidth(railIcon(bob, w))).toBe(64);
  const settings = await openCommunitySettings(bob, w);
  const group = settings.getByRole('group', { name: 'Community icon' });
  await expect(group.locator('img')).toBeVisible();
  await expect(group.getByRole('button')).toHaveCount(0);
  await expect(settings.locator('input[type=file]')).toHaveCount(0);
  await expect(settings.getByRole('button', { name: /icon/i })).toHaveCount(0);
  await bob.screenshot({ path: 'test-results/files-icon-member.png' });
  // The server agrees: his upload is refused, naming the permission.
  const refused = await fetch(`${baseUrl()}/api/v1/communities/${w.communityId}/icon`, { method: 'POST', headers: { Authorization: `Bearer ${w.bob.token}` }, body: form });
  expect(refused.status).toBe(403);
  expect(await refused.text()).toContain('MANAGE_COMMUNITY');

  // The owner, same screen: both controls.
  const alice = await openAs(browser, w.alice, w);
  const hers = (await openCommunitySettings(alice, w)).getByRole('group', { name: 'Community icon' });
  await expect(hers.locator('button', { hasText: 'Change icon' })).toBeEnabled();
  await expect(hers.getByRole('button', { name: 'Remove icon' })).toBeEnabled();
});
