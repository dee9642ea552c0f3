// Voice and video through the real SFU: two Chromium contexts with fake media join a
// voice channel, decode each other's audio and camera, mute, share a screen, and (a
// second run) do it all through coturn with relay-only ICE.
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { CHROMIUM } from '../playwright.config';
import { baseUrl, login, rest, uniqueName, WEB } from './helpers';

// One retry for these calls: in one CI run (2026-12-04) the SFU forwarded A's camera to B
// for two packets (one keyframe) and then nothing while audio flowed on. One cause of
// missing video was found since (2026-12-06): both cameras go on at once, so the SFU's
// offer of A's camera meets B's own offer (glare), and the SFU forwarded to that leg
// before its next offer was answered, losing the keyframe; B then held frames it could
// not decode until it asked for another (11-15 frames in a 2 s window instead of 40, in 3
// of 18 calls). Fixed in crates/voice (session.rs, `after_negotiation`) and covered by
// the SFU test `a_subscription_made_in_glare_starts_at_a_keyframe`; since then 12 of 12
// calls decoded 40-41 frames in the window. Whether it was that stall is not proven, so
// the retry stays; a retry still fails the suite if the call fails twice in a row.
test.describe.configure({ retries: 1 });

const PASSWORD = 'correct horse battery';

const MEDIA_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
  // Real host addresses instead of mDNS names (the SFU does not resolve .local).
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
  '--auto-select-desktop-capture-source=Entire screen',
  '--enable-usermedia-screen-capturing',
];

let browser: Browser;
test.beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: MEDIA_ARGS });
});
test.afterAll(async () => {
  await browser?.close();
});

// When a call fails, the SFU's own counters say where media stopped: packets received
// from publishers, forwarded, dropped for a subscriber that was not ready, keyframe
// requests sent. (For the stall the retry above is about.)
// eslint-disable-next-line no-empty-pattern
test.afterEach(async ({}, testInfo) => {
  if (testInfo.status === testInfo.expectedStatus) return;
  try {
    const text = await (await fetch(`${baseUrl()}/metrics`)).text();
    const lines = text.split('\n').filter((l) => l.startsWith('hearth_voice_'));
    console.log(`voice metrics after "${testInfo.title}" failed:\n${lines.join('\n')}`);
    await testInfo.attach('voice-metrics', { body: lines.join('\n'), contentType: 'text/plain' });
  } catch (e) {
    console.log(`voice metrics unavailable: ${e}`);
  }
});

interface World {
  ownerToken: string;
  communityId: string;
  voiceId: string;
  owner: string;
  member: string;
}

async function world(): Promise<World> {
  const owner = uniqueName('vown');
  const member = uniqueName('vmem');
  const ownerToken = (await rest<{ access_token: string }>('POST', '/api/v1/auth/register', null, { username: owner, password: PASSWORD })).access_token;
  const memberToken = (await rest<{ access_token: string }>('POST', '/api/v1/auth/register', null, { username: member, password: PASSWORD })).access_token;
  const c = await rest<{ id: string }>('POST', '/api/v1/communities', ownerToken, { name: `Voice ${owner.slice(-5)}` });
  const voice = await rest<{ id: string }>('POST', `/api/v1/communities/${c.id}/channels`, ownerToken, { name: 'Lounge', kind: 'voice' });
  const invite = await rest<{ code: string }>('POST', `/api/v1/communities/${c.id}/invites`, ownerToken, {});
  await rest('POST', `/api/v1/invites/${invite.code}`, memberToken);
  return { ownerToken, communityId: c.id, voiceId: voice.id, owner, member };
}

