import { describe, expect, it } from 'vitest';
import type { Message } from '@/api/types';
import { compareIds } from '@/lib/ids';
import * as M from '@/stores/messages';
import * as R from '@/stores/readStates';
import * as C from '@/stores/communities';
import { basePermissions, channelPermissions } from '@/lib/permissions';
import { message } from './fixtures';

const author = { id: '2', username: 'bob', display_name: null, avatar_url: null };
const msg = (id: string, extra: Partial<Message> = {}): Message => message(id, { author, ...extra });
const ids = (s: M.MessagesState, ch = 'c') => s[ch].messages.map((m) => m.id);

describe('ids', () => {
  it('orders by numeric value, beyond 2^53', () => {
    expect(compareIds('9', '10')).toBeLessThan(0);
    expect(compareIds('9007199254740993', '9007199254740992')).toBeGreaterThan(0);
    expect(compareIds('1234567890123456789', '1234567890123456789')).toBe(0);
    expect(['10', '9', '9007199254740993', '9007199254740992'].sort(compareIds)).toEqual(['9', '10', '9007199254740992', '9007199254740993']);
  });
});

describe('message list', () => {
  it('keeps messages sorted by BigInt id and unique by id', () => {
    let s: M.MessagesState = {};
    for (const id of ['9007199254740995', '9007199254740993', '10', '9', '9007199254740994', '10']) s = M.applyCreate(s, msg(id));
    expect(ids(s)).toEqual(['9', '10', '9007199254740993', '9007199254740994', '9007199254740995']);
  });

  it('merges overlapping pages in any order', () => {
    let s = M.applyPage({}, 'c', [msg('5'), msg('4'), msg('3')], { initial: true, limit: 3 });
    expect(s.c.hasMoreBefore).toBe(true);
    s = M.applyPage(s, 'c', [msg('3'), msg('2'), msg('1')], { older: true, limit: 3 });
    s = M.applyPage(s, 'c', [msg('1')], { older: true, limit: 3 });
    expect(ids(s)).toEqual(['1', '2', '3', '4', '5']);
    expect(s.c.hasMoreBefore).toBe(false);
    expect(s.c.loaded).toBe(true);
  });

  it('replaces the pending copy by nonce and never shows a message twice', () => {
    let s = M.addPending({}, { nonce: 'n1', channel_id: 'c', content: 'hi', reply_to_id: null, created_at: '', author, status: 'sending' });
    s = M.addPending(s, { nonce: 'n1', channel_id: 'c', content: 'hi', reply_to_id: null, created_at: '', author, status: 'sending' });
    expect(s.c.pending).toHaveLength(1);
    // POST answer, then the gateway echo, then a catch-up page containing it again.
    s = M.applyCreate(s, msg('7', { nonce: 'n1' }));
    s = M.applyCreate(s, msg('7', { nonce: 'n1' }));
    s = M.applyPage(s, 'c', [msg('7', { nonce: 'n1' })], {});
    expect(s.c.pending).toHaveLength(0);
    expect(ids(s)).toEqual(['7']);
    // A (buggy) second id for the same author+nonce is still shown once.
    s = M.applyCreate(s, msg('8', { nonce: 'n1' }));
    expect(ids(s)).toEqual(['7']);
    // Another author may use the same nonce string.
    s = M.applyCreate(s, msg('9', { nonce: 'n1', author: { ...author, id: '3' } }));
    expect(ids(s)).toEqual(['7', '9']);
  });

  it('a page retires pending copies by nonce', () => {
    let s = M.addPending({}, { nonce: 'n2', channel_id: 'c', content: 'x', reply_to_id: null, created_at: '', author, status: 'queued' });
    s = M.applyPage(s, 'c', [msg('3', { nonce: 'n2' })], {});
    expect(s.c.pending).toEqual([]);
  });

  it('applies partial updates and deletes', () => {
    let s = M.applyPage({}, 'c', [msg('1'), msg('2')], { initial: true });
    s = M.applyUpdate(s, { id: '2', channel_id: 'c', content: 'edited', edited_at: '2025-06-01T00:01:00Z' });
    expect(s.c.messages[1].content).toBe('edited');
    expect(s.c.messages[1].author).toEqual(author);
    expect(M.applyUpdate(s, { id: '99', channel_id: 'c', content: 'x' })).toBe(s);
    s = M.applyDelete(s, 'c', '1');
    expect(ids(s)).toEqual(['2']);
    expect(M.applyDelete(s, 'c', '1')).toBe(s);
  });

  it('counts reactions, with our own reaction idempotent', () => {
    let s = M.applyPage({}, 'c', [msg('1')], { initial: true });
    const ev = { channel_id: 'c', message_id: '1', emoji: '👍', user_id: 'me' };
    s = M.applyReaction(s, ev, 'me', true);
    s = M.applyReaction(s, ev, 'me', true); // optimistic + echo
    s = M.applyReaction(s, { ...ev, user_id: 'x' }, 'me', true);
    expect(s.c.messages[0].reactions).toEqual([{ emoji: '👍', count: 2, me: true }]);
    s = M.applyReaction(s, ev, 'me', false);
    s = M.applyReaction(s, { ...ev, user_id: 'x' }, 'me', false);
    expect(s.c.messages[0].reactions).toEqual([]);
  });

  it('handles 10,000 messages quickly', () => {
    const page = Array.from({ length: 10_000 }, (_, i) => msg(String(1_000_000_000_000_000n + BigInt(i))));
    const t0 = performance.now();
    let s = M.applyPage({}, 'c', page.slice().reverse(), { initial: true });
    for (let i = 0; i < 200; i++) s = M.applyCreate(s, msg(String(2_000_000_000_000_000n + BigInt(i))));
    expect(s.c.messages).toHaveLength(10_200);
    expect(performance.now() - t0).toBeLessThan(1500);
  });
});

