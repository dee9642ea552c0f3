import { expect, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SCREENSHOTS = resolve(WEB, '../docs/screenshots');

export function baseUrl(): string {
  const url = process.env.HEARTH_URL;
  if (!url) throw new Error('HEARTH_URL not set: global setup did not start the server');
  return url;
}

export function uniqueName(prefix: string) {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`.slice(0, 32);
}

export async function newUserPage(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ baseURL: baseUrl() });
  const page = await context.newPage();
  page.on('dialog', (d) => void d.accept());
  return { context, page };
}

export async function register(page: Page, username: string, password = 'correct horse battery') {
  await page.goto('/register');
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(/\/app/);
  await expect(page.getByRole('navigation', { name: 'Communities' })).toBeVisible();
}

export async function login(page: Page, username: string, password = 'correct horse battery') {
  await page.goto('/login');
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/app/);
}

export function composer(page: Page) {
  return page.locator('.composer textarea');
}

export async function send(page: Page, text: string) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

export function message(page: Page, text: string | RegExp) {
  return page.locator('article.message').filter({ hasText: text });
}

export async function openCommunityMenu(page: Page, name: string) {
  await page.locator('.sidebar-title').filter({ hasText: name }).click();
}

export async function shot(page: Page, name: string) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** Injects axe-core and fails on serious or critical violations. */
export async function axeCheck(page: Page, label: string) {
  // Evaluated over the DevTools protocol, not as a <script> tag: the server's CSP
  // (script hashes) rightly blocks injected inline scripts, and we keep it on.
  await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad, `${label}: axe serious/critical violations\n${JSON.stringify(bad, null, 2)}`).toEqual([]);
  return violations;
}

/** REST set-up for tests (set-up never needs a browser); honours 429 Retry-After. */
export async function rest<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
  let res: Response;
  for (let attempt = 0; ; attempt++) {
    res = await fetch(`${baseUrl()}${path}`, {
      method,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    if (res.status !== 429 || attempt >= 10) break;
    const after = Number(res.headers.get('Retry-After') ?? '1');
    await new Promise((r) => setTimeout(r, Math.max(100, (Number.isFinite(after) ? after : 1) * 1000)));
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Browser tabs opened by a test, closed after it so no gateway outlives its test. */
export function tabTracker() {
  const contexts: BrowserContext[] = [];
  return {
    async open(browser: Browser) {
      const tab = await newUserPage(browser);
      contexts.push(tab.context);
      return tab;
    },
    async closeAll() {
      for (const c of contexts.splice(0)) await c.close();
    },
  };
}

/** An account made through the API (name, id, token), for specs that set up a world first. */
export interface ApiAccount {
  name: string;
  id: string;
  token: string;
}

/** Registers `uniqueName(prefix)` with the tests' password through the API. */
export async function apiAccount(prefix: string, password = 'correct horse battery'): Promise<ApiAccount> {
  const name = uniqueName(prefix);
  const r = await rest<{ access_token: string; user: { id: string } }>('POST', '/api/v1/auth/register', null, { username: name, password });
  return { name, id: r.user.id, token: r.access_token };
}
