// Platform administration (docs/api.md "Platform administration"): what the signed-in
// user may do as instance staff, and the admin REST calls. Staff permissions are
// `object:action` pairs from the staff policy; `*` stands for any object or action.
import type { Community, User } from '@/api/types';
import { ApiError } from './errors';
import { createStore } from '@/stores/store';
import { requestJson } from './api';
import type { AuditEntry, AuditFilter } from './moderation';
import { toQuery } from './moderation';

export interface StaffMe {
  is_admin: boolean;
  roles: string[];
  permissions: string[];
}

export const NOT_STAFF: StaffMe = Object.freeze({ is_admin: false, roles: [], permissions: [] }) as StaffMe;

export interface Suspension {
  reason: string | null;
  suspended_by: string | null;
  suspended_at: string;
}

/** What becomes of an erased account's messages. */
export type ErasedMessages = 'keep' | 'remove';

export interface Erasure {
  erased_by: string | null;
  messages: ErasedMessages | (string & {});
  erased_at: string;
}

export interface AdminUser {
  user: User;
  email: string | null;
  is_admin: boolean;
  staff_roles: string[];
  mfa_enabled: boolean;
  suspended: Suspension | null;
  /** Set once the account is erased (for good): it keeps only its id. */
  erased?: Erasure | null;
}

export interface EraseResult {
  messages_deleted: number;
  communities_left: number;
}

/** A community as the instance's staff see it (GET /admin/communities). */
export interface AdminCommunity {
  community: Community;
  members: number;
  channels: number;
}

export interface InstanceStats {
  users: number;
  suspended_users: number;
  communities: number;
  channels: number;
  messages: number;
  live_sessions: number;
  gateway_sessions_here: number;
  node_id: number;
}

export interface StaffRole {
  role: string;
  permissions: string[];
  members: string[];
}

/** Every permission the server knows (docs/api.md built-in roles), for the editor. */
export const STAFF_PERMISSIONS: readonly string[] = [
  'users:read',
  'users:suspend',
  'users:unsuspend',
  'users:reset_mfa',
  'users:erase',
  'communities:read',
  'communities:takedown',
  'communities:restore',
  'reports:read',
  'reports:handle',
  'stats:read',
  'policy:read',
  'policy:edit',
  'audit:read',
];

export function isStaff(me: StaffMe | null | undefined): boolean {
  return !!me && (me.is_admin || me.roles.length > 0 || me.permissions.length > 0);
}

function matches(granted: string, wanted: string): boolean {
  const [go, ga] = granted.split(':');
  const [wo, wa] = wanted.split(':');
  return (go === '*' || go === wo) && (ga === '*' || ga === wa);
}

/** Whether the staff member may do `object:action` (the server checks again). */
export function staffCan(me: StaffMe | null | undefined, perm: string): boolean {
  if (!me) return false;
  if (me.is_admin) return true;
  return me.permissions.some((p) => matches(p, perm));
}

/** The admin sections a staff member may open, in display order. */
export const ADMIN_SECTIONS = [
  { id: 'overview', label: 'Overview', needs: 'stats:read' },
  { id: 'users', label: 'Users', needs: 'users:read' },
  { id: 'communities', label: 'Communities', needs: 'communities:read' },
  { id: 'reports', label: 'Reports', needs: 'reports:read' },
  { id: 'staff', label: 'Staff', needs: 'policy:read' },
  { id: 'audit', label: 'Audit log', needs: 'audit:read' },
] as const;

export type AdminSection = (typeof ADMIN_SECTIONS)[number]['id'];

export function visibleSections(me: StaffMe | null | undefined): AdminSection[] {
  return ADMIN_SECTIONS.filter((s) => staffCan(me, s.needs)).map((s) => s.id);
}

/** The message for a refused admin call: names the missing `object:action`. */
export function missingPermission(details: Record<string, unknown> | undefined): string | null {
  const p = details?.missing_permission;
  return typeof p === 'string' ? p : null;
}

