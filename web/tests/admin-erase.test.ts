// The pure rules behind account erasure and community takedown in the admin area:
// who sees which action, when a confirmation enables, what a refusal says, and how the
// instance audit log words the two new actions.
import { describe, expect, it } from 'vitest';
import {
  canTakeDown,
  confirmMatches,
  eraseGate,
  erasureSummary,
  isErased,
  isTombstone,
  mergeCommunities,
  ownedCommunities,
  ownsCommunitiesMessage,
  takedownSummary,
  visibleSections,
  adminApi,
  type AdminCommunity,
  type AdminUser,
  type StaffMe,
} from '@/lib/admin';
import { ApiError, errorFromResponse } from '@/lib/errors';
import { ADMIN_AUDIT_ACTIONS, actionLabel, describeEntry, type AuditEntry, type NameLookup } from '@/lib/moderation';
import { afterEach, beforeEach, vi } from 'vitest';
import { setBaseUrl } from '@/lib/api';

const ADMIN: StaffMe = { is_admin: true, roles: [], permissions: [] };
// The built-in trust_and_safety role (docs/api.md): no users:erase, but communities.
const TNS: StaffMe = { is_admin: false, roles: ['trust_and_safety'], permissions: ['users:read', 'users:suspend', 'users:unsuspend', 'communities:read', 'communities:takedown', 'reports:read', 'reports:handle', 'stats:read', 'audit:read'] };
const SUPPORT: StaffMe = { is_admin: false, roles: ['support'], permissions: ['users:read', 'users:reset_mfa', 'reports:read'] };
const ERASER: StaffMe = { is_admin: false, roles: ['erasers'], permissions: ['users:read', 'users:erase'] };
const READER: StaffMe = { is_admin: false, roles: ['readers'], permissions: ['communities:read'] };

const user = (over: Partial<AdminUser> & { id?: string; username?: string } = {}): AdminUser => {
  const { id = '42', username = 'mallory', ...rest } = over;
  return {
    user: { id, username, display_name: null, avatar_url: null, created_at: '2026-01-01T00:00:00Z' } as AdminUser['user'],
    email: 'm@example.org',
    is_admin: false,
    staff_roles: [],
    mfa_enabled: false,
    suspended: null,
    erased: null,
    ...rest,
  };
};

const conflict = (details: object) => errorFromResponse(new Response(null, { status: 409 }), { error: { code: 'conflict', message: 'owns communities', details } });

describe('gating the new tab and actions', () => {
  it('shows the Communities tab with communities:read only, in its place', () => {
    expect(visibleSections(ADMIN)).toEqual(['overview', 'users', 'communities', 'reports', 'staff', 'audit']);
    expect(visibleSections(TNS)).toEqual(['overview', 'users', 'communities', 'reports', 'audit']);
    expect(visibleSections(SUPPORT)).toEqual(['users', 'reports']);
    expect(visibleSections(READER)).toEqual(['communities']);
    expect(visibleSections({ is_admin: false, roles: ['x'], permissions: ['communities:*'] })).toContain('communities');
  });

  it('offers "Take down…" only with communities:takedown', () => {
    expect(canTakeDown(ADMIN)).toBe(true);
    expect(canTakeDown(TNS)).toBe(true);
    expect(canTakeDown(READER)).toBe(false);
    expect(canTakeDown(SUPPORT)).toBe(false);
    expect(canTakeDown(null)).toBe(false);
  });

  it('offers "Erase account…" only with users:erase, never on oneself nor an erased account', () => {
    expect(eraseGate(ADMIN, user(), '1')).toEqual({ show: true, blocked: null });
    expect(eraseGate(ERASER, user(), '1')).toEqual({ show: true, blocked: null });
    expect(eraseGate(TNS, user(), '1').show).toBe(false);
    expect(eraseGate(SUPPORT, user(), '1').show).toBe(false);
    expect(eraseGate(null, user(), '1').show).toBe(false);
    // One's own account: hidden, even for an administrator.
    expect(eraseGate(ADMIN, user({ id: '1' }), '1').show).toBe(false);
    // Already erased: no further actions (by the erased record or the tombstone name).
    expect(eraseGate(ADMIN, user({ erased: { erased_by: '1', messages: 'keep', erased_at: '2026-02-01T00:00:00Z' } }), '1').show).toBe(false);
    expect(eraseGate(ADMIN, user({ username: 'deleted-42' }), '1').show).toBe(false);
  });

  it('blocks erasing another staff account without policy:edit, and says why', () => {
    const staffTarget = user({ staff_roles: ['support'] });
    expect(eraseGate(ERASER, staffTarget, '1')).toEqual({ show: true, blocked: 'Erasing a staff account needs policy:edit.' });
    expect(eraseGate(ERASER, user({ is_admin: true }), '1').blocked).toMatch(/policy:edit/);
    expect(eraseGate({ ...ERASER, permissions: [...ERASER.permissions, 'policy:edit'] }, staffTarget, '1')).toEqual({ show: true, blocked: null });
    expect(eraseGate(ADMIN, staffTarget, '1').blocked).toBeNull();
  });

  it('recognises erased accounts and their tombstone names', () => {
    expect(isTombstone('deleted-123')).toBe(true);
    expect(isTombstone('deleted-')).toBe(false);
    expect(isTombstone('deleted-abc')).toBe(false);
    expect(isTombstone('deleted')).toBe(false);
    expect(isTombstone(null)).toBe(false);
    expect(isErased(user())).toBe(false);
    expect(isErased(user({ erased: { erased_by: null, messages: 'remove', erased_at: '2026-02-01T00:00:00Z' } }))).toBe(true);
  });
});

