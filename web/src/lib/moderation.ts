// Moderation: audit log, automod rules, reports, slowmode/lock and bulk delete.
// Wire types (docs/api.md "Moderation" and "Reports"), the REST calls, and the pure
// helpers the screens use (formatting entries, mapping the rule form to the API's rule
// and back, reading validation errors). Nothing here touches React.
import type { Channel } from '@/api/types';
import { requestJson } from './api';
import { ApiError } from './errors';
import type { PermSet } from './permissions';

// ---- audit log ----------------------------------------------------------------------

export interface AuditChange {
  key: string;
  before?: unknown;
  after?: unknown;
}

export interface AuditEntry {
  id: string;
  actor_id: string | null;
  action: string;
  target_kind: string;
  target_id: string | null;
  reason: string | null;
  changes: AuditChange[];
  created_at: string | number;
}

/** Community audit actions, in the words the log shows ("Ann created role"). */
export const COMMUNITY_AUDIT_ACTIONS: Readonly<Record<string, string>> = {
  role_create: 'created role',
  role_update: 'updated role',
  role_delete: 'deleted role',
  member_role_add: 'gave a role to',
  member_role_remove: 'took a role from',
  overwrite_put: 'set channel permissions on',
  overwrite_delete: 'removed channel permissions on',
  channel_create: 'created channel',
  channel_update: 'updated channel',
  channel_delete: 'deleted channel',
  community_update: 'updated the community',
  member_kick: 'kicked',
  member_ban: 'banned',
  member_unban: 'unbanned',
  member_timeout: 'timed out',
  member_timeout_clear: 'removed the timeout of',
  message_delete: 'deleted a message by',
  message_bulk_delete: 'bulk-deleted messages in',
  message_pin: 'pinned a message in',
  message_unpin: 'unpinned a message in',
  invite_create: 'created an invite',
  invite_delete: 'deleted an invite',
  automod_rule_create: 'created automod rule',
  automod_rule_update: 'updated automod rule',
  automod_rule_delete: 'deleted automod rule',
  automod_block: 'blocked a message from',
  automod_flag: 'flagged a message from',
  automod_timeout: 'timed out',
  automod_delete: 'deleted recent messages of',
  report_actioned: 'actioned a report',
  report_dismissed: 'dismissed a report',
};

/** Instance (staff) audit actions. */
export const ADMIN_AUDIT_ACTIONS: Readonly<Record<string, string>> = {
  admin_users_search: 'searched users',
  admin_user_suspend: 'suspended',
  admin_user_unsuspend: 'lifted the suspension of',
  admin_user_reset_mfa: 'reset two-factor sign-in of',
  admin_user_erase: 'erased the account of',
  admin_communities_list: 'listed communities',
  admin_community_takedown: 'took down community',
  admin_community_restore: 'restored community',
  admin_reports_list: 'read the reports queue',
  admin_report_action: 'actioned a report',
  admin_report_dismiss: 'dismissed a report',
  admin_stats_read: 'read the instance stats',
  admin_policy_read: 'read the staff policy',
  admin_policy_edit: 'edited the staff policy',
  admin_audit_read: 'read the audit log',
};

export function actionLabel(action: string): string {
  return COMMUNITY_AUDIT_ACTIONS[action] ?? ADMIN_AUDIT_ACTIONS[action] ?? action.replace(/_/g, ' ');
}

export interface AuditFilter {
  actor_id?: string;
  action?: string;
  target_id?: string;
  before?: string;
  after?: string;
  limit?: number;
}

/** `?actor_id=…&action=…` with empty fields left out. */
export function toQuery(filter: Readonly<Record<string, string | number | undefined | null>>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) {
    if (v === undefined || v === null) continue;
    const s = String(v).trim();
    if (s) q.set(k, s);
  }
  const text = q.toString();
  return text ? `?${text}` : '';
}

/** Resolves ids to names for display; null when unknown (the id is shown then). */
export interface NameLookup {
  user(id: string): string | null;
  role(id: string): string | null;
  channel(id: string): string | null;
}

export const NO_NAMES: NameLookup = { user: () => null, role: () => null, channel: () => null };

