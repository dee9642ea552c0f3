// `npm run e2e`: builds the static export if it is missing, then runs Playwright.
// Playwright's global setup starts the real server and fails (never skips) when
// Chromium or the server binary is missing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'test-results'), { recursive: true });
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  return r.status ?? 1;
};
if (!existsSync(join(root, 'out', 'app.html'))) {
  console.log('e2e: building the static export first');
  const code = run('npx', ['next', 'build']);
  if (code !== 0) process.exit(code);
}
// coturn for the relay-only voice test (scripts/coturn.sh: no-op if 3478 listens).
process.env.HEARTH_E2E_TURN_SECRET ??= 'hearth-e2e-turn-secret';
const coturn = join(root, '..', 'scripts', 'coturn.sh');
if (existsSync(coturn) && run(coturn, ['start']) !== 0) console.log('e2e: coturn did not start; the relay voice test will fail');
// The SMTP sink the email tests read (scripts/smtp.sh: no-op if 2526 listens).
const smtp = join(root, '..', 'scripts', 'smtp.sh');
if (existsSync(smtp) && run('bash', [smtp, 'start']) !== 0) console.log('e2e: the SMTP sink did not start; the email tests will fail');
// The OpenID Connect provider the sign-in tests use (scripts/oidc.sh: no-op if 9400 listens).
const oidc = join(root, '..', 'scripts', 'oidc.sh');
if (existsSync(oidc) && run('bash', [oidc, 'start']) !== 0) console.log('e2e: the OIDC provider did not start; the OIDC tests will fail');
process.exit(run('npx', ['playwright', 'test', ...process.argv.slice(2)]));