async function openUser(username: string, relay: boolean): Promise<Page> {
  const context = await browser.newContext({ baseURL: baseUrl(), viewport: { width: 1280, height: 800 } });
  if (relay) await context.addInitScript(() => window.localStorage.setItem('hearth.voice.relay', '1'));
  // VOICE_ALL_CODECS=1: publish with the browser's whole codec list instead of VP8 only.
  if (process.env.VOICE_ALL_CODECS) await context.addInitScript(() => window.localStorage.setItem('hearth.voice.allCodecs', '1'));
  const page = await context.newPage();
  page.on('dialog', (d) => void d.accept());
  if (process.env.VOICE_DEBUG) {
    const tag = username.slice(0, 4);
    page.on('console', (m) => console.log(`[${tag} console] ${m.text()}`));
    page.on('websocket', (ws) => {
      const show = (dir: string) => (f: { payload: string | Buffer }) => {
        const t = String(f.payload);
        if (process.env.VOICE_DEBUG === 'sdp' && /"sdp"/.test(t)) console.log(`[${tag} ${dir} SDP] ${t}`);
        if (/voice|VOICE/.test(t)) console.log(`[${tag} ${dir}] ${t.replace(/"sdp":"[^"]*"/, (x) => `"sdp":<${x.length}>`).slice(0, 300)}`);
      };
      ws.on('framesent', show('>'));
      ws.on('framereceived', show('<'));
    });
  }
  await login(page, username, PASSWORD);
  return page;
}

interface Snap {
  state: string;
  audio: { packets: number; samples: number; concealed: number }[];
  video: { packets: number; frames: number; width: number; keyframes: number; freezes: number; plis: number }[];
  localType: string | null;
  remoteType: string | null;
}

async function snap(page: Page): Promise<Snap | null> {
  return page.evaluate(async () => {
    const v = (window as unknown as { __hearthVoice?: { pc: RTCPeerConnection | null } }).__hearthVoice;
    const pc = v?.pc;
    if (!pc) return null;
    const r = await pc.getStats();
    const out = { state: pc.connectionState, audio: [] as { packets: number; samples: number; concealed: number }[], video: [] as { packets: number; frames: number; width: number; keyframes: number; freezes: number; plis: number }[], localType: null as string | null, remoteType: null as string | null };
    r.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audio.push({ packets: s.packetsReceived ?? 0, samples: s.totalSamplesReceived ?? 0, concealed: s.concealedSamples ?? 0 });
      if (s.type === 'inbound-rtp' && s.kind === 'video') out.video.push({ packets: s.packetsReceived ?? 0, frames: s.framesDecoded ?? 0, width: s.frameWidth ?? 0, keyframes: s.keyFramesDecoded ?? 0, freezes: s.freezeCount ?? 0, plis: s.pliCount ?? 0 });
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = r.get(s.selectedCandidatePairId);
        out.localType = pair ? r.get(pair.localCandidateId)?.candidateType ?? null : null;
        out.remoteType = pair ? r.get(pair.remoteCandidateId)?.candidateType ?? null : null;
      }
    });
    return out;
  });
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const audioSamples = (s: Snap | null) => sum((s?.audio ?? []).map((a) => a.samples));
const audioPackets = (s: Snap | null) => sum((s?.audio ?? []).map((a) => a.packets));
const decodingVideos = (s: Snap | null) => (s?.video ?? []).filter((v) => v.frames > 0).length;

/** Polls until `ok`; returns the time it took. */
async function until(page: Page, what: string, ok: (s: Snap | null) => boolean, timeout = 20_000): Promise<number> {
  const t0 = Date.now();
  let last: Snap | null = null;
  while (Date.now() - t0 < timeout) {
    last = await snap(page);
    if (ok(last)) return Date.now() - t0;
    await page.waitForTimeout(100);
  }
  throw new Error(`${what}: not within ${timeout} ms; last stats ${JSON.stringify(last)}`);
}

/** Both directions grow between two samples `ms` apart. */
async function growth(page: Page, ms = 2000) {
  const a = await snap(page);
  await page.waitForTimeout(ms);
  const b = await snap(page);
  return {
    samples: audioSamples(b) - audioSamples(a),
    packets: audioPackets(b) - audioPackets(a),
    frames: sum((b?.video ?? []).map((v) => v.frames)) - sum((a?.video ?? []).map((v) => v.frames)),
  };
}

