// Jumping to a message: the log becomes a detached window (messages?around=), live
// messages stay out of it, newer pages bring it back to the present, and nothing is ever
// spliced in after a gap. Reducers first, then HearthClient against a fake channel.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Message } from '@/api/types';
import { HearthClient, PAGE } from '@/lib/client';
import { compareIds } from '@/lib/ids';
import * as M from '@/stores/messages';
import { readStatesStore } from '@/stores/readStates';
import { focusIndex, buildRows } from '@/components/MessageList';
import { fakeServer, json, restoreFetch } from './fake-server';
import { message } from './fixtures';

const author = { id: '2', username: 'bob', display_name: null, avatar_url: null };
const msg = message;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => msg(from + i));
const newestFirst = (list: Message[]) => [...list].sort((a, b) => compareIds(b.id, a.id));
const ids = (s: M.MessagesState, ch = 'c') => (s[ch]?.messages ?? []).map((m) => Number(m.id));
const span = (from: number, to: number) => range(from, to).map((m) => Number(m.id));

describe('detached window (reducers)', () => {
  it('around: a window centred on the target, detached while the newer half is full', () => {
    const live = M.applyPage({}, 'c', newestFirst(range(300, 349)), { initial: true, limit: 50 });
    const s = M.applyAround(live, 'c', newestFirst(range(76, 125)), { limit: 50, targetId: '100', seq: 7 });
    expect(ids(s)).toEqual(span(76, 125));
    expect(s.c).toMatchObject({ loaded: true, detached: true, hasMoreBefore: true, focus: { id: '100', seq: 7 } });
    expect(s.c.epoch).toBe(live.c.epoch + 1);
  });

  it('around near either end: a short newer half is the present, a short older half the beginning', () => {
    const nearEnd = M.applyAround({}, 'c', newestFirst(range(1, 40)), { limit: 50, targetId: '30', seq: 1 });
    expect(nearEnd.c).toMatchObject({ detached: false, hasMoreBefore: true });
    const nearStart = M.applyAround({}, 'c', newestFirst(range(1, 35)), { limit: 50, targetId: '10', seq: 1 });
    expect(nearStart.c).toMatchObject({ detached: true, hasMoreBefore: false });
  });

  it('live messages stay out of a detached window (only their pending copy is retired)', () => {
    let s = M.applyAround({}, 'c', newestFirst(range(76, 125)), { limit: 50, targetId: '100', seq: 1 });
    s = M.addPending(s, { nonce: 'n1', channel_id: 'c', content: 'hi', reply_to_id: null, created_at: '', author, status: 'sending' });
    const before = s;
    s = M.applyCreate(s, msg(900));
    expect(s).toBe(before);
    s = M.applyCreate(s, msg(901, { nonce: 'n1' }));
    expect(ids(s)).toEqual(span(76, 125));
    expect(s.c.pending).toEqual([]);
  });

  it('the newest page and pages asked for a replaced window are dropped', () => {
    let s = M.applyPage({}, 'c', newestFirst(range(300, 349)), { initial: true, limit: 50 });
    const oldEpoch = s.c.epoch;
    s = M.applyAround(s, 'c', newestFirst(range(76, 125)), { limit: 50, targetId: '100', seq: 1 });
    // A loadInitial that started before the jump lands after it.
    expect(M.applyPage(s, 'c', newestFirst(range(300, 349)), { initial: true, limit: 50 })).toBe(s);
    // A loadOlder of the old live log (before 300) lands after it.
    expect(M.applyPage(s, 'c', newestFirst(range(250, 299)), { older: true, limit: 50, epoch: oldEpoch })).toBe(s);
    expect(M.applyNewer(s, 'c', range(126, 175), { limit: 50, epoch: oldEpoch })).toBe(s);
    // The window's own older page goes in.
    s = M.applyPage(s, 'c', newestFirst(range(26, 75)), { older: true, limit: 50, epoch: s.c.epoch });
    expect(ids(s)).toEqual(span(26, 125));
  });

  it('newer pages extend the window; a short one makes it live again', () => {
    let s = M.applyAround({}, 'c', newestFirst(range(76, 125)), { limit: 50, targetId: '100', seq: 1 });
    const epoch = s.c.epoch;
    s = M.applyNewer(s, 'c', range(126, 175), { limit: 50, epoch });
    expect(s.c.detached).toBe(true);
    s = M.applyNewer(s, 'c', range(176, 190), { limit: 50, epoch });
    expect(ids(s)).toEqual(span(76, 190));
    expect(s.c.detached).toBe(false);
    // Live again: new messages are appended.
    s = M.applyCreate(s, msg(191));
    expect(ids(s).at(-1)).toBe(191);
  });

  it('jump to present: the newest page replaces the window and the list goes to the bottom', () => {
    let s = M.applyAround({}, 'c', newestFirst(range(76, 125)), { limit: 50, targetId: '100', seq: 1 });
    s = M.applyPresent(s, 'c', newestFirst(range(300, 349)), { limit: 50, seq: 2 });
    expect(ids(s)).toEqual(span(300, 349));
    expect(s.c).toMatchObject({ detached: false, hasMoreBefore: true, focus: { id: null, seq: 2 } });
  });

  it('a handled focus is forgotten (only the one handled), so opening the channel again lands as usual', () => {
    let s = M.applyAround({}, 'c', newestFirst(range(76, 125)), { limit: 50, targetId: '100', seq: 3 });
    expect(M.clearFocus(s, 'c', 2)).toBe(s);
    s = M.clearFocus(s, 'c', 3);
    expect(s.c.focus).toBeNull();
    expect(s.c.detached).toBe(true);
  });

  it('the list lands on the target, or where it was when it is gone', () => {
    const rows = buildRows(range(10, 20).filter((m) => m.id !== '15'), []);
    expect(rows[focusIndex(rows, '12')].key).toBe('12');
    expect(rows[focusIndex(rows, '15')].key).toBe('16');
    expect(focusIndex(rows, '99')).toBe(rows.length - 1);
  });
});

