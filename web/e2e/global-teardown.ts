import { readFileSync, rmSync, existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { STATE_FILE } from './global-setup';

export default async function globalTeardown() {
  const child = (globalThis as { __hearth?: ChildProcess }).__hearth;
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  if (existsSync(STATE_FILE)) {
    const { dataDir, pid } = JSON.parse(readFileSync(STATE_FILE, 'utf8'));
    if (!child && pid) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    if (dataDir?.includes('hearth-e2e-')) rmSync(dataDir, { recursive: true, force: true });
    rmSync(STATE_FILE, { force: true });
  }
}