describe('typed-name confirmation', () => {
  it('enables only on the exact name', () => {
    expect(confirmMatches('mallory', 'mallory')).toBe(true);
    expect(confirmMatches('  mallory ', 'mallory')).toBe(true); // a pasted space is forgiven
    expect(confirmMatches('Mallory', 'mallory')).toBe(false);
    expect(confirmMatches('@mallory', 'mallory')).toBe(false);
    expect(confirmMatches('mallor', 'mallory')).toBe(false);
    expect(confirmMatches('mallory2', 'mallory')).toBe(false);
    expect(confirmMatches('', 'mallory')).toBe(false);
    expect(confirmMatches('', '')).toBe(false);
    expect(confirmMatches('Spam Central', 'Spam Central')).toBe(true);
    expect(confirmMatches('spam central', 'Spam Central')).toBe(false);
    expect(confirmMatches('Spam  Central', 'Spam Central')).toBe(false);
  });
});

describe('the 409 owns_communities refusal', () => {
  it('reads the community ids from the error, and nothing from other failures', () => {
    expect(ownedCommunities(conflict({ reason: 'owns_communities', community_ids: ['7', '9'] }))).toEqual(['7', '9']);
    expect(ownedCommunities(conflict({ reason: 'owns_communities' }))).toEqual([]);
    expect(ownedCommunities(conflict({ reason: 'report_invalid_transition' }))).toBeNull();
    expect(ownedCommunities(new ApiError(404, 'not_found', 'gone'))).toBeNull();
    expect(ownedCommunities(new Error('boom'))).toBeNull();
  });

  it('says what is owned, by name where known, and that nothing changed', () => {
    expect(ownsCommunitiesMessage('mallory', [{ id: '7', name: 'Spam Central' }])).toBe(
      '@mallory owns a community: “Spam Central” (7). Nothing was erased: the ownership must be transferred or the community taken down first.',
    );
    expect(ownsCommunitiesMessage('mallory', [{ id: '7', name: 'Spam Central' }, { id: '9', name: null }])).toBe(
      '@mallory owns 2 communities: “Spam Central” (7), community 9. Nothing was erased: the ownership must be transferred or the communities taken down first.',
    );
  });

  it('has a clear generic sentence too (describeError anywhere else)', () => {
    expect(conflict({ reason: 'owns_communities', community_ids: ['7'] }).human).toBe('That account owns communities: transfer them or take them down first. Nothing was erased.');
  });

  it('names the missing permission on a refused erasure or takedown', () => {
    for (const perm of ['users:erase', 'communities:takedown', 'communities:read']) {
      const e = errorFromResponse(new Response(null, { status: 403 }), { error: { code: 'forbidden', message: 'no', details: { missing_permission: perm } } });
      expect(e.human).toBe(`You don't have the staff permission for that (${perm}).`);
    }
  });
});

describe('results', () => {
  it('summarises an erasure by its messages policy', () => {
    expect(erasureSummary('mallory', { messages_deleted: 3, communities_left: 2 }, 'remove')).toBe('@mallory is erased for good: 3 messages deleted, 2 communities left.');
    expect(erasureSummary('mallory', { messages_deleted: 1, communities_left: 1 }, 'remove')).toBe('@mallory is erased for good: 1 message deleted, 1 community left.');
    expect(erasureSummary('mallory', { messages_deleted: 0, communities_left: 0 }, 'keep')).toBe('@mallory is erased for good: messages kept under “deleted user”, 0 communities left.');
  });

  it('says a community was taken down', () => {
    expect(takedownSummary({ id: '7', name: 'Spam Central' })).toBe('“Spam Central” (7) was taken down: it is deleted with everything in it.');
  });

  it('appends a page of communities without duplicates', () => {
    const c = (id: string): AdminCommunity => ({ community: { id, name: `c${id}`, owner_id: '1', created_at: '2026-01-01T00:00:00Z' } as AdminCommunity['community'], members: 1, channels: 1 });
    expect(mergeCommunities([c('1'), c('2')], [c('2'), c('3')]).map((x) => x.community.id)).toEqual(['1', '2', '3']);
    expect(mergeCommunities([], []).length).toBe(0);
  });
});

