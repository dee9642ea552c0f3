import { describe, expect, it } from 'vitest';
import { ApiError, errorFromResponse } from '@/lib/errors';
import {
  bulkState,
  describeEntry,
  describeVerdict,
  evidenceText,
  formToRule,
  formatDuration,
  formatValue,
  isClosedConflict,
  newRuleForm,
  reportBody,
  ruleErrorFor,
  ruleToForm,
  secondsLeft,
  sendState,
  slowmodeChoices,
  slowmodeExempt,
  splitDuration,
  splitList,
  summarizeRule,
  toggleSelection,
  toQuery,
  validateForm,
  type AuditEntry,
  type AutomodRule,
  type NameLookup,
} from '@/lib/moderation';
import { isStaff, parsePermission, staffCan, visibleSections } from '@/lib/admin';
import { isCommunityModerator, visibleTabs } from '@/components/CommunitySettings';
import { applyDeleteMany, applyPage, type MessagesState } from '@/stores/messages';
import { Outbox } from '@/lib/outbox';
import type { Message } from '@/api/types';

const names: NameLookup = {
  user: (id) => ({ '1': 'ann', '2': 'bob' })[id] ?? null,
  role: (id) => ({ '10': 'Mods' })[id] ?? null,
  channel: (id) => ({ '20': 'general', '21': 'mod-log' })[id] ?? null,
};

const entry = (e: Partial<AuditEntry>): AuditEntry => ({ id: '100', actor_id: '1', action: 'channel_update', target_kind: 'channel', target_id: '20', reason: null, changes: [], created_at: '2026-01-02T03:04:05Z', ...e });

