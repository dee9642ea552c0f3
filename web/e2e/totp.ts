// Two-factor codes for the tests that turn TOTP on (email.spec.ts, oidc.spec.ts).
import { createHmac } from 'node:crypto';
import { expect } from '@playwright/test';
import { baseUrl } from './helpers';

/** RFC 6238 (SHA-1, 6 digits, 30 s), as the server and authenticator apps compute it. */
export function totp(base32: string, at = Date.now()): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30_000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const o = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/** Turns TOTP on with the code of the step before `t0` (the server takes each step once, and only later ones). */
export async function enableTotp(accessToken: string, password: string, t0: number): Promise<string> {
  const auth = { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json' };
  const setup = await fetch(`${baseUrl()}/api/v1/users/@me/mfa/totp`, { method: 'POST', headers: auth });
  expect(setup.status).toBe(200);
  const { secret } = (await setup.json()) as { secret: string };
  const on = await fetch(`${baseUrl()}/api/v1/users/@me/mfa/totp`, {
    method: 'PUT',
    headers: auth,
    body: JSON.stringify({ secret, code: totp(secret, t0 - 30_000), password }),
  });
  expect(on.status, await on.text()).toBe(204);
  return secret;
}