// ---- the signed-in user's staff standing (drives the app shell's admin link) ----------

export const staffStore = createStore<{ me: StaffMe | null; loaded: boolean }>({ me: null, loaded: false });

let inflight: Promise<StaffMe> | null = null;

export function loadStaffMe(force = false): Promise<StaffMe> {
  if (inflight && !force) return inflight;
  inflight = requestJson<StaffMe>('GET', '/api/v1/admin/@me')
    .then((me) => {
      const v = { is_admin: !!me?.is_admin, roles: me?.roles ?? [], permissions: me?.permissions ?? [] };
      staffStore.set(() => ({ me: v, loaded: true }));
      return v;
    })
    .catch((e) => {
      inflight = null;
      staffStore.set(() => ({ me: NOT_STAFF, loaded: true }));
      throw e;
    });
  return inflight;
}

export function resetStaff() {
  inflight = null;
  staffStore.set(() => ({ me: null, loaded: false }));
}

// ---- calls -------------------------------------------------------------------------------

export const adminApi = {
  stats: () => requestJson<InstanceStats>('GET', '/api/v1/admin/stats'),
  users: (q: { q?: string; after?: string; limit?: number }) => requestJson<AdminUser[]>('GET', `/api/v1/admin/users${toQuery(q)}`),
  user: (id: string) => requestJson<AdminUser>('GET', `/api/v1/admin/users/${id}`),
  suspend: (id: string, reason: string) => requestJson<void>('PUT', `/api/v1/admin/users/${id}/suspension`, reason.trim() ? { reason: reason.trim() } : {}),
  unsuspend: (id: string) => requestJson<void>('DELETE', `/api/v1/admin/users/${id}/suspension`),
  resetMfa: (id: string) => requestJson<void>('DELETE', `/api/v1/admin/users/${id}/mfa`),
  staff: async () => (await requestJson<{ roles: StaffRole[] }>('GET', '/api/v1/admin/staff')).roles ?? [],
  grant: (role: string, userId: string) => requestJson<void>('PUT', `/api/v1/admin/staff/roles/${encodeURIComponent(role)}/members/${userId}`),
  revoke: (role: string, userId: string) => requestJson<void>('DELETE', `/api/v1/admin/staff/roles/${encodeURIComponent(role)}/members/${userId}`),
  allow: (role: string, perm: string) => {
    const [o, a] = perm.split(':');
    return requestJson<void>('PUT', `/api/v1/admin/staff/roles/${encodeURIComponent(role)}/permissions/${encodeURIComponent(o)}/${encodeURIComponent(a)}`);
  },
  deny: (role: string, perm: string) => {
    const [o, a] = perm.split(':');
    return requestJson<void>('DELETE', `/api/v1/admin/staff/roles/${encodeURIComponent(role)}/permissions/${encodeURIComponent(o)}/${encodeURIComponent(a)}`);
  },
  erase: (id: string, body: { messages: ErasedMessages; reason?: string }) =>
    requestJson<EraseResult>('POST', `/api/v1/admin/users/${id}/erasure`, body.reason?.trim() ? { messages: body.messages, reason: body.reason.trim() } : { messages: body.messages }),
  communities: (q: { q?: string; after?: string; limit?: number }) => requestJson<AdminCommunity[]>('GET', `/api/v1/admin/communities${toQuery(q)}`),
  takedown: (id: string, reason: string) => requestJson<void>('POST', `/api/v1/admin/communities/${id}/takedown`, reason.trim() ? { reason: reason.trim() } : {}),
  auditLog: (filter: AuditFilter) => requestJson<AuditEntry[]>('GET', `/api/v1/admin/audit-log${toQuery({ ...filter })}`),
};

/** `object:action` typed by a person: trimmed, lower-case, both halves present. */
export function parsePermission(text: string): string | null {
  const m = /^\s*([a-z_*]+)\s*:\s*([a-z_*]+)\s*$/i.exec(text);
  return m ? `${m[1].toLowerCase()}:${m[2].toLowerCase()}` : null;
}

