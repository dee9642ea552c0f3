// The contract's permission resolution, mirrored client-side only to decide what to
// show (buttons, hidden channels). The server stays the authority on every request.
import type { Channel, Community, Member, Permission, Role } from '@/api/types';

export const ALL_PERMISSIONS: readonly Permission[] = [
  'VIEW_CHANNEL', 'SEND_MESSAGES', 'READ_MESSAGE_HISTORY', 'ADD_REACTIONS', 'ATTACH_FILES',
  'MENTION_EVERYONE', 'MANAGE_MESSAGES', 'MANAGE_CHANNELS', 'MANAGE_ROLES', 'MANAGE_COMMUNITY',
  'CREATE_INVITE', 'KICK_MEMBERS', 'BAN_MEMBERS', 'MODERATE_MEMBERS', 'VIEW_AUDIT_LOG',
  'CONNECT', 'SPEAK', 'VIDEO', 'MUTE_MEMBERS', 'ADMINISTRATOR',
];

export const PERMISSION_LABELS: Record<Permission, string> = {
  VIEW_CHANNEL: 'View channels', SEND_MESSAGES: 'Send messages', READ_MESSAGE_HISTORY: 'Read message history',
  ADD_REACTIONS: 'Add reactions', ATTACH_FILES: 'Attach files', MENTION_EVERYONE: 'Mention @everyone',
  MANAGE_MESSAGES: 'Manage messages', MANAGE_CHANNELS: 'Manage channels', MANAGE_ROLES: 'Manage roles',
  MANAGE_COMMUNITY: 'Manage community', CREATE_INVITE: 'Create invites', KICK_MEMBERS: 'Kick members',
  BAN_MEMBERS: 'Ban members', MODERATE_MEMBERS: 'Time out members', VIEW_AUDIT_LOG: 'View audit log',
  CONNECT: 'Connect (voice)', SPEAK: 'Speak (voice)', VIDEO: 'Video', MUTE_MEMBERS: 'Mute members',
  ADMINISTRATOR: 'Administrator',
};

export type PermSet = ReadonlySet<Permission>;
const ALL: PermSet = new Set(ALL_PERMISSIONS);
const TIMED_OUT: PermSet = new Set<Permission>(['VIEW_CHANNEL', 'READ_MESSAGE_HISTORY']);

export interface PermContext {
  community: Community;
  roles: readonly Role[];
  member: Member | undefined;
  userId: string;
  now?: number;
}

function isTimedOut(m: Member | undefined, now: number) {
  return !!m?.timed_out_until && Date.parse(m.timed_out_until) > now;
}

/** Community-level permissions: @everyone ∪ the member's roles. */
export function basePermissions(ctx: PermContext): PermSet {
  if (ctx.community.owner_id === ctx.userId) return ALL;
  const set = new Set<Permission>();
  const mine = new Set(ctx.member?.roles ?? []);
  for (const r of ctx.roles) {
    if (r.id === ctx.community.id || mine.has(r.id)) for (const p of r.permissions) set.add(p);
  }
  if (set.has('ADMINISTRATOR')) return ALL;
  if (isTimedOut(ctx.member, ctx.now ?? Date.now())) return intersect(set, TIMED_OUT);
  return set;
}

/** Channel permissions: base, then @everyone overwrite, role overwrites, member overwrite. */
export function channelPermissions(ctx: PermContext, channel: Channel): PermSet {
  if (ctx.community.owner_id === ctx.userId) return ALL;
  const base = basePermissions(ctx);
  if (base.has('ADMINISTRATOR')) return ALL;
  const set = new Set(base);
  const ows = channel.overwrites ?? [];
  const everyone = ows.find((o) => o.target_type === 'role' && o.target_id === ctx.community.id);
  if (everyone) {
    for (const p of everyone.deny) set.delete(p);
    for (const p of everyone.allow) set.add(p);
  }
  const mine = new Set(ctx.member?.roles ?? []);
  const roleOws = ows.filter((o) => o.target_type === 'role' && o.target_id !== ctx.community.id && mine.has(o.target_id));
  for (const o of roleOws) for (const p of o.deny) set.delete(p);
  for (const o of roleOws) for (const p of o.allow) set.add(p);
  const own = ows.find((o) => o.target_type === 'member' && o.target_id === ctx.userId);
  if (own) {
    for (const p of own.deny) set.delete(p);
    for (const p of own.allow) set.add(p);
  }
  if (isTimedOut(ctx.member, ctx.now ?? Date.now())) return intersect(set, TIMED_OUT);
  return set;
}

function intersect(a: PermSet, b: PermSet): PermSet {
  return new Set([...a].filter((p) => b.has(p)));
}

export function highestRolePosition(roles: readonly Role[], member: Member | undefined): number {
  let max = 0;
  for (const r of roles) if (member?.roles.includes(r.id) && r.position > max) max = r.position;
  return max;
}

/**
 * Whether the attach button shows: we may send here and attach files (ATTACH_FILES in a
 * community channel; anyone in a DM). The server checks again on every upload.
 */
export function canAttachFiles(perms: PermSet, opts: { isDm: boolean; canSend: boolean }): boolean {
  if (!opts.canSend) return false;
  return opts.isDm || perms.has('ATTACH_FILES') || perms.has('ADMINISTRATOR');
}
