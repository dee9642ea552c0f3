// Web Push opt-in (docs/api.md "Web Push"): the browser's permission, the service worker
// (public/sw.js, served at /sw.js: it shows each push and opens the channel on a click),
// the PushManager subscription made with the server's VAPID key, and its registration
// with the server. This browser's subscription is found on the server by its endpoint.
import type { PushSubscriptionEntry } from '@/api/types';
import { requestJson } from './api';

export const SW_URL = '/sw.js';

export const pushApi = {
  vapidKey: async () => (await requestJson<{ public_key: string }>('GET', '/api/v1/push/vapid-public-key')).public_key,
  list: () => requestJson<PushSubscriptionEntry[]>('GET', '/api/v1/users/@me/push-subscriptions'),
  add: (subscription: PushSubscriptionJSON) => requestJson<PushSubscriptionEntry>('POST', '/api/v1/users/@me/push-subscriptions', subscription),
  remove: (id: string) => requestJson<void>('DELETE', `/api/v1/users/@me/push-subscriptions/${id}`),
};

export type PushStatus =
  /** No service workers or Push API here (or not a secure origin). */
  | 'unsupported'
  /** The person (or the browser's policy) blocked notifications for this site. */
  | 'denied'
  | 'off'
  | 'on';

/** A base64url string (no padding) as the bytes `applicationServerKey` takes. */
export function base64UrlToBytes(s: string): Uint8Array<ArrayBuffer> {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(s.length / 4) * 4, '=');
  const bin = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Whether a subscription was made with this key (the server's key may have been rotated). */
export function sameKey(a: ArrayBuffer | null | undefined, b: Uint8Array): boolean {
  if (!a) return false;
  const x = new Uint8Array(a);
  return x.length === b.length && x.every((v, i) => v === b[i]);
}

export function pushSupported(): boolean {
  return typeof window !== 'undefined' && window.isSecureContext && 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

async function existingSubscription(): Promise<PushSubscription | null> {
  const reg = await navigator.serviceWorker.getRegistration('/');
  return (await reg?.pushManager.getSubscription()) ?? null;
}

/** On only when this browser holds a subscription and the server still has it. */
export async function pushStatus(): Promise<PushStatus> {
  if (!pushSupported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  if (Notification.permission !== 'granted') return 'off';
  const sub = await existingSubscription();
  if (!sub) return 'off';
  const mine = (await pushApi.list()).some((e) => e.endpoint === sub.endpoint);
  return mine ? 'on' : 'off';
}

/** Push services can hang instead of refusing (no network to them): give up after this. */
const SUBSCRIBE_TIMEOUT_MS = 20_000;

export class PushError extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new PushError(message)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

/**
 * Turns desktop notifications on: asks for permission (this must run from a click),
 * registers the service worker, subscribes with the server's key and tells the server.
 */
export async function enablePush(): Promise<void> {
  if (!pushSupported()) throw new PushError('This browser cannot show notifications from Hearth.');
  const permission = await Notification.requestPermission();
  if (permission === 'denied') throw new PushError('Notifications are blocked for this site. Allow them in your browser’s site settings, then try again.');
  if (permission !== 'granted') throw new PushError('Notifications were not allowed.');
  await navigator.serviceWorker.register(SW_URL, { scope: '/' });
  const reg = await navigator.serviceWorker.ready;
  const key = base64UrlToBytes(await pushApi.vapidKey());
  let sub = await reg.pushManager.getSubscription();
  // One made with another key (the server's changed) would be refused by the push service.
  if (sub && !sameKey(sub.options.applicationServerKey, key)) {
    await sub.unsubscribe();
    sub = null;
  }
  if (!sub) {
    try {
      sub = await withTimeout(
        reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }),
        SUBSCRIBE_TIMEOUT_MS,
        'Your browser’s push service did not answer. Try again later.',
      );
    } catch (e) {
      if (e instanceof PushError) throw e;
      throw new PushError(`Your browser could not subscribe to push messages (${e instanceof Error ? e.message : String(e)}).`);
    }
  }
  // 201 for a new one, 200 when the server already had this browser.
  await pushApi.add(sub.toJSON());
}

/** Turns them off: the server forgets this browser and the subscription is dropped. */
export async function disablePush(): Promise<void> {
  if (!pushSupported()) return;
  const sub = await existingSubscription();
  if (!sub) return;
  const entry = (await pushApi.list()).find((e) => e.endpoint === sub.endpoint);
  if (entry) await pushApi.remove(entry.id);
  await sub.unsubscribe();
}

/**
 * Sign-out: the next account on this browser must not get this one's pushes. The token
 * is gone by then, so only the subscription is dropped; the push service then answers
 * the server 404/410, which removes it there.
 */
export async function dropPushSubscription(): Promise<void> {
  if (!pushSupported()) return;
  try {
    await (await existingSubscription())?.unsubscribe();
  } catch {
    // Nothing to drop, or the browser refused: the server's copy expires on its own.
  }
}

/** A click on a notification, relayed by the service worker to an open app window. */
export interface OpenChannelMessage {
  type: 'hearth:open-channel';
  channel_id: string;
  community_id: string | null;
  notification_id?: string;
}

export function isOpenChannelMessage(d: unknown): d is OpenChannelMessage {
  const m = d as Partial<OpenChannelMessage> | null;
  return !!m && m.type === 'hearth:open-channel' && typeof m.channel_id === 'string';
}

/** The app's address for a channel (the query string the app reads; c=@me for DMs). */
export function channelPath(channelId: string, communityId: string | null): string {
  return `/app?c=${encodeURIComponent(communityId ?? '@me')}&ch=${encodeURIComponent(channelId)}`;
}