describe('read states', () => {
  const me = { id: 'me', roleIds: ['r1'] };
  it('is unread when the newest message is above the last read id (BigInt order)', () => {
    let s = R.fromReady([{ channel_id: 'c', last_read_id: '9', mention_count: 0 }], { c: '10' });
    expect(R.isUnread(s, 'c')).toBe(true);
    s = R.ack(s, 'c', '10');
    expect(R.isUnread(s, 'c')).toBe(false);
    expect(R.isUnread(s, 'unknown')).toBe(false);
  });

  it('counts mentions of us, our roles and @everyone while not reading', () => {
    let s = R.fromReady([], {});
    s = R.onMessage(s, msg('1', { mentions: ['me'] }), me, { reading: false });
    s = R.onMessage(s, msg('2', { content: 'hey <@&r1>' }), me, { reading: false });
    s = R.onMessage(s, msg('3', { content: '@everyone look' }), me, { reading: false });
    s = R.onMessage(s, msg('4', { content: 'no mention' }), me, { reading: false });
    s = R.onMessage(s, msg('5', { content: 'email@everyone.com' }), me, { reading: false });
    expect(R.mentionCount(s, 'c')).toBe(3);
    expect(R.isUnread(s, 'c')).toBe(true);
    expect(R.sumMentions(s, ['c', 'd'])).toBe(3);
  });

  it('stays read while reading and for our own messages', () => {
    let s = R.fromReady([], {});
    s = R.onMessage(s, msg('1', { mentions: ['me'] }), me, { reading: true });
    expect(R.isUnread(s, 'c')).toBe(false);
    s = R.onMessage(s, msg('2', { author: { ...author, id: 'me' } }), me, { reading: false });
    expect(R.isUnread(s, 'c')).toBe(false);
    expect(R.mentionCount(s, 'c')).toBe(0);
  });

  it('every DM message counts', () => {
    const s = R.onMessage(R.fromReady([], {}), msg('1'), me, { reading: false, isDm: true });
    expect(R.mentionCount(s, 'c')).toBe(1);
  });

  it('READ_STATE_UPDATE never moves the marker backwards', () => {
    let s = R.fromReady([{ channel_id: 'c', last_read_id: '20', mention_count: 0 }], { c: '30' });
    s = R.applyReadState(s, { channel_id: 'c', last_read_id: '10', mention_count: 5 });
    expect(R.entry(s, 'c')).toEqual({ last_read_id: '20', mention_count: 0 });
    s = R.applyReadState(s, { channel_id: 'c', last_read_id: '30', mention_count: 0 });
    expect(R.isUnread(s, 'c')).toBe(false);
  });

  it('ignores late duplicates below the read marker', () => {
    let s = R.fromReady([{ channel_id: 'c', last_read_id: '20', mention_count: 0 }], { c: '20' });
    s = R.onMessage(s, msg('15', { mentions: ['me'] }), me, { reading: false });
    expect(R.mentionCount(s, 'c')).toBe(0);
  });
});