describe('the REST calls', () => {
  beforeEach(() => setBaseUrl('http://hearth.test'));
  afterEach(() => {
    vi.unstubAllGlobals();
    setBaseUrl('');
  });
  const capture = (status: number, body: unknown) => {
    const calls: { url: string; method: string; body: unknown }[] = [];
    vi.stubGlobal('fetch', async (req: Request) => {
      const text = await req.text();
      calls.push({ url: req.url, method: req.method, body: text ? JSON.parse(text) : undefined });
      return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
    });
    return calls;
  };

  it('erases with the messages policy, and a reason only when given', async () => {
    const calls = capture(200, { messages_deleted: 2, communities_left: 1 });
    expect(await adminApi.erase('42', { messages: 'remove', reason: '  asked  ' })).toEqual({ messages_deleted: 2, communities_left: 1 });
    await adminApi.erase('42', { messages: 'keep', reason: '   ' });
    expect(calls.map((c) => [c.method, new URL(c.url).pathname, c.body])).toEqual([
      ['POST', '/api/v1/admin/users/42/erasure', { messages: 'remove', reason: 'asked' }],
      ['POST', '/api/v1/admin/users/42/erasure', { messages: 'keep' }],
    ]);
  });

  it('lists communities by query and page, and takes one down', async () => {
    const calls = capture(200, []);
    await adminApi.communities({ q: 'Spam', after: '5', limit: 50 });
    await adminApi.communities({ q: undefined, limit: 50 });
    expect(calls.map((c) => new URL(c.url).pathname + new URL(c.url).search)).toEqual([
      '/api/v1/admin/communities?q=Spam&after=5&limit=50',
      '/api/v1/admin/communities?limit=50',
    ]);
    const td = capture(204, undefined);
    await adminApi.takedown('7', 'spam operation');
    await adminApi.takedown('8', '');
    expect(td.map((c) => [c.method, new URL(c.url).pathname, c.body])).toEqual([
      ['POST', '/api/v1/admin/communities/7/takedown', { reason: 'spam operation' }],
      ['POST', '/api/v1/admin/communities/8/takedown', {}],
    ]);
  });
});

describe('audit wording of the two new actions', () => {
  const names: NameLookup = { user: (id) => ({ '1': 'boss', '42': 'deleted-42', '5': 'owner' })[id] ?? null, role: () => null, channel: () => null };
  const entry = (e: Partial<AuditEntry>): AuditEntry => ({ id: '100', actor_id: '1', action: 'x', target_kind: 'user', target_id: '42', reason: null, changes: [], created_at: '2026-01-02T03:04:05Z', ...e });

  it('names both actions in words in the filter', () => {
    expect(ADMIN_AUDIT_ACTIONS.admin_user_erase).toBe('erased the account of');
    expect(ADMIN_AUDIT_ACTIONS.admin_community_takedown).toBe('took down community');
    expect(actionLabel('admin_user_erase')).toBe('erased the account of');
    expect(actionLabel('admin_community_takedown')).toBe('took down community');
  });

  it('words an erasure with its messages policy and counts', () => {
    const v = describeEntry(
      entry({ action: 'admin_user_erase', reason: 'asked to be forgotten', changes: [{ key: 'erased', after: true }, { key: 'messages', after: 'remove' }, { key: 'messages_deleted', after: 2 }, { key: 'communities_left', after: 1 }] }),
      names,
    );
    expect(`${v.actor} ${v.action} ${v.target}`).toBe('@boss erased the account of @deleted-42');
    expect(v.reason).toBe('asked to be forgotten');
    expect(v.changes).toContainEqual({ key: 'messages', before: '—', after: 'remove' });
    expect(v.changes).toContainEqual({ key: 'messages_deleted', before: '—', after: '2' });
  });

  it('words a takedown by the community name the log kept, and its owner by name', () => {
    const v = describeEntry(
      entry({ action: 'admin_community_takedown', target_kind: 'community', target_id: '7', reason: 'spam operation', changes: [{ key: 'name', after: 'Spam Central' }, { key: 'owner_id', after: '5' }, { key: 'members', after: 2 }, { key: 'taken_down', after: true }] }),
      names,
    );
    expect(`${v.actor} ${v.action} ${v.target}`).toBe('@boss took down community “Spam Central” (7)');
    expect(v.changes).toContainEqual({ key: 'owner_id', before: '—', after: '@owner' });
    expect(v.changes).toContainEqual({ key: 'members', before: '—', after: '2' });
    // Without a name in the log, the id still shows.
    expect(describeEntry(entry({ action: 'admin_community_takedown', target_kind: 'community', target_id: '7' }), names).target).toBe('community 7');
    // A community's own log keeps saying "the community".
    expect(describeEntry(entry({ action: 'community_update', target_kind: 'community', target_id: '7', changes: [{ key: 'name', before: 'a', after: 'b' }] }), names).target).toBe('the community');
  });
});