export function parseTime(t: string | number | null | undefined): Date | null {
  if (t === null || t === undefined || t === '') return null;
  if (typeof t === 'number') return new Date(t > 1e12 ? t : t * 1000);
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function targetLabel(kind: string, id: string | null, names: NameLookup = NO_NAMES): string {
  if (!id) return kind === 'community' ? 'the community' : kind === 'instance' ? 'the instance' : '';
  switch (kind) {
    case 'user': {
      const n = names.user(id);
      return n ? `@${n}` : `user ${id}`;
    }
    case 'role': {
      const n = names.role(id);
      return n ? `@${n}` : `role ${id}`;
    }
    case 'channel': {
      const n = names.channel(id);
      return n ? `#${n}` : `channel ${id}`;
    }
    case 'message':
      return `message ${id}`;
    case 'automod_rule':
      return `rule ${id}`;
    case 'report':
      return `report ${id}`;
    case 'community':
      return 'the community';
    default:
      return `${kind.replace(/_/g, ' ')} ${id}`;
  }
}

const ID_KEYS = /(^|_)(id|author_id|channel_id|target_id|user_id)$/;

/** One value of a change, short and readable. */
export function formatValue(v: unknown, key = '', names: NameLookup = NO_NAMES): string {
  if (v === undefined) return '—';
  if (v === null) return 'none';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'number') return key.endsWith('_secs') ? formatDuration(v) : String(v);
  if (typeof v === 'string') {
    if (/^\d+$/.test(v) && ID_KEYS.test(key)) {
      const n = key.includes('channel') ? names.channel(v) : names.user(v) ?? names.role(v);
      if (n) return key.includes('channel') ? `#${n}` : `@${n}`;
    }
    if (key === 'roles') return names.role(v) ?? v;
    return v === '' ? '(empty)' : v;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return '(none)';
    if (key === 'roles') return v.map((x) => (typeof x === 'string' ? names.role(x) ?? x : formatValue(x))).join(', ');
    if (v.every((x) => typeof x !== 'object' || x === null)) return v.map((x) => formatValue(x)).join(', ');
  }
  return JSON.stringify(v);
}

export interface EntryView {
  actor: string;
  action: string;
  target: string;
  reason: string | null;
  when: Date | null;
  changes: { key: string; before: string; after: string }[];
}

/** What one audit entry says, in words. Automod's own entries have no actor. */
export function describeEntry(e: AuditEntry, names: NameLookup = NO_NAMES): EntryView {
  const actor = e.actor_id ? (names.user(e.actor_id) ? `@${names.user(e.actor_id)}` : `user ${e.actor_id}`) : e.action.startsWith('automod_') ? 'Automod' : 'System';
  const kind = e.target_kind;
  // A message target: name the author from the changes when the log carries it.
  let target = targetLabel(kind, e.target_id, names);
  if (kind === 'message') {
    const author = e.changes.find((c) => c.key === 'author_id');
    const authorId = (author?.before ?? author?.after) as string | undefined;
    if (typeof authorId === 'string') target = targetLabel('user', authorId, names);
  }
  if (kind === 'community' && e.target_id && e.action.startsWith('admin_')) {
    // A staff action on a community (a takedown) names it from what the log kept;
    // within a community's own log, "the community" says enough.
    const name = e.changes.find((c) => c.key === 'name');
    const v = (name?.before ?? name?.after) as string | undefined;
    target = typeof v === 'string' && v ? `“${v}” (${e.target_id})` : `community ${e.target_id}`;
  }
  if (kind === 'invite') {
    const code = e.changes.find((c) => c.key === 'code');
    const v = (code?.after ?? code?.before) as string | undefined;
    target = v ? `code ${v}` : '';
  }
  return {
    actor,
    action: actionLabel(e.action),
    target,
    reason: e.reason ?? null,
    when: parseTime(e.created_at),
    changes: e.changes.map((c) => ({ key: c.key, before: formatValue(c.before, c.key, names), after: formatValue(c.after, c.key, names) })),
  };
}

// ---- durations, slowmode, lock --------------------------------------------------------