describe('communities and permissions', () => {
  const community = { id: 'g', name: 'G', owner_id: 'owner', icon_url: null, created_at: '' };
  const everyone = { id: 'g', community_id: 'g', name: '@everyone', permissions: ['VIEW_CHANNEL', 'SEND_MESSAGES'] as never, color: null, position: 0 };
  const mods = { id: 'm', community_id: 'g', name: 'mods', permissions: ['MANAGE_MESSAGES'] as never, color: null, position: 1 };
  const member = { user: { id: 'u', username: 'u', display_name: null, avatar_url: null, created_at: '', plan: 'free' }, roles: ['m'], nickname: null, joined_at: '', timed_out_until: null };
  const channel = { id: 'c', community_id: 'g', name: 'x', kind: 'text' as const, topic: null, position: 0, parent_id: null, user_limit: 0, slowmode_secs: 0, locked: false };

  it('resolves base and channel permissions per the contract', () => {
    const ctx = { community, roles: [everyone, mods], member, userId: 'u' };
    expect([...basePermissions(ctx)].sort()).toEqual(['MANAGE_MESSAGES', 'SEND_MESSAGES', 'VIEW_CHANNEL']);
    const hidden = { ...channel, overwrites: [{ target_id: 'g', target_type: 'role' as const, allow: [], deny: ['VIEW_CHANNEL' as const] }] };
    expect(channelPermissions(ctx, hidden).has('VIEW_CHANNEL')).toBe(false);
    const modsAllowed = { ...hidden, overwrites: [...hidden.overwrites, { target_id: 'm', target_type: 'role' as const, allow: ['VIEW_CHANNEL' as const], deny: [] }] };
    expect(channelPermissions(ctx, modsAllowed).has('VIEW_CHANNEL')).toBe(true);
    const memberDenied = { ...modsAllowed, overwrites: [...modsAllowed.overwrites, { target_id: 'u', target_type: 'member' as const, allow: [], deny: ['VIEW_CHANNEL' as const] }] };
    expect(channelPermissions(ctx, memberDenied).has('VIEW_CHANNEL')).toBe(false);
    expect(channelPermissions({ ...ctx, userId: 'owner', member: undefined }, memberDenied).has('VIEW_CHANNEL')).toBe(true);
    const timedOut = { ...member, timed_out_until: new Date(Date.now() + 60_000).toISOString() };
    expect([...channelPermissions({ ...ctx, member: timedOut }, channel)]).toEqual(['VIEW_CHANNEL']);
  });

  it('applies channel and member events', () => {
    let s = C.fromReady(C.communitiesStore.get(), [{ ...community, channels: [channel], roles: [everyone] }], [], member.user);
    expect(s.order).toEqual(['g']);
    s = C.upsertChannel(s, { ...channel, id: 'c2', name: 'two', position: 1 });
    s = C.upsertMember(s, 'g', member);
    expect(s.users.u.username).toBe('u');
    s = C.removeChannel(s, 'c');
    expect(Object.keys(s.channels)).toEqual(['c2']);
    s = C.upsertRole(s, mods);
    s = C.removeRole(s, 'g', 'm');
    expect(s.members.g.u.roles).toEqual([]);
    s = C.removeCommunity(s, 'g');
    expect(s.order).toEqual([]);
    expect(s.channels).toEqual({});
  });

  it('a later READY keeps overwrites already read (it does not carry them)', () => {
    const denySend = [{ target_id: 'g', target_type: 'role' as const, allow: [], deny: ['SEND_MESSAGES' as const] }];
    let s = C.fromReady(C.communitiesStore.get(), [{ ...community, channels: [channel], roles: [everyone] }], [], member.user);
    s = C.upsertChannel(s, { ...s.channels.c, overwrites: denySend });
    s = C.fromReady(s, [{ ...community, channels: [{ ...channel, name: 'renamed' }], roles: [everyone] }], [], member.user);
    expect(s.channels.c.name).toBe('renamed');
    expect(s.channels.c.overwrites).toEqual(denySend);
  });
});