/**
 * Audio and video keep flowing on `page`: samples and decoded frames grow within a 2 s
 * window. On a loaded 2-core machine a window can fall inside a wait for a keyframe
 * (a simulcast layer switch, a lost keyframe through the relay), so up to three windows
 * are tried; how many it took is recorded, and the last stats go in the error.
 */
async function flowing(page: Page, name: string) {
  let last: Awaited<ReturnType<typeof growth>> | null = null;
  for (let windows = 1; windows <= 3; windows++) {
    last = await growth(page);
    if (last.samples > 10_000 && last.frames > 5) return { ...last, windows };
  }
  throw new Error(`${name}: audio samples > 10000 and video frames > 5 in none of three 2 s windows; last ${JSON.stringify(last)}, stats ${JSON.stringify(await snap(page))}`);
}

function record(name: string, data: unknown) {
  const file = join(WEB, 'test-results', 'voice.json');
  mkdirSync(join(WEB, 'test-results'), { recursive: true });
  const all = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  all[name] = data;
  writeFileSync(file, JSON.stringify(all, null, 2));
  console.log(`voice ${name}: ${JSON.stringify(data)}`);
}

async function callScenario(relay: boolean) {
  const w = await world();
  const A = await openUser(w.owner, relay);
  const B = await openUser(w.member, relay);
  const metrics: Record<string, unknown> = {};

  // A joins by clicking the voice channel in the sidebar.
  await A.goto(`/app?c=${w.communityId}`);
  const t0 = Date.now();
  await A.getByRole('link', { name: 'voice channel Lounge' }).click();
  await expect(A.getByRole('heading', { name: 'Lounge', level: 1 })).toBeVisible();
  await until(A, 'A connected', (s) => s?.state === 'connected');
  metrics.aConnectMs = Date.now() - t0;
  await expect(A.locator('.voice-members [data-voice-user]')).toHaveCount(1);

  // B opens the channel and uses the Join button.
  await B.goto(`/app?c=${w.communityId}&ch=${w.voiceId}`);
  await expect(B.locator('.voice-members [data-voice-user]')).toHaveCount(1);
  const t1 = Date.now();
  await B.getByRole('button', { name: 'Join voice' }).click();
  metrics.bFirstAudioDecodedMs = await until(B, "B decodes A's audio", (s) => audioSamples(s) > 0);
  metrics.bJoinToFirstAudioMs = Date.now() - t1;
  await until(A, "A decodes B's audio", (s) => audioSamples(s) > 0);
  await expect(A.locator('.voice-members [data-voice-user]')).toHaveCount(2);
  await expect(B.locator('.voice-members [data-voice-user]')).toHaveCount(2);

  // Cameras on (simulcast): each decodes the other's video.
  await A.getByRole('button', { name: 'Turn camera on' }).click();
  await B.getByRole('button', { name: 'Turn camera on' }).click();
  const t2 = Date.now();
  await until(B, "B decodes A's camera", (s) => decodingVideos(s) >= 1);
  await until(A, "A decodes B's camera", (s) => decodingVideos(s) >= 1);
  metrics.cameraToFirstFrameMs = Date.now() - t2;
  for (const [name, p] of [['A', A], ['B', B]] as const) {
    metrics[`${name}growth`] = await flowing(p, name);
  }
  // The remote camera shows in a tile.
  await expect(B.locator(`.voice-tile video`).first()).toBeVisible();

  // Mute: the SFU stops forwarding A's audio to B; unmute resumes it.
  await A.locator('.voice-footer').getByRole('button', { name: 'Mute', exact: true }).click();
  await expect(B.locator('.voice-members [data-voice-user][aria-label*="muted"]')).toHaveCount(1);
  await B.waitForTimeout(500);
  const muted = await growth(B, 2000);
  expect(muted.packets, 'no audio packets reach B while A is muted').toBeLessThanOrEqual(2);
  metrics.mutedPacketsIn2s = muted.packets;
  await A.locator('.voice-footer').getByRole('button', { name: 'Unmute' }).click();
  await until(B, 'audio after unmute', () => true);
  await B.waitForTimeout(800);
  const unmuted = await growth(B, 1500);
  expect(unmuted.packets, 'audio flows again after unmute').toBeGreaterThan(20);

  // Screen share from A arrives at B as a second decoded video.
  await A.getByRole('button', { name: 'Share your screen' }).click();
  let screenVia = 'getDisplayMedia';
  try {
    await expect.poll(() => A.evaluate(() => (window as unknown as { __hearthVoice: { state: () => { screen: boolean } } }).__hearthVoice.state().screen), { timeout: 5000 }).toBe(true);
  } catch {
    // Headless Chromium without a capture source: publish a canvas as the screen.
    screenVia = 'canvas.captureStream';
    await A.evaluate(() => {
      const c = document.createElement('canvas');
      c.width = 640;
      c.height = 360;
      const g = c.getContext('2d')!;
      let n = 0;
      setInterval(() => {
        g.fillStyle = `hsl(${n++ % 360} 70% 50%)`;
        g.fillRect(0, 0, 640, 360);
        g.fillStyle = '#fff';
        g.fillText(String(n), 20, 20);
      }, 50);
      const t = c.captureStream(15).getVideoTracks()[0];
      void (window as unknown as { __hearthVoice: { call: { toggleScreen(t: MediaStreamTrack): Promise<void> } } }).__hearthVoice.call.toggleScreen(t);
    });
  }
  metrics.screenVia = screenVia;
  const t3 = Date.now();
  await until(B, "B decodes A's screen", (s) => decodingVideos(s) >= 2);
  metrics.screenToFirstFrameMs = Date.now() - t3;
  await expect(B.locator('.voice-members [data-voice-user] .live-badge')).toHaveCount(1);
  await expect(B.locator('[data-tile$="-screen"]')).toHaveCount(1);

  // Camera off and on again (the same transceiver, renegotiated both times).
  const aId = await A.evaluate(() => (window as unknown as { __hearthVoice: { call: { pcUser?: string } } }).__hearthVoice && document.querySelector('.voice-members [data-voice-user] .live-badge')?.closest('[data-voice-user]')?.getAttribute('data-voice-user'));
  expect(aId).toBeTruthy();
  await A.getByRole('button', { name: 'Turn camera off' }).click();
  await expect(B.locator(`[data-tile="${aId}"] video`)).toHaveCount(0);
  const camOff = await growth(B, 1500);
  await A.getByRole('button', { name: 'Turn camera on' }).click();
  await expect(B.locator(`[data-tile="${aId}"] video`)).toHaveCount(1);
  await B.waitForTimeout(1000);
  const camOn = await growth(B, 1500);
  metrics.framesIn1500msCamOffOn = [camOff.frames, camOn.frames];
  expect(camOn.frames, 'A camera decoded again after off/on').toBeGreaterThan(camOff.frames + 5);

  // Speaker view asks for the spotlight's high layer and shows it big.
  await B.getByRole('button', { name: 'Speaker view' }).click();
  await expect(B.locator('.voice-spotlight .voice-tile')).toHaveCount(1);
  await B.screenshot({ path: join(WEB, 'test-results', `voice-${relay ? 'relay' : 'direct'}-speaker.png`) });
  // Layers (recorded, not asserted: which simulcast layers run depends on the bandwidth
  // estimate): A's camera as a thumbnail (low), in the grid (medium), in the spotlight (high).
  const widths = async () => (await snap(B))?.video.map((v) => v.width) ?? [];
  await B.waitForTimeout(2000);
  const layerWidths: Record<string, number[]> = { thumbnail: await widths() };
  await B.getByRole('button', { name: 'Grid view' }).click();
  await B.screenshot({ path: join(WEB, 'test-results', `voice-${relay ? 'relay' : 'direct'}-grid.png`) });
  await B.waitForTimeout(2000);
  layerWidths.grid = await widths();
  await B.locator(`[data-tile="${aId}"]`).click();
  await B.waitForTimeout(2000);
  layerWidths.spotlight = await widths();
  metrics.inboundVideoWidths = layerWidths;
  if (!relay) {
    // voice_layer reaches the SFU: the camera arrives smaller as a thumbnail than in the spotlight.
    expect(Math.min(...layerWidths.thumbnail), `layers ${JSON.stringify(layerWidths)}`).toBeLessThan(Math.min(...layerWidths.spotlight));
  }
  await expect(B.locator('.voice-spotlight .voice-tile')).toHaveCount(1);

  if (relay) {
    const a = await snap(A);
    const b = await snap(B);
    expect(a?.localType, 'A goes through the TURN relay').toBe('relay');
    expect(b?.localType, 'B goes through the TURN relay').toBe('relay');
    metrics.candidateTypes = { A: a?.localType, B: b?.localType };
  }
  // Connection quality indicator.
  await expect(A.locator('.quality[data-quality="good"]').first()).toBeVisible({ timeout: 6000 });

  // Leaving clears the call for the other side too.
  await A.getByRole('button', { name: 'Leave call' }).first().click();
  await expect(B.locator('.voice-members [data-voice-user]')).toHaveCount(1);
  await expect(B.locator('[data-tile$="-screen"]')).toHaveCount(0);
  await B.getByRole('button', { name: 'Leave call' }).first().click();
  await expect(A.locator('.voice-members [data-voice-user]')).toHaveCount(0);
  await A.context().close();
  await B.context().close();
  return metrics;
}