describe('jumping (client against a fake channel)', () => {
  /** The server's channel: messages 1..N, paged like the real one. */
  let channel: Message[];
  let client: HearthClient;
  let seen: ReturnType<typeof fakeServer>;
  /** Runs once, right after the server has put together its next `after` page. */
  let afterAnswer: (() => void) | null = null;

  beforeEach(() => {
    channel = range(1, 300);
    M.messagesStore.set({});
    readStatesStore.set({ byChannel: {}, lastMessage: {} });
    seen = fakeServer((s) => {
      if (s.method !== 'GET' || s.path !== '/api/v1/channels/c/messages') return json(404, { error: { code: 'not_found', message: 'no', details: {} } });
      const q = s.query;
      const limit = Number(q.get('limit') ?? 50);
      const around = q.get('around');
      const before = q.get('before');
      const after = q.get('after');
      if (around) {
        const a = BigInt(around);
        const newer = channel.filter((m) => BigInt(m.id) > a).slice(0, Math.floor(limit / 2));
        const older = channel.filter((m) => BigInt(m.id) <= a).slice(-(limit - Math.floor(limit / 2)));
        return json(200, newestFirst([...older, ...newer]));
      }
      if (after) {
        const page = channel.filter((m) => BigInt(m.id) > BigInt(after)).slice(0, limit);
        afterAnswer?.();
        afterAnswer = null;
        return json(200, page);
      }
      const upTo = before ? channel.filter((m) => BigInt(m.id) < BigInt(before)) : channel;
      return json(200, newestFirst(upTo.slice(-limit)));
    });
    client = new HearthClient();
  });

  afterEach(() => {
    client.stop();
    restoreFetch();
  });

  it('opens a window around the message, keeps live messages out, pages forward and joins the present', async () => {
    expect(PAGE).toBe(50);
    const opening = client.jumpTo('c', '100');
    // The channel's list opening meanwhile waits for the jump instead of loading the newest page.
    await client.loadInitial('c');
    await opening;
    expect(seen.map((s) => s.query.get('around'))).toEqual(['100']);
    expect(ids(M.messagesStore.get())).toEqual(span(76, 125));
    expect(M.messagesStore.get().c).toMatchObject({ detached: true, focus: { id: '100' } });

    // A message sent now (301) arrives live: not spliced after the gap.
    channel.push(msg(301));
    client.applyMessage(msg(301));
    expect(ids(M.messagesStore.get()).at(-1)).toBe(125);

    // Scrolling up and down.
    await client.loadOlder('c');
    expect(ids(M.messagesStore.get())[0]).toBe(26);
    for (let i = 0; i < 10 && M.messagesStore.get().c.detached; i++) await client.loadNewer('c');
    const s = M.messagesStore.get().c;
    expect(s.detached).toBe(false);
    // Contiguous from 26 up to and including the live message, each once.
    expect(ids(M.messagesStore.get())).toEqual(span(26, 301));
    // One more while live: appended.
    client.applyMessage(msg(302));
    expect(ids(M.messagesStore.get()).at(-1)).toBe(302);
  });

  it('a message that came while the last page was on its way is fetched after joining', async () => {
    await client.jumpTo('c', '270');
    // 270 + 25 newer = 295: the window is still short of 300.
    expect(M.messagesStore.get().c.detached).toBe(true);
    // 301 is stored just after the server put the next page together, and its event
    // arrives before that page does: while still detached, so it is not added.
    afterAnswer = () => {
      channel.push(msg(301));
      client.applyMessage(msg(301));
    };
    await client.loadNewer('c');
    expect(seen.filter((r) => r.query.get('after')).map((r) => r.query.get('after'))).toEqual(['295', '300']);
    expect(M.messagesStore.get().c.detached).toBe(false);
    expect(ids(M.messagesStore.get()).slice(-3)).toEqual([299, 300, 301]);
  });

  it('a result already in the log is only scrolled to; "Jump to present" goes back to the newest page', async () => {
    await client.loadInitial('c');
    const n = seen.length;
    await client.jumpTo('c', '280');
    expect(seen.length).toBe(n);
    expect(M.messagesStore.get().c).toMatchObject({ detached: false, focus: { id: '280' } });

    await client.jumpTo('c', '40');
    expect(M.messagesStore.get().c.detached).toBe(true);
    await client.jumpToPresent('c');
    expect(ids(M.messagesStore.get())).toEqual(span(251, 300));
    expect(M.messagesStore.get().c).toMatchObject({ detached: false, focus: { id: null } });
  });

  it('the later of two jumps in one channel wins', async () => {
    const first = client.jumpTo('c', '40');
    const second = client.jumpTo('c', '200');
    await Promise.all([first, second]);
    expect(M.messagesStore.get().c.focus?.id).toBe('200');
    expect(ids(M.messagesStore.get())).toEqual(span(176, 225));
  });
});
