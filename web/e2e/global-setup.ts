// Starts a real `hearth` server for the suite:
//   $HEARTH_BIN serve --listen 127.0.0.1:<free port> --data-dir <fresh temp dir>
// with HEARTH_WEB_DIR=<web/out>, mail going to the SMTP sink and the test OpenID
// Connect provider (scripts/oidc.sh) configured as "test", and waits for
// GET /healthz = 200. Missing pieces fail the run (never skip): no browser, no server
// binary, no build.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const STATE_FILE = join(WEB, 'test-results', '.e2e-server.json');
/** The SMTP sink (scripts/smtp.sh): host:port, and where it writes each message. */
export const SMTP_ADDR = process.env.HEARTH_TEST_SMTP ?? '127.0.0.1:2526';
export const MAIL_DIR = process.env.HEARTH_TEST_MAIL_DIR ?? '/var/tmp/hearth-smtp/mail';
/** The OpenID Connect provider (scripts/oidc.sh): host:port, also its issuer over plain http. */
export const OIDC_ADDR = process.env.HEARTH_TEST_OIDC ?? '127.0.0.1:9400';
export const OIDC_ISSUER = `http://${OIDC_ADDR}`;
/** How the server knows it: the provider `test`, shown as "Test ID". */
export const OIDC_PROVIDER = { name: 'test', display_name: 'Test ID', issuer: OIDC_ISSUER, client_id: 'hearth-test', client_secret: 'hearth-test-secret' };

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
    srv.on('error', rej);
  });
}

export default async function globalSetup() {
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) throw new Error(`e2e: Chromium not found at ${chromium} (apt-get install -y chromium)`);
  const bin = process.env.HEARTH_BIN ?? '/var/tmp/hearth-target/debug/hearth';
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(`e2e: hearth server binary not found or not executable at ${bin} (set HEARTH_BIN)`);
  }
  const webDir = join(WEB, 'out');
  if (!existsSync(join(webDir, 'app.html'))) throw new Error('e2e: web/out is missing; run `npm run build` first');

  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'hearth-e2e-'));
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    env: {
      ...process.env,
      HEARTH_WEB_DIR: webDir,
      // files.spec.ts serves a page for link previews on 127.0.0.2 (loopback is
      // otherwise forbidden to the unfurler, as every private address is).
      HEARTH_MEDIA_LINK_PREVIEW_ALLOW_ADDRESSES: '127.0.0.2',
      // The 10,000-message scenario seeds over REST; the shipped per-user limit
      // (20/s) and address (50/s) limits would make that take minutes; the
      // API tests check the shipped limits.
      HEARTH_RATE_LIMIT_PER_USER_PER_SECOND: '2000',
      HEARTH_RATE_LIMIT_PER_USER_BURST: '2000',
      HEARTH_RATE_LIMIT_PER_IP_PER_SECOND: '2000',
      HEARTH_RATE_LIMIT_PER_IP_BURST: '2000',
      // Sign-up/sign-in/refresh share a per-address budget (shipped: burst 20, 0.5/s);
      // the suite signs dozens of people in from one address within a minute.
      HEARTH_RATE_LIMIT_AUTH_PER_IP_PER_SECOND: '50',
      HEARTH_RATE_LIMIT_AUTH_PER_IP_BURST: '200',
      // Voice: TURN REST credentials for the local coturn (scripts/coturn.sh); the SFU
      // offers host candidates on 127.0.0.1 (Chromium: --allow-loopback-in-peer-connection).
      HEARTH_TURN_URLS: process.env.HEARTH_TURN_URLS ?? 'turn:127.0.0.1:3478?transport=udp',
      HEARTH_TURN_SECRET: process.env.HEARTH_E2E_TURN_SECRET ?? 'hearth-e2e-turn-secret',
      // Real mail into the SMTP sink (scripts/smtp.sh, started by scripts/e2e.mjs); the
      // links in it point at this server. e2e/email.spec.ts fails when the sink is absent.
      HEARTH_SMTP_URL: `smtp://${SMTP_ADDR}`,
      HEARTH_PUBLIC_URL: url,
      // "Sign in with Test ID" (e2e/oidc.spec.ts). Its issuer is plain http on loopback,
      // which the server accepts only with HEARTH_OIDC_ALLOW_PRIVATE.
      HEARTH_OIDC_PROVIDERS: JSON.stringify([OIDC_PROVIDER]),
      HEARTH_OIDC_ALLOW_PRIVATE: 'true',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: false,
  });
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== null) throw new Error(`e2e: hearth exited with code ${exited} before becoming healthy`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('e2e: hearth did not answer GET /healthz with 200 within 60 s');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  process.env.HEARTH_URL = url;
  writeFileSync(STATE_FILE, JSON.stringify({ pid: child.pid, url, dataDir }));
  // Keep a handle so teardown in this process can stop it.
  (globalThis as { __hearth?: unknown }).__hearth = child;
}
