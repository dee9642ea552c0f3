import { displayName } from '@/stores/communities';
import { describe, expect, it } from 'vitest';
import { ApiError, errorFromResponse, humanMessage, NETWORK_MESSAGE } from '@/lib/errors';
import { encodeMentions } from '@/components/Composer';
import { buildRows } from '@/components/MessageList';
import { safeNext } from '@/lib/nav';
import { parseInviteCode } from '@/components/Dialogs';
import type { Message } from '@/api/types';

const res = (status: number, headers: Record<string, string> = {}) => new Response(null, { status, headers });

describe('errors', () => {
  it('names the fields of a 400 from details.fields, never its other keys', () => {
    const search = errorFromResponse(res(400), {
      error: { code: 'invalid_request', message: 'q: unknown filter `foo:bar`', details: { fields: { q: 'unknown filter' }, reason: 'unknown_filter', token: 'foo:bar' } },
    });
    expect(search.human).toBe('q: unknown filter `foo:bar` (q)');
    const two = errorFromResponse(res(400), { error: { code: 'invalid_request', message: 'bad', details: { fields: { name: 'x', topic: 'y' } } } });
    expect(two.human).toBe('bad (name, topic)');
  });

  it('429 says when to retry, from Retry-After or details.retry_after_ms', () => {
    const e = errorFromResponse(res(429, { 'Retry-After': '7' }), { error: { code: 'rate_limited', message: 'x', details: {} } });
    expect(e.retryAfterMs).toBe(7000);
    expect(e.human).toBe('Slow down, retry in 7s.');
    const e2 = errorFromResponse(res(429), { error: { code: 'rate_limited', message: 'x', details: { retry_after_ms: 2500 } } });
    expect(e2.human).toBe('Slow down, retry in 3s.');
    // Both: the body's exact milliseconds win over the header's rounded-up seconds.
    const e3 = errorFromResponse(res(429, { 'Retry-After': '10' }), { error: { code: 'rate_limited', message: 'x', details: { retry_after_ms: 9841 } } });
    expect(e3.retryAfterMs).toBe(9841);
  });

  it('403 says permission was lost and names it', () => {
    const e = errorFromResponse(res(403), { error: { code: 'forbidden', message: 'no', details: { permission: 'SEND_MESSAGES' } } });
    expect(e.human).toBe('You no longer have permission to do that (SEND_MESSAGES).');
    expect(errorFromResponse(res(403), null).human).toBe('You no longer have permission to do that.');
  });

  it('network failures are transient and say so', () => {
    const e = new ApiError(0, 'network', 'x');
    expect(e.transient).toBe(true);
    expect(humanMessage(e)).toBe(NETWORK_MESSAGE);
    expect(errorFromResponse(res(400), { error: { code: 'invalid_request', message: 'bad', details: { content: 'too long' } } }).transient).toBe(false);
  });

  it('maps login failures', () => {
    expect(errorFromResponse(res(401), { error: { code: 'invalid_credentials', message: 'x' } }).human).toMatch(/Wrong/);
  });
});

describe('composer helpers', () => {
  const names = new Map([
    ['alice', '11'],
    ['bob.b', '22'],
  ]);
  it('encodes picked @names as <@id> but leaves code, emails and unknown names', () => {
    expect(encodeMentions('hi @alice and @Bob.b!', names)).toBe('hi <@11> and <@22>!');
    expect(encodeMentions('mail me@alice.org', names)).toBe('mail me@alice.org');
    expect(encodeMentions('`@alice` ```\n@alice\n``` @carol', names)).toBe('`@alice` ```\n@alice\n``` @carol');
  });
});

describe('message rows', () => {
  const m = (id: string, author: string, at: string, extra: Partial<Message> = {}): Message =>
    ({ id, channel_id: 'c', community_id: 'g', author: { id: author, username: author, display_name: null, avatar_url: null }, content: id, created_at: at, edited_at: null, reply_to_id: null, mentions: [], mention_roles: [], mention_everyone: false, attachments: [], reactions: [], pinned: false, nonce: null, ...extra }) as Message;
  it('groups consecutive messages by author and separates days', () => {
    const rows = buildRows(
      [
        m('1', 'a', '2025-06-01T10:00:00Z'),
        m('2', 'a', '2025-06-01T10:01:00Z'),
        m('3', 'b', '2025-06-01T10:02:00Z'),
        m('4', 'b', '2025-06-01T10:30:00Z'),
        m('5', 'b', '2025-06-03T10:30:00Z'),
        m('6', 'b', '2025-06-03T10:31:00Z', { reply_to_id: '5' }),
      ],
      [],
    );
    expect(rows.map((r) => (r.kind === 'message' ? [r.key, r.header, !!r.day] : null))).toEqual([
      ['1', true, true],
      ['2', false, false],
      ['3', true, false],
      ['4', true, false],
      ['5', true, true],
      ['6', true, false],
    ]);
  });
});

describe('navigation safety', () => {
  it('only follows same-site ?next= paths', () => {
    expect(safeNext('/invite?code=x')).toBe('/invite?code=x');
    expect(safeNext('//evil.example')).toBe('/app');
    expect(safeNext('https://evil.example')).toBe('/app');
    expect(safeNext('/\\evil')).toBe('/app');
    expect(safeNext(null)).toBe('/app');
  });
  it('reads invite codes from links or bare codes', () => {
    expect(parseInviteCode('https://chat.example/invite?code=abc123')).toBe('abc123');
    expect(parseInviteCode(' abc123 ')).toBe('abc123');
  });
});

describe('display names', () => {
  it('an erased account shows as a deleted user, others by display name or username', () => {
    expect(displayName({ username: 'deleted-253853243044528128', display_name: null })).toBe('Deleted user');
    expect(displayName({ username: 'alice', display_name: 'Alice A' })).toBe('Alice A');
    expect(displayName({ username: 'deleted_fan', display_name: null })).toBe('deleted_fan');
  });
});