export function formatDuration(secs: number): string {
  if (!secs) return 'off';
  const units: [number, string][] = [
    [86400, 'd'],
    [3600, 'h'],
    [60, 'min'],
    [1, 's'],
  ];
  const parts: string[] = [];
  let rest = Math.round(secs);
  for (const [n, u] of units) {
    if (rest >= n) {
      parts.push(`${Math.floor(rest / n)}${u === 'min' ? ' min' : u}`);
      rest %= n;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

export type DurationUnit = 's' | 'min' | 'h' | 'd';
export const UNIT_SECS: Record<DurationUnit, number> = { s: 1, min: 60, h: 3600, d: 86400 };

/** The largest unit that divides `secs` evenly (for a number + unit input). */
export function splitDuration(secs: number): { value: number; unit: DurationUnit } {
  for (const u of ['d', 'h', 'min'] as DurationUnit[]) if (secs >= UNIT_SECS[u] && secs % UNIT_SECS[u] === 0) return { value: secs / UNIT_SECS[u], unit: u };
  return { value: secs, unit: 's' };
}

export const SLOWMODE_OPTIONS: readonly (readonly [number, string])[] = [
  [0, 'Off'],
  [5, '5 seconds'],
  [10, '10 seconds'],
  [30, '30 seconds'],
  [60, '1 minute'],
  [300, '5 minutes'],
  [900, '15 minutes'],
  [3600, '1 hour'],
  [21600, '6 hours'],
];

/** The slowmode choices, plus the channel's current value if it isn't a preset. */
export function slowmodeChoices(current: number): (readonly [number, string])[] {
  const list = [...SLOWMODE_OPTIONS];
  if (!list.some(([v]) => v === current)) list.push([current, formatDuration(current)]);
  return list.sort((a, b) => a[0] - b[0]);
}

export type SendBlock = 'no_permission' | 'locked' | null;

/** Whether we may post in a community channel, and if not, why (locked vs. permission). */
export function sendState(perms: PermSet, channel: Pick<Channel, 'locked'> | undefined): SendBlock {
  const can = (p: string) => perms.has(p) || perms.has('ADMINISTRATOR');
  if (!can('SEND_MESSAGES')) return 'no_permission';
  if (channel?.locked && !can('MANAGE_MESSAGES')) return 'locked';
  return null;
}

/** Slowmode applies unless we hold MANAGE_MESSAGES or MANAGE_CHANNELS. */
export function slowmodeExempt(perms: PermSet): boolean {
  return perms.has('ADMINISTRATOR') || perms.has('MANAGE_MESSAGES') || perms.has('MANAGE_CHANNELS');
}

export function secondsLeft(until: number | undefined, now: number): number {
  if (!until) return 0;
  return Math.max(0, Math.ceil((until - now) / 1000));
}

export const BULK_MIN = 2;
export const BULK_MAX = 100;

/** Adds or removes one id; refuses to grow past BULK_MAX (returns the same set). */
export function toggleSelection(ids: ReadonlySet<string>, id: string): ReadonlySet<string> {
  const next = new Set(ids);
  if (next.has(id)) next.delete(id);
  else if (next.size >= BULK_MAX) return ids;
  else next.add(id);
  return next;
}

/** What the bulk-delete bar says and whether its button works for `n` picked messages. */
export function bulkState(n: number): { canDelete: boolean; hint: string } {
  if (n < BULK_MIN) return { canDelete: false, hint: n === 0 ? `Pick ${BULK_MIN} to ${BULK_MAX} messages.` : `Pick at least ${BULK_MIN} messages.` };
  if (n > BULK_MAX) return { canDelete: false, hint: `At most ${BULK_MAX} messages at once.` };
  return { canDelete: true, hint: `${n} selected` + (n === BULK_MAX ? ' (the most at once)' : '') };
}

// ---- automod --------------------------------------------------------------------------

export type Trigger =
  | { type: 'keywords'; words: string[]; allow?: string[] }
  | { type: 'regex'; patterns: string[] }
  | { type: 'mention_spam'; max_distinct: number }
  | { type: 'links'; allow_domains?: string[]; block_invites?: boolean; block_links?: boolean }
  | { type: 'flood'; max_repeats: number; window_secs: number }
  | { type: 'new_account'; min_account_age_secs?: number; min_member_age_secs?: number };

export type TriggerType = Trigger['type'];

export type RuleAction =
  | { type: 'block' }
  | { type: 'flag'; channel_id: string }
  | { type: 'timeout'; secs: number }
  | { type: 'delete_recent'; secs: number };

export interface AutomodRule {
  id?: string;
  name: string;
  enabled: boolean;
  trigger: Trigger;
  actions: RuleAction[];
  exempt_channels: string[];
  exempt_roles: string[];
}

export const TRIGGER_LABELS: Record<TriggerType, string> = {
  keywords: 'Keywords',
  regex: 'Regular expressions',
  mention_spam: 'Mention spam',
  links: 'Links and invites',
  flood: 'Flood (repeated messages)',
  new_account: 'New accounts and members',
};

/** The editor's state for one rule: text fields as typed, checkboxes per action. */
export interface RuleForm {
  /** Stable key for React (the id, or a local one for a new rule). */
  key: string;
  id?: string;
  name: string;
  enabled: boolean;
  type: TriggerType;
  words: string;
  allow: string;
  patterns: string;
  maxDistinct: number;
  allowDomains: string;
  blockInvites: boolean;
  blockLinks: boolean;
  maxRepeats: number;
  windowSecs: number;
  minAccountAgeSecs: number;
  minMemberAgeSecs: number;
  block: boolean;
  flag: boolean;
  flagChannel: string;
  timeout: boolean;
  timeoutSecs: number;
  deleteRecent: boolean;
  deleteSecs: number;
  exemptChannels: string[];
  exemptRoles: string[];
}

let localKey = 0;

export function newRuleForm(type: TriggerType = 'keywords'): RuleForm {
  return {
    key: `new-${++localKey}`,
    name: '',
    enabled: true,
    type,
    words: '',
    allow: '',
    patterns: '',
    maxDistinct: 5,
    allowDomains: '',
    blockInvites: true,
    blockLinks: false,
    maxRepeats: 3,
    windowSecs: 30,
    minAccountAgeSecs: 86400,
    minMemberAgeSecs: 0,
    block: true,
    flag: false,
    flagChannel: '',
    timeout: false,
    timeoutSecs: 600,
    deleteRecent: false,
    deleteSecs: 3600,
    exemptChannels: [],
    exemptRoles: [],
  };
}

/** Splits a list typed one per line or comma-separated; blanks and duplicates dropped. */
export function splitList(text: string, sep: RegExp = /[\n,]/): string[] {
  const out: string[] = [];
  for (const part of text.split(sep)) {
    const s = part.trim();
    if (s && !out.includes(s)) out.push(s);
  }
  return out;
}

export function ruleToForm(rule: AutomodRule): RuleForm {
  const f = newRuleForm(rule.trigger.type);
  f.key = rule.id ? `rule-${rule.id}` : f.key;
  f.id = rule.id;
  f.name = rule.name;
  f.enabled = rule.enabled !== false;
  const t = rule.trigger;
  switch (t.type) {
    case 'keywords':
      f.words = t.words.join('\n');
      f.allow = (t.allow ?? []).join('\n');
      break;
    case 'regex':
      f.patterns = t.patterns.join('\n');
      break;
    case 'mention_spam':
      f.maxDistinct = t.max_distinct;
      break;
    case 'links':
      f.allowDomains = (t.allow_domains ?? []).join('\n');
      f.blockInvites = !!t.block_invites;
      f.blockLinks = t.block_links !== false;
      break;
    case 'flood':
      f.maxRepeats = t.max_repeats;
      f.windowSecs = t.window_secs;
      break;
    case 'new_account':
      f.minAccountAgeSecs = t.min_account_age_secs ?? 0;
      f.minMemberAgeSecs = t.min_member_age_secs ?? 0;
      break;
  }
  f.block = false;
  for (const a of rule.actions) {
    if (a.type === 'block') f.block = true;
    if (a.type === 'flag') {
      f.flag = true;
      f.flagChannel = a.channel_id;
    }
    if (a.type === 'timeout') {
      f.timeout = true;
      f.timeoutSecs = a.secs;
    }
    if (a.type === 'delete_recent') {
      f.deleteRecent = true;
      f.deleteSecs = a.secs;
    }
  }
  f.exemptChannels = [...(rule.exempt_channels ?? [])];
  f.exemptRoles = [...(rule.exempt_roles ?? [])];
  return f;
}

/** The trigger the form describes. */
export function formTrigger(f: RuleForm): Trigger {
  switch (f.type) {
    case 'keywords': {
      const allow = splitList(f.allow);
      return allow.length ? { type: 'keywords', words: splitList(f.words), allow } : { type: 'keywords', words: splitList(f.words) };
    }
    case 'regex':
      // One pattern per line: commas are regex syntax.
      return { type: 'regex', patterns: splitList(f.patterns, /\n/) };
    case 'mention_spam':
      return { type: 'mention_spam', max_distinct: f.maxDistinct };
    case 'links':
      return { type: 'links', allow_domains: splitList(f.allowDomains, /[\n,\s]/).map((d) => d.replace(/^https?:\/\//, '').replace(/\/.*$/, '').toLowerCase()), block_invites: f.blockInvites, block_links: f.blockLinks };
    case 'flood':
      return { type: 'flood', max_repeats: f.maxRepeats, window_secs: f.windowSecs };
    case 'new_account':
      return { type: 'new_account', min_account_age_secs: f.minAccountAgeSecs, min_member_age_secs: f.minMemberAgeSecs };
  }
}

export function formActions(f: RuleForm): RuleAction[] {
  const a: RuleAction[] = [];
  if (f.block) a.push({ type: 'block' });
  if (f.flag) a.push({ type: 'flag', channel_id: f.flagChannel });
  if (f.timeout) a.push({ type: 'timeout', secs: f.timeoutSecs });
  if (f.deleteRecent) a.push({ type: 'delete_recent', secs: f.deleteSecs });
  return a;
}

/** What's wrong with a rule before it goes to the server (the server checks again). */
export function validateForm(f: RuleForm): string | null {
  const name = f.name.trim();
  if (!name) return 'Give the rule a name (blocked senders see it).';
  if (name.length > 100) return 'The name is at most 100 characters.';
  const t = formTrigger(f);
  if (t.type === 'keywords' && t.words.length === 0) return 'Add at least one keyword.';
  if (t.type === 'regex') {
    if (t.patterns.length === 0) return 'Add at least one pattern.';
    if (t.patterns.length > 10) return 'At most 10 patterns per rule.';
  }
  if (t.type === 'mention_spam' && !(t.max_distinct >= 1)) return 'Allow at least 1 mention.';
  if (t.type === 'links' && !t.block_links && !t.block_invites) return 'Block links, invites or both.';
  if (t.type === 'flood' && (!(t.max_repeats >= 1) || !(t.window_secs >= 1))) return 'Repeats and window must be at least 1.';
  if (t.type === 'new_account' && !t.min_account_age_secs && !t.min_member_age_secs) return 'Set a minimum account age or membership age.';
  if (!f.block && !f.flag && !f.timeout && !f.deleteRecent) return 'Pick at least one action.';
  if (f.flag && !f.flagChannel) return 'Pick the channel to flag to.';
  if (f.timeout && !(f.timeoutSecs >= 1)) return 'The timeout must be at least 1 second.';
  if (f.deleteRecent && !(f.deleteSecs >= 1)) return 'Delete at least 1 second of messages.';
  return null;
}

export function formToRule(f: RuleForm): AutomodRule {
  const rule: AutomodRule = {
    name: f.name.trim(),
    enabled: f.enabled,
    trigger: formTrigger(f),
    actions: formActions(f),
    exempt_channels: f.exemptChannels,
    exempt_roles: f.exemptRoles,
  };
  if (f.id) rule.id = f.id;
  return rule;
}

/** One line about a rule for the list ("Keywords: spam, scam → block, timeout 10 min"). */
export function summarizeRule(f: RuleForm): string {
  const t = formTrigger(f);
  let what: string;
  switch (t.type) {
    case 'keywords':
      what = t.words.slice(0, 4).join(', ') + (t.words.length > 4 ? '…' : '');
      break;
    case 'regex':
      what = `${t.patterns.length} pattern${t.patterns.length === 1 ? '' : 's'}`;
      break;
    case 'mention_spam':
      what = `more than ${t.max_distinct} mentions`;
      break;
    case 'links':
      what = [t.block_links ? 'links' : '', t.block_invites ? 'invites' : ''].filter(Boolean).join(' and ');
      break;
    case 'flood':
      what = `more than ${t.max_repeats} repeats in ${formatDuration(t.window_secs)}`;
      break;
    case 'new_account':
      what = [t.min_account_age_secs ? `account < ${formatDuration(t.min_account_age_secs)}` : '', t.min_member_age_secs ? `member < ${formatDuration(t.min_member_age_secs)}` : ''].filter(Boolean).join(', ');
      break;
  }
  const acts = formActions(f).map((a) => (a.type === 'block' ? 'block' : a.type === 'flag' ? 'flag' : a.type === 'timeout' ? `timeout ${formatDuration(a.secs)}` : `delete ${formatDuration(a.secs)}`));
  return `${TRIGGER_LABELS[t.type]}: ${what || '—'} → ${acts.join(', ') || 'no action'}`;
}

export const AUTOMOD_ERROR_CODES = ['automod_invalid_rule', 'automod_invalid_keyword', 'automod_invalid_regex', 'automod_limit_exceeded'] as const;

/**
 * Where a rejected PUT's error belongs: the form rule it names (by id, else by name),
 * and the sentence to show there. `key` is null when no single rule is at fault.
 */
export function ruleErrorFor(err: unknown, forms: readonly RuleForm[]): { key: string | null; message: string } | null {
  if (!(err instanceof ApiError)) return null;
  if (!(AUTOMOD_ERROR_CODES as readonly string[]).includes(err.code) && err.status !== 400) return null;
  const d = err.details ?? {};
  const id = d.rule_id != null ? String(d.rule_id) : null;
  const name = typeof d.rule_name === 'string' ? d.rule_name : null;
  const reason = typeof d.reason === 'string' && d.reason ? d.reason : err.message;
  const target = (id ? forms.find((f) => f.id === id) : undefined) ?? (name ? forms.find((f) => f.name.trim() === name) : undefined);
  const prefix =
    err.code === 'automod_invalid_regex' ? 'Invalid regular expression' :
    err.code === 'automod_invalid_keyword' ? 'Invalid keyword' :
    err.code === 'automod_limit_exceeded' ? 'Limit exceeded' :
    'Invalid rule';
  return { key: target?.key ?? null, message: `${prefix}: ${reason}` };
}

export interface RuleRef {
  rule_id: string;
  rule_name: string;
}

export interface AutomodVerdict {
  blocked: boolean;
  blocked_by: RuleRef | null;
  flags: (RuleRef & { channel_id: string })[];
  timeouts: (RuleRef & { secs: number })[];
  deletes: (RuleRef & { secs: number })[];
}

/** What a test message would trigger, one sentence per effect. */
export function describeVerdict(v: AutomodVerdict, names: NameLookup = NO_NAMES): string[] {
  const lines: string[] = [];
  if (v.blocked) lines.push(`Blocked by “${v.blocked_by?.rule_name ?? 'a rule'}”: the message would not be sent.`);
  for (const f of v.flags ?? []) lines.push(`Flagged by “${f.rule_name}” to ${targetLabel('channel', f.channel_id, names)}.`);
  for (const t of v.timeouts ?? []) lines.push(`The author would be timed out for ${formatDuration(t.secs)} by “${t.rule_name}”.`);
  for (const d of v.deletes ?? []) lines.push(`The author's messages from the last ${formatDuration(d.secs)} would be deleted by “${d.rule_name}”.`);
  if (lines.length === 0) lines.push('Allowed: no rule fires on this message.');
  return lines;
}

export async function getAutomodRules(communityId: string): Promise<AutomodRule[]> {
  return (await requestJson<{ rules: AutomodRule[] }>('GET', `/api/v1/communities/${communityId}/automod/rules`)).rules ?? [];
}

export async function putAutomodRules(communityId: string, rules: AutomodRule[]): Promise<AutomodRule[]> {
  return (await requestJson<{ rules: AutomodRule[] }>('PUT', `/api/v1/communities/${communityId}/automod/rules`, { rules })).rules ?? [];
}

export function testAutomod(communityId: string, content: string, channelId: string | null): Promise<AutomodVerdict> {
  return requestJson<AutomodVerdict>('POST', `/api/v1/communities/${communityId}/automod/test`, channelId ? { content, channel_id: channelId } : { content });
}

export function getAuditLog(communityId: string, filter: AuditFilter): Promise<AuditEntry[]> {
  return requestJson<AuditEntry[]>('GET', `/api/v1/communities/${communityId}/audit-log${toQuery({ ...filter })}`);
}

export function bulkDelete(channelId: string, ids: readonly string[]): Promise<void> {
  return requestJson<void>('POST', `/api/v1/channels/${channelId}/messages/bulk-delete`, { message_ids: ids });
}

// ---- reports --------------------------------------------------------------------------

export type ReportState = 'open' | 'actioned' | 'dismissed';

export type ReportSubject =
  | { kind: 'message'; message_id: string; channel_id: string; author_id: string; evidence: string | { content?: string; [k: string]: unknown } }
  | { kind: 'user'; user_id: string }
  | { kind: 'community'; community_id: string };

export interface ReportNote {
  author_id: string;
  body: string;
  created_at: string | number;
}

export interface Report {
  id: string;
  to: 'community' | 'instance';
  community_id: string | null;
  reporter_id: string;
  subject: ReportSubject;
  reason: string;
  state: ReportState;
  notes: ReportNote[];
  resolved_by: string | null;
  resolved_at: string | number | null;
  created_at: string | number;
}

export type ReportTarget =
  | { kind: 'message'; messageId: string; channelId: string; communityId: string | null; authorName: string; preview: string }
  | { kind: 'user'; userId: string; communityId: string | null; name: string };

/** The POST /reports body for a target and destination. */
export function reportBody(target: ReportTarget, to: 'community' | 'instance', reason: string): Record<string, string> {
  const body: Record<string, string> = { to, reason: reason.trim() };
  if (target.kind === 'message') {
    body.message_id = target.messageId;
    body.channel_id = target.channelId;
  } else {
    body.user_id = target.userId;
    if (to === 'community' && target.communityId) body.community_id = target.communityId;
  }
  return body;
}

/** The reported content as text, whatever shape the evidence has. */
export function evidenceText(subject: ReportSubject): string | null {
  if (subject.kind !== 'message') return null;
  const e = subject.evidence;
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && typeof e.content === 'string') return e.content;
  return e == null ? null : JSON.stringify(e);
}

export function subjectLabel(subject: ReportSubject, names: NameLookup = NO_NAMES): string {
  switch (subject.kind) {
    case 'message':
      return `Message by ${targetLabel('user', subject.author_id, names)} in ${targetLabel('channel', subject.channel_id, names)}`;
    case 'user':
      return `User ${targetLabel('user', subject.user_id, names)}`;
    case 'community':
      return `Community ${subject.community_id}`;
  }
}

/** A 409 on PATCH: the report was closed by someone else meanwhile. */
export function isClosedConflict(err: unknown): boolean {
  return err instanceof ApiError && err.status === 409;
}

export function createReport(body: Record<string, string>): Promise<Report> {
  return requestJson<Report>('POST', '/api/v1/reports', body);
}

export function listReports(scope: { communityId: string } | 'instance', q: { state?: string; before?: string; limit?: number }): Promise<Report[]> {
  const path = scope === 'instance' ? '/api/v1/admin/reports' : `/api/v1/communities/${scope.communityId}/reports`;
  return requestJson<Report[]>('GET', `${path}${toQuery(q)}`);
}

export function getReport(id: string): Promise<Report> {
  return requestJson<Report>('GET', `/api/v1/reports/${id}`);
}

export function updateReport(id: string, patch: { state?: 'actioned' | 'dismissed'; note?: string }): Promise<Report> {
  return requestJson<Report>('PATCH', `/api/v1/reports/${id}`, patch);
}
