// Web Push: the helpers of lib/push.ts, and the service worker (public/sw.js) run in a
// fresh context against a fake `self` that records what it is asked to show and open.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { runInNewContext } from 'node:vm';
import { base64UrlToBytes, channelPath, isOpenChannelMessage, sameKey } from '@/lib/push';

describe('push helpers', () => {
  it('decodes the VAPID key and compares it with a subscription\'s', () => {
    const key = base64UrlToBytes('BPz-_w');
    expect([...key]).toEqual([0x04, 0xfc, 0xfe, 0xff]);
    expect(sameKey(new Uint8Array([4, 252, 254, 255]).buffer, key)).toBe(true);
    expect(sameKey(new Uint8Array([4, 252, 254]).buffer, key)).toBe(false);
    expect(sameKey(null, key)).toBe(false);
  });

  it('channel addresses and the service worker\'s click message', () => {
    expect(channelPath('50', '9')).toBe('/app?c=9&ch=50');
    expect(channelPath('70', null)).toBe('/app?c=%40me&ch=70');
    expect(isOpenChannelMessage({ type: 'hearth:open-channel', channel_id: '50', community_id: null })).toBe(true);
    expect(isOpenChannelMessage({ type: 'other', channel_id: '50' })).toBe(false);
    expect(isOpenChannelMessage(null)).toBe(false);
  });
});

// ---- the service worker ----------------------------------------------------------------

interface FakeWindow {
  url: string;
  focused: boolean;
  messages: unknown[];
  focus(): Promise<FakeWindow>;
  postMessage(m: unknown): void;
  navigate(url: string): Promise<FakeWindow>;
  navigatedTo?: string;
}

function fakeWindow(url: string, focused = false): FakeWindow {
  const w: FakeWindow = {
    url,
    focused,
    messages: [],
    focus: async () => w,
    postMessage: (m) => w.messages.push(m),
    navigate: async (to) => ((w.navigatedTo = to), w),
  };
  return w;
}

/** Loads public/sw.js into a fresh context with a `self` that records what it is asked. */
function loadWorker(windows: FakeWindow[]) {
  const listeners: Record<string, (e: unknown) => void> = {};
  const shown: { title: string; options: Record<string, unknown> }[] = [];
  const opened: string[] = [];
  const self = {
    location: { origin: 'https://hearth.test' },
    addEventListener: (type: string, fn: (e: unknown) => void) => (listeners[type] = fn),
    skipWaiting: () => undefined,
    registration: { showNotification: async (title: string, options: Record<string, unknown>) => void shown.push({ title, options }) },
    clients: {
      claim: async () => undefined,
      matchAll: async () => windows,
      openWindow: async (url: string) => void opened.push(url),
    },
  };
  runInNewContext(readFileSync(resolvePath(__dirname, '../public/sw.js'), 'utf8'), { self, URL, JSON });
  const fire = async (type: string, event: Record<string, unknown>) => {
    let work: Promise<unknown> = Promise.resolve();
    listeners[type]({ ...event, waitUntil: (p: Promise<unknown>) => (work = p) });
    await work;
  };
  return { listeners, shown, opened, fire };
}

const pushEvent = (payload: unknown) => ({ data: { json: () => (typeof payload === 'string' ? JSON.parse(payload) : payload) } });

describe('service worker', () => {
  const payload = { notification_id: '77', kind: 'mention', channel_id: '50', community_id: '9', title: 'Bob in #general', body: 'hey @ann', tag: '50' };

  it('shows a push as a notification: one per channel (tag), alerting again (renotify)', async () => {
    const w = loadWorker([]);
    expect(Object.keys(w.listeners).sort()).toEqual(['activate', 'install', 'notificationclick', 'push']);
    await w.fire('push', pushEvent(payload));
    expect(w.shown).toEqual([
      {
        title: 'Bob in #general',
        options: { body: 'hey @ann', tag: '50', renotify: true, data: { notification_id: '77', kind: 'mention', channel_id: '50', community_id: '9', url: '/app?c=9&ch=50' } },
      },
    ]);
  });

  it('still shows something for a push it cannot read (the browser requires it)', async () => {
    const w = loadWorker([]);
    await w.fire('push', pushEvent('not json'));
    await w.fire('push', { data: null });
    expect(w.shown.map((n) => n.title)).toEqual(['Hearth', 'Hearth']);
    expect(w.shown[0].options).not.toHaveProperty('renotify');
  });

  it('a click hands the channel to an open app window and focuses it', async () => {
    const other = fakeWindow('https://hearth.test/login');
    const app = fakeWindow('https://hearth.test/app?c=9&ch=1');
    const w = loadWorker([other, app]);
    await w.fire('push', pushEvent({ ...payload, community_id: null, channel_id: '70', tag: '70' }));
    let closed = false;
    await w.fire('notificationclick', { notification: { data: w.shown[0].options.data, close: () => (closed = true) } });
    expect(closed).toBe(true);
    expect(app.messages).toEqual([{ type: 'hearth:open-channel', channel_id: '70', community_id: null, notification_id: '77' }]);
    expect(w.opened).toEqual([]);
  });

  it('with no app window, navigates another window of the site or opens a new one', async () => {
    const other = fakeWindow('https://hearth.test/admin');
    const w = loadWorker([other]);
    await w.fire('push', pushEvent(payload));
    await w.fire('notificationclick', { notification: { data: w.shown[0].options.data, close: () => undefined } });
    expect(other.navigatedTo).toBe('https://hearth.test/app?c=9&ch=50');
    const none = loadWorker([]);
    await none.fire('push', pushEvent(payload));
    await none.fire('notificationclick', { notification: { data: none.shown[0].options.data, close: () => undefined } });
    expect(none.opened).toEqual(['https://hearth.test/app?c=9&ch=50']);
  });
});