// ---- erasure and takedown: the pure rules the screens follow ---------------------------

/** An erased account's username: `deleted-<id>` (real usernames cannot hold `-`). */
export function isTombstone(username: string | null | undefined): boolean {
  return !!username && /^deleted-\d+$/.test(username);
}

export function isErased(u: Pick<AdminUser, 'erased' | 'user'>): boolean {
  return !!u.erased || isTombstone(u.user.username);
}

export function isStaffAccount(u: Pick<AdminUser, 'is_admin' | 'staff_roles'>): boolean {
  return u.is_admin || u.staff_roles.length > 0;
}

/**
 * Whether the "Erase account…" action shows, and why it is disabled when it shows.
 * Hidden without users:erase, on one's own account and on an account already erased;
 * disabled (with the reason) on another staff account without policy:edit.
 */
export function eraseGate(me: StaffMe | null | undefined, u: AdminUser, selfId: string | null | undefined): { show: boolean; blocked: string | null } {
  if (!staffCan(me, 'users:erase') || isErased(u) || (selfId && selfId === u.user.id)) return { show: false, blocked: null };
  if (isStaffAccount(u) && !staffCan(me, 'policy:edit')) return { show: true, blocked: 'Erasing a staff account needs policy:edit.' };
  return { show: true, blocked: null };
}

/** Whether the "Take down…" action shows for a community. */
export function canTakeDown(me: StaffMe | null | undefined): boolean {
  return staffCan(me, 'communities:takedown');
}

/**
 * A destructive confirmation is enabled only when the typed text is exactly the expected
 * name: same case, same characters (surrounding spaces from a paste are forgiven).
 */
export function confirmMatches(typed: string, expected: string): boolean {
  return expected.length > 0 && typed.trim() === expected;
}

/** The community ids a 409 `owns_communities` names, or null for any other failure. */
export function ownedCommunities(err: unknown): string[] | null {
  if (!(err instanceof ApiError) || err.status !== 409 || err.details.reason !== 'owns_communities') return null;
  const ids = err.details.community_ids;
  return Array.isArray(ids) ? ids.map(String) : [];
}

/** What to tell staff when erasing an owner is refused (nothing changed). */
export function ownsCommunitiesMessage(username: string, communities: readonly { id: string; name?: string | null }[]): string {
  const n = communities.length;
  const what = n === 1 ? 'a community' : n > 1 ? `${n} communities` : 'communities';
  const list = communities.map((c) => (c.name ? `“${c.name}” (${c.id})` : `community ${c.id}`)).join(', ');
  return `@${username} owns ${what}${list ? `: ${list}` : ''}. Nothing was erased: the ownership must be transferred or ${n === 1 ? 'the community' : 'the communities'} taken down first.`;
}

export const ERASED_MESSAGES_LABEL: Record<ErasedMessages, string> = {
  keep: 'messages kept, shown as from a deleted user',
  remove: 'messages removed everywhere',
};

function plural(n: number, one: string, many: string) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

/** The notice after an erasure. */
export function erasureSummary(username: string, r: EraseResult, messages: ErasedMessages): string {
  const msgs = messages === 'remove' ? `${plural(r.messages_deleted, 'message', 'messages')} deleted` : 'messages kept under “deleted user”';
  return `@${username} is erased for good: ${msgs}, ${plural(r.communities_left, 'community', 'communities')} left.`;
}

/** The notice after a takedown. */
export function takedownSummary(c: Pick<Community, 'name' | 'id'>): string {
  return `“${c.name}” (${c.id}) was taken down: it is deleted with everything in it.`;
}

/** Appends a page of communities, skipping any already listed (by id). */
export function mergeCommunities(list: readonly AdminCommunity[], page: readonly AdminCommunity[]): AdminCommunity[] {
  const seen = new Set(list.map((c) => c.community.id));
  return [...list, ...page.filter((c) => !seen.has(c.community.id))];
}