test('two people talk and see each other through the SFU: audio, camera, mute, screen share', async () => {
  test.setTimeout(120_000);
  record('direct', await callScenario(false));
});

test('the same call through coturn with relay-only ICE', async () => {
  test.setTimeout(120_000);
  const listening = await new Promise<boolean>((res) => {
    const s = createConnection({ host: '127.0.0.1', port: 3478 }, () => (s.destroy(), res(true)));
    s.on('error', () => res(false));
  });
  expect(listening, 'coturn is not listening on 127.0.0.1:3478: run scripts/coturn.sh (npm run e2e does)').toBe(true);
  record('relay', await callScenario(true));
});

test('voice controls follow permissions: no camera or screen without VIDEO, mic disabled without SPEAK, no join without CONNECT', async () => {
  const w = await world();
  await rest('PUT', `/api/v1/channels/${w.voiceId}/overwrites/${w.communityId}`, w.ownerToken, { target_type: 'role', allow: [], deny: ['VIDEO', 'SPEAK'] });
  const B = await openUser(w.member, false);
  await B.goto(`/app?c=${w.communityId}&ch=${w.voiceId}`);
  await B.getByRole('button', { name: 'Join voice' }).click();
  await until(B, 'B connected (listening only)', (s) => s?.state === 'connected');
  const footer = B.locator('.voice-footer');
  await expect(footer.getByRole('button', { name: 'Mute', exact: true })).toBeDisabled();
  await expect(footer.getByRole('button', { name: 'Turn camera on' })).toHaveCount(0);
  await expect(footer.getByRole('button', { name: 'Share your screen' })).toHaveCount(0);
  await footer.getByRole('button', { name: 'Leave call' }).click();
  await rest('PUT', `/api/v1/channels/${w.voiceId}/overwrites/${w.communityId}`, w.ownerToken, { target_type: 'role', allow: [], deny: ['CONNECT'] });
  await B.reload();
  await expect(B.getByRole('button', { name: 'No permission to join' })).toBeDisabled();
  await B.context().close();
});
