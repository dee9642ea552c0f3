// Initial JS budget: for each exported page, sum the gzipped size of every script the
// HTML loads or preloads (what the browser fetches before the page is interactive).
// Fails when any entry page is over budget. Run after `npm run build`.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'out');
const BUDGET_KB = Number(process.env.HEARTH_JS_BUDGET_KB ?? 250);
const pages = ['index.html', 'login.html', 'register.html', 'app.html', 'invite.html'];

if (!existsSync(out)) {
  console.error('size: out/ not found; run `npm run build` first');
  process.exit(1);
}

const cache = new Map();
function gz(path) {
  if (!cache.has(path)) cache.set(path, gzipSync(readFileSync(path), { level: 9 }).length);
  return cache.get(path);
}

let failed = false;
const rows = [];
for (const page of pages) {
  const file = join(out, page);
  if (!existsSync(file)) {
    console.error(`size: missing ${page}`);
    failed = true;
    continue;
  }
  const html = readFileSync(file, 'utf8');
  const srcs = new Set();
  // noModule scripts (legacy polyfills) are never fetched by the browsers we support.
  for (const m of html.matchAll(/<script([^>]*)>/g)) {
    const src = /\ssrc="([^"]+\.js)"/.exec(m[1]);
    if (src && !/\snomodule/i.test(m[1])) srcs.add(src[1]);
  }
  for (const m of html.matchAll(/<link[^>]+href="([^"]+\.js)"[^>]*>/g)) srcs.add(m[1]);
  let total = 0;
  for (const src of srcs) {
    const p = join(out, src.replace(/^\//, '').split('?')[0]);
    if (existsSync(p)) total += gz(p);
  }
  const kb = total / 1024;
  rows.push({ page, scripts: srcs.size, gzip_kb: Number(kb.toFixed(1)) });
  if (kb > BUDGET_KB) failed = true;
}
console.table(rows);
const worst = Math.max(...rows.map((r) => r.gzip_kb));
console.log(`size: largest initial JS ${worst.toFixed(1)} KB gzipped (budget ${BUDGET_KB} KB) ${failed ? 'OVER BUDGET' : 'ok'}`);
process.exit(failed ? 1 : 0);
