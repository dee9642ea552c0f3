// IDs are 64-bit snowflakes sent as decimal strings. They exceed Number's 53 bits,
// so comparisons go through BigInt (a string compare would misorder "9" and "10").

/** Negative if a < b, 0 if equal, positive if a > b. */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  // Fast path: decimal strings without leading zeros order by length first.
  if (a.length !== b.length) return a.length - b.length;
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function maxId(a: string | null | undefined, b: string | null | undefined): string | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return compareIds(a, b) >= 0 ? a : b;
}

/** 2025-01-01T00:00:00Z: the server's snowflake epoch (hearth-types EPOCH_MS). */
export const EPOCH_MS = 1_735_689_600_000;

export function idToTime(id: string): number {
  return Number(BigInt(id) >> 22n) + EPOCH_MS;
}

/** A nonce unique enough for the server's 24 h per-author dedupe window. */
export function newNonce(): string {
  const c = globalThis.crypto;
  if (c && 'randomUUID' in c) return c.randomUUID().replace(/-/g, '');
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
}
