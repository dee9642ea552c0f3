// Platform administration (docs/api.md "Platform administration"): what the signed-in
// user may do as instance staff, and the admin REST calls. Staff permissions are
// `object:action` pairs from the staff policy; `*` stands for any object or action.
import type { User } from '@/api/types';
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

export interface AdminUser {
  user: User;
  email: string | null;
  is_admin: boolean;
  staff_roles: string[];
  mfa_enabled: boolean;
  suspended: Suspension | null;
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
  auditLog: (filter: AuditFilter) => requestJson<AuditEntry[]>('GET', `/api/v1/admin/audit-log${toQuery({ ...filter })}`),
};

/** `object:action` typed by a person: trimmed, lower-case, both halves present. */
export function parsePermission(text: string): string | null {
  const m = /^\s*([a-z_*]+)\s*:\s*([a-z_*]+)\s*$/i.exec(text);
  return m ? `${m[1].toLowerCase()}:${m[2].toLowerCase()}` : null;
}