describe('audit entries', () => {
  it('says who did what to which channel, with the changes before → after', () => {
    const v = describeEntry(entry({ reason: 'calm down', changes: [{ key: 'slowmode_secs', before: 0, after: 30 }, { key: 'locked', before: false, after: true }, { key: 'topic', before: null, after: 'rules' }] }), names);
    expect(v.actor).toBe('@ann');
    expect(v.action).toBe('updated channel');
    expect(v.target).toBe('#general');
    expect(v.reason).toBe('calm down');
    expect(v.when?.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(v.changes).toEqual([
      { key: 'slowmode_secs', before: 'off', after: '30s' },
      { key: 'locked', before: 'no', after: 'yes' },
      { key: 'topic', before: 'none', after: 'rules' },
    ]);
  });

  it('names automod as the actor of its own entries, and the author as a message target', () => {
    const v = describeEntry(entry({ actor_id: null, action: 'automod_block', target_kind: 'user', target_id: '2', reason: 'rule No spam' }), names);
    expect(v.actor).toBe('Automod');
    expect(v.action).toBe('blocked a message from');
    expect(v.target).toBe('@bob');
    const d = describeEntry(entry({ action: 'message_delete', target_kind: 'message', target_id: '555', changes: [{ key: 'author_id', before: '2' }, { key: 'channel_id', before: '20' }] }), names);
    expect(d.target).toBe('@bob');
    expect(d.changes[0]).toEqual({ key: 'author_id', before: '@bob', after: '—' });
  });

  it('falls back to ids for unknown things and to words for unknown actions', () => {
    const v = describeEntry(entry({ actor_id: '9', action: 'something_new', target_kind: 'role', target_id: '77', created_at: 1767323045000 }));
    expect(v.actor).toBe('user 9');
    expect(v.action).toBe('something new');
    expect(v.target).toBe('role 77');
    expect(v.when?.getUTCFullYear()).toBe(2026);
    expect(describeEntry(entry({ action: 'invite_create', target_kind: 'invite', target_id: null, changes: [{ key: 'code', after: 'abc' }] })).target).toBe('code abc');
  });

  it('formats values: role lists by name, arrays, objects, missing', () => {
    expect(formatValue(['10', '11'], 'roles', names)).toBe('Mods, 11');
    expect(formatValue([], 'allow')).toBe('(none)');
    expect(formatValue(['SEND_MESSAGES', 'VIEW_CHANNEL'], 'deny')).toBe('SEND_MESSAGES, VIEW_CHANNEL');
    expect(formatValue({ a: 1 }, 'x')).toBe('{"a":1}');
    expect(formatValue(undefined)).toBe('—');
  });

  it('builds the filter query without empty fields', () => {
    expect(toQuery({ actor_id: '1', action: '', target_id: undefined, before: '55', limit: 50 })).toBe('?actor_id=1&before=55&limit=50');
    expect(toQuery({})).toBe('');
  });
});

describe('durations and slowmode', () => {
  it('formats and splits durations', () => {
    expect(formatDuration(0)).toBe('off');
    expect(formatDuration(30)).toBe('30s');
    expect(formatDuration(90)).toBe('1 min 30s');
    expect(formatDuration(21600)).toBe('6h');
    expect(splitDuration(600)).toEqual({ value: 10, unit: 'min' });
    expect(splitDuration(86400 * 2)).toEqual({ value: 2, unit: 'd' });
    expect(splitDuration(45)).toEqual({ value: 45, unit: 's' });
  });

  it('offers the common slowmode values and keeps an unusual current one', () => {
    expect(slowmodeChoices(0).map(([v]) => v)).toEqual([0, 5, 10, 30, 60, 300, 900, 3600, 21600]);
    expect(slowmodeChoices(45).map(([v]) => v)).toContain(45);
  });

  it('counts down whole seconds', () => {
    expect(secondsLeft(undefined, 1000)).toBe(0);
    expect(secondsLeft(10_500, 1000)).toBe(10);
    expect(secondsLeft(1000, 5000)).toBe(0);
  });

  it('tells locked from missing permission, and who is exempt', () => {
    const member = new Set(['VIEW_CHANNEL', 'SEND_MESSAGES']);
    const mod = new Set(['VIEW_CHANNEL', 'SEND_MESSAGES', 'MANAGE_MESSAGES']);
    expect(sendState(member, { locked: false })).toBeNull();
    expect(sendState(member, { locked: true })).toBe('locked');
    expect(sendState(mod, { locked: true })).toBeNull();
    expect(sendState(new Set(['VIEW_CHANNEL']), { locked: true })).toBe('no_permission');
    expect(sendState(new Set(['ADMINISTRATOR']), { locked: true })).toBeNull();
    expect(slowmodeExempt(member)).toBe(false);
    expect(slowmodeExempt(mod)).toBe(true);
    expect(slowmodeExempt(new Set(['MANAGE_CHANNELS']))).toBe(true);
  });
});

describe('automod rule form ↔ API rule', () => {
  const rules: AutomodRule[] = [
    { id: '1', name: 'No spam', enabled: true, trigger: { type: 'keywords', words: ['spam', 'scam*'], allow: ['scampi'] }, actions: [{ type: 'block' }, { type: 'timeout', secs: 600 }], exempt_channels: ['20'], exempt_roles: ['10'] },
    { id: '2', name: 'Patterns', enabled: false, trigger: { type: 'regex', patterns: ['free\\s+nitro', 'a{2,3}'] }, actions: [{ type: 'flag', channel_id: '21' }], exempt_channels: [], exempt_roles: [] },
    { id: '3', name: 'Mentions', enabled: true, trigger: { type: 'mention_spam', max_distinct: 5 }, actions: [{ type: 'delete_recent', secs: 3600 }], exempt_channels: [], exempt_roles: [] },
    { id: '4', name: 'Links', enabled: true, trigger: { type: 'links', allow_domains: ['example.org'], block_invites: true, block_links: true }, actions: [{ type: 'block' }], exempt_channels: [], exempt_roles: [] },
    { id: '5', name: 'Flood', enabled: true, trigger: { type: 'flood', max_repeats: 3, window_secs: 30 }, actions: [{ type: 'block' }, { type: 'flag', channel_id: '21' }], exempt_channels: [], exempt_roles: [] },
    { id: '6', name: 'New', enabled: true, trigger: { type: 'new_account', min_account_age_secs: 86400, min_member_age_secs: 600 }, actions: [{ type: 'block' }], exempt_channels: [], exempt_roles: [] },
  ];

  it('round-trips every trigger and action kind unchanged', () => {
    for (const r of rules) expect(formToRule(ruleToForm(r))).toEqual(r);
  });

  it('reads keywords and domains as typed (lines or commas), regexes by line only', () => {
    const f = { ...newRuleForm('keywords'), name: ' Words ', words: 'spam, scam*\n\n spam \nfree money' };
    expect(formToRule(f).trigger).toEqual({ type: 'keywords', words: ['spam', 'scam*', 'free money'] });
    expect(formToRule(f).name).toBe('Words');
    const r = { ...newRuleForm('regex'), name: 'r', patterns: 'a{1,2}\nb,c' };
    expect(formToRule(r).trigger).toEqual({ type: 'regex', patterns: ['a{1,2}', 'b,c'] });
    const l = { ...newRuleForm('links'), name: 'l', allowDomains: 'https://Example.org/path, docs.rs' };
    expect(formToRule(l).trigger).toMatchObject({ allow_domains: ['example.org', 'docs.rs'] });
    expect(splitList('a,,b\na')).toEqual(['a', 'b']);
    expect(formToRule(f).id).toBeUndefined();
  });

  it('validates before sending', () => {
    const ok = { ...newRuleForm('keywords'), name: 'x', words: 'bad' };
    expect(validateForm(ok)).toBeNull();
    expect(validateForm({ ...ok, name: ' ' })).toMatch(/name/);
    expect(validateForm({ ...ok, words: '' })).toMatch(/keyword/);
    expect(validateForm({ ...ok, block: false })).toMatch(/action/);
    expect(validateForm({ ...ok, flag: true, flagChannel: '' })).toMatch(/channel/);
    expect(validateForm({ ...newRuleForm('regex'), name: 'r', patterns: Array.from({ length: 11 }, (_, i) => `p${i}`).join('\n') })).toMatch(/10/);
    expect(validateForm({ ...newRuleForm('links'), name: 'l', blockInvites: false, blockLinks: false })).toMatch(/links, invites/);
    expect(validateForm({ ...newRuleForm('new_account'), name: 'n', minAccountAgeSecs: 0, minMemberAgeSecs: 0 })).toMatch(/age/);
  });

  it('summarizes a rule in one line', () => {
    expect(summarizeRule(ruleToForm(rules[0]))).toBe('Keywords: spam, scam* → block, timeout 10 min');
    expect(summarizeRule(ruleToForm(rules[4]))).toBe('Flood (repeated messages): more than 3 repeats in 30s → block, flag');
  });

  it('puts a server validation error next to the rule it names (by id, else by name)', () => {
    const forms = rules.map(ruleToForm);
    const fresh = { ...newRuleForm('regex'), name: 'Brand new', patterns: '(' };
    const body = (code: string, details: object) => errorFromResponse(new Response(null, { status: 400 }), { error: { code, message: 'bad rule', details } });
    expect(ruleErrorFor(body('automod_invalid_regex', { rule_id: '2', rule_name: 'Patterns', reason: 'unclosed group' }), forms)).toEqual({ key: forms[1].key, message: 'Invalid regular expression: unclosed group' });
    expect(ruleErrorFor(body('automod_invalid_regex', { rule_id: '99', rule_name: 'Brand new', reason: 'unclosed group' }), [...forms, fresh])?.key).toBe(fresh.key);
    expect(ruleErrorFor(body('automod_limit_exceeded', { reason: 'at most 200 rules' }), forms)).toEqual({ key: null, message: 'Limit exceeded: at most 200 rules' });
    expect(ruleErrorFor(new Error('x'), forms)).toBeNull();
  });

  it('describes what a tested message would trigger', () => {
    expect(describeVerdict({ blocked: true, blocked_by: { rule_id: '1', rule_name: 'No spam' }, flags: [], timeouts: [{ rule_id: '1', rule_name: 'No spam', secs: 600 }], deletes: [] }, names)).toEqual([
      'Blocked by “No spam”: the message would not be sent.',
      'The author would be timed out for 10 min by “No spam”.',
    ]);
    expect(describeVerdict({ blocked: false, blocked_by: null, flags: [{ rule_id: '2', rule_name: 'Patterns', channel_id: '21' }], timeouts: [], deletes: [{ rule_id: '3', rule_name: 'M', secs: 3600 }] }, names)).toEqual([
      'Flagged by “Patterns” to #mod-log.',
      "The author's messages from the last 1h would be deleted by “M”.",
    ]);
    expect(describeVerdict({ blocked: false, blocked_by: null, flags: [], timeouts: [], deletes: [] })).toEqual(['Allowed: no rule fires on this message.']);
  });

  it('shows automod_blocked with the rule name', () => {
    const e = errorFromResponse(new Response(null, { status: 400 }), { error: { code: 'automod_blocked', message: 'blocked', details: { rule_id: '1', rule_name: 'No spam' } } });
    expect(e.human).toBe('Your message was blocked by the automod rule “No spam”.');
  });
});

describe('reports', () => {
  it('builds the POST body for a message or a member, to the community or the instance', () => {
    const msg = { kind: 'message' as const, messageId: 'm1', channelId: 'c1', communityId: 'g1', authorName: 'bob', preview: 'hi' };
    expect(reportBody(msg, 'community', '  spam  ')).toEqual({ to: 'community', reason: 'spam', message_id: 'm1', channel_id: 'c1' });
    const user = { kind: 'user' as const, userId: 'u1', communityId: 'g1', name: 'bob' };
    expect(reportBody(user, 'community', 'rude')).toEqual({ to: 'community', reason: 'rude', user_id: 'u1', community_id: 'g1' });
    expect(reportBody(user, 'instance', 'rude')).toEqual({ to: 'instance', reason: 'rude', user_id: 'u1' });
  });

  it('reads the evidence whatever its shape', () => {
    expect(evidenceText({ kind: 'message', message_id: '1', channel_id: '2', author_id: '3', evidence: 'the text' })).toBe('the text');
    expect(evidenceText({ kind: 'message', message_id: '1', channel_id: '2', author_id: '3', evidence: { content: 'inner' } })).toBe('inner');
    expect(evidenceText({ kind: 'user', user_id: '3' })).toBeNull();
  });

  it('recognises the closed-by-someone-else conflict and says so', () => {
    const e = errorFromResponse(new Response(null, { status: 409 }), { error: { code: 'conflict', message: 'x', details: { reason: 'report_invalid_transition' } } });
    expect(isClosedConflict(e)).toBe(true);
    expect(e.human).toBe('Someone else already closed this report.');
    expect(isClosedConflict(new ApiError(400, 'invalid_request', 'x'))).toBe(false);
  });
});

describe('bulk delete', () => {
  it('selects 2 to 100 messages', () => {
    let s: ReadonlySet<string> = new Set();
    expect(bulkState(0).canDelete).toBe(false);
    s = toggleSelection(s, 'a');
    expect(bulkState(s.size)).toEqual({ canDelete: false, hint: 'Pick at least 2 messages.' });
    s = toggleSelection(s, 'b');
    expect(bulkState(s.size).canDelete).toBe(true);
    s = toggleSelection(s, 'a');
    expect([...s]).toEqual(['b']);
    let full: ReadonlySet<string> = new Set(Array.from({ length: 100 }, (_, i) => String(i)));
    expect(toggleSelection(full, 'x')).toBe(full);
    full = toggleSelection(full, '5');
    expect(full.size).toBe(99);
  });

  it('MESSAGE_DELETE_BULK removes every listed message at once, and ignores unknown ids', () => {
    const m = (id: string) => ({ id, channel_id: 'c', community_id: 'g', author: { id: 'u', username: 'u', display_name: null, avatar_url: null }, content: id, created_at: '2026-01-01T00:00:00Z', edited_at: null, reply_to_id: null, mentions: [], attachments: [], reactions: [], pinned: false, nonce: null }) as unknown as Message;
    let s: MessagesState = applyPage({}, 'c', [m('1'), m('2'), m('3'), m('4')], { initial: true });
    s = applyDeleteMany(s, 'c', ['2', '4', '99']);
    expect(s.c.messages.map((x) => x.id)).toEqual(['1', '3']);
    expect(applyDeleteMany(s, 'c', ['99'])).toBe(s);
    expect(applyDeleteMany(s, 'other', ['1'])).toBe(s);
  });
});

describe('slowmode sends', () => {
  it('a slowmode 429 fails the send (back to the composer) instead of retrying it', async () => {
    const failed: ApiError[] = [];
    const timers: number[] = [];
    const err = new ApiError(429, 'rate_limited', 'slow', { retry_after_ms: 4200 }, 4200);
    const box = new Outbox({
      isOnline: () => true,
      send: async () => {
        throw err;
      },
      failOn429: () => true,
      onFailed: (_i, e) => failed.push(e),
      setTimer: (_fn, ms) => timers.push(ms),
    });
    box.enqueue({ nonce: 'n1', channelId: 'c', content: 'hi', replyToId: null });
    await box.flush();
    expect(failed.map((e) => e.retryAfterMs)).toEqual([4200]);
    expect(timers).toEqual([]);
    expect(box.size).toBe(0);
  });

  it('other 429s still wait and retry', async () => {
    const timers: number[] = [];
    const box = new Outbox({
      isOnline: () => true,
      send: async () => {
        throw new ApiError(429, 'rate_limited', 'slow', {}, 1500);
      },
      failOn429: () => false,
      setTimer: (_fn, ms) => timers.push(ms),
    });
    box.enqueue({ nonce: 'n1', channelId: 'c', content: 'hi', replyToId: null });
    await box.flush();
    expect(timers).toEqual([1500]);
    expect(box.size).toBe(1);
  });
});

describe('permission gating', () => {
  it('shows the moderation tabs only to those who may use them', () => {
    const all = ['Overview', 'Roles', 'Channels', 'Invites', 'Members'];
    expect(visibleTabs(new Set(['SEND_MESSAGES']))).toEqual(all);
    expect(visibleTabs(new Set(['VIEW_AUDIT_LOG']))).toEqual([...all, 'Audit log']);
    expect(visibleTabs(new Set(['MODERATE_MEMBERS']))).toEqual([...all, 'Reports']);
    expect(visibleTabs(new Set(['MANAGE_COMMUNITY']))).toEqual([...all, 'Automod']);
    expect(visibleTabs(new Set(['ADMINISTRATOR']))).toEqual([...all, 'Audit log', 'Reports', 'Automod']);
    expect(isCommunityModerator(new Set(['MANAGE_MESSAGES']))).toBe(true);
    expect(isCommunityModerator(new Set(['MANAGE_CHANNELS']))).toBe(false);
  });

  it('reads staff permissions with wildcards', () => {
    const tns = { is_admin: false, roles: ['trust_and_safety'], permissions: ['users:read', 'users:suspend', 'reports:*', 'stats:read'] };
    expect(staffCan(tns, 'users:suspend')).toBe(true);
    expect(staffCan(tns, 'users:reset_mfa')).toBe(false);
    expect(staffCan(tns, 'reports:handle')).toBe(true);
    expect(staffCan({ is_admin: false, roles: ['x'], permissions: ['*:read'] }, 'audit:read')).toBe(true);
    expect(staffCan({ is_admin: false, roles: ['x'], permissions: ['*:read'] }, 'policy:edit')).toBe(false);
    expect(staffCan({ is_admin: true, roles: [], permissions: [] }, 'policy:edit')).toBe(true);
    expect(staffCan(null, 'users:read')).toBe(false);
    expect(visibleSections(tns)).toEqual(['overview', 'users', 'reports']);
    expect(visibleSections({ is_admin: true, roles: [], permissions: [] })).toEqual(['overview', 'users', 'communities', 'reports', 'staff', 'audit']);
  });

  it('tells staff from everyone else', () => {
    expect(isStaff({ is_admin: false, roles: [], permissions: [] })).toBe(false);
    expect(isStaff({ is_admin: true, roles: [], permissions: [] })).toBe(true);
    expect(isStaff({ is_admin: false, roles: ['support'], permissions: ['users:read'] })).toBe(true);
    expect(isStaff(null)).toBe(false);
  });

  it('parses a typed permission', () => {
    expect(parsePermission(' Users : Suspend ')).toBe('users:suspend');
    expect(parsePermission('*:*')).toBe('*:*');
    expect(parsePermission('users')).toBeNull();
  });

  it('names a missing staff permission on a 403', () => {
    const e = errorFromResponse(new Response(null, { status: 403 }), { error: { code: 'forbidden', message: 'no', details: { missing_permission: 'users:suspend' } } });
    expect(e.human).toBe("You don't have the staff permission for that (users:suspend).");
  });
});
