#!/usr/bin/env node
// A contract fake of the `hearth` server, in one file, for developing and checking the
// web client while the Rust server is being written. It implements the parts of
// shared/api/contract.md the client uses (in memory, one node) plus the web cookie flow.
// It is NOT the product: `npm run e2e` runs against the real binary unless HEARTH_BIN
// points here. CLI mirrors the real one: serve --listen HOST:PORT --data-dir DIR.
import { createServer } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
if (args[0] !== 'serve') {
  console.log('usage: fake-hearth serve --listen HOST:PORT --data-dir DIR');
  process.exit(args.includes('--help') ? 0 : 2);
}
const listen = args[args.indexOf('--listen') + 1] ?? '127.0.0.1:8080';
const [host, port] = listen.split(':');
const webDir = process.env.HEARTH_WEB_DIR;

// ---- ids & helpers ----
const EPOCH = 1735689600000n;
let lastMs = 0n;
let seqN = 0n;
function snowflake() {
  let ms = BigInt(Date.now()) - EPOCH;
  if (ms <= lastMs) {
    seqN++;
    if (seqN > 4095n) { lastMs++; seqN = 0n; }
    ms = lastMs;
  } else { lastMs = ms; seqN = 0n; }
  return String((ms << 22n) | (1n << 12n) | seqN);
}
const now = () => new Date().toISOString();
const token = () => randomBytes(24).toString('base64url');
const cmp = (a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);
class HttpError extends Error {
  constructor(status, code, message, details = {}) { super(message); this.status = status; this.code = code; this.details = details; }
}
const bad = (msg, details) => new HttpError(400, 'invalid_request', msg, details);

// ---- state ----
const users = new Map(); // id -> {id, username, password, display_name, created_at}
const sessions = new Map(); // id -> {id, user_id, refresh, access:Set, created_at, last_seen_at, user_agent, revoked}
const accessTokens = new Map(); // token -> {session_id, exp}
const communities = new Map(); // id -> {id, name, owner_id, icon_url, created_at}
const roles = new Map(); // id -> role
const members = new Map(); // `${cid}:${uid}` -> member {user_id, roles, nickname, joined_at, timed_out_until}
const bans = new Set();
const channels = new Map(); // id -> channel (with overwrites, recipients ids)
const messages = new Map(); // channel id -> [msg]
const invites = new Map();
const readStates = new Map(); // `${uid}:${cid}` -> {last_read_id, mention_count}
const reactions = new Map(); // message id -> Map(emoji -> Set(user))
const nonces = new Map(); // `${uid}:${chid}:${nonce}` -> message id

const publicUser = (u) => ({ id: u.id, username: u.username, display_name: u.display_name, avatar_url: null, created_at: u.created_at, plan: 'free' });
const summary = (u) => ({ id: u.id, username: u.username, display_name: u.display_name, avatar_url: null });
const memberOut = (m) => ({ user: publicUser(users.get(m.user_id)), roles: m.roles, nickname: m.nickname, joined_at: m.joined_at, timed_out_until: m.timed_out_until });
const ALL = ['VIEW_CHANNEL','SEND_MESSAGES','READ_MESSAGE_HISTORY','ADD_REACTIONS','ATTACH_FILES','MENTION_EVERYONE','MANAGE_MESSAGES','MANAGE_CHANNELS','MANAGE_ROLES','MANAGE_COMMUNITY','CREATE_INVITE','KICK_MEMBERS','BAN_MEMBERS','MODERATE_MEMBERS','VIEW_AUDIT_LOG','CONNECT','SPEAK','VIDEO','MUTE_MEMBERS','ADMINISTRATOR'];

function channelOut(ch) {
  const out = { id: ch.id, community_id: ch.community_id, name: ch.name, kind: ch.kind, topic: ch.topic, position: ch.position, parent_id: ch.parent_id, overwrites: ch.overwrites };
  const list = messages.get(ch.id) ?? [];
  out.last_message_id = list.length ? list[list.length - 1].id : null;
  if (ch.recipients) out.recipients = ch.recipients.map((id) => publicUser(users.get(id)));
  return out;
}
function msgOut(m, viewer) {
  const r = reactions.get(m.id);
  const rs = r ? [...r.entries()].filter(([, s]) => s.size).map(([emoji, s]) => ({ emoji, count: s.size, me: s.has(viewer) })) : [];
  return { ...m, author: summary(users.get(m.author_id)), author_id: undefined, reactions: rs };
}

function perms(uid, cid, ch) {
  const c = communities.get(cid);
  if (!c) return new Set();
  if (c.owner_id === uid) return new Set(ALL);
  const m = members.get(`${cid}:${uid}`);
  if (!m) return new Set();
  const set = new Set();
  for (const r of roles.values()) if (r.community_id === cid && (r.id === cid || m.roles.includes(r.id))) r.permissions.forEach((p) => set.add(p));
  if (set.has('ADMINISTRATOR')) return new Set(ALL);
  if (ch) {
    const ow = ch.overwrites ?? [];
    const e = ow.find((o) => o.target_id === cid);
    if (e) { e.deny.forEach((p) => set.delete(p)); e.allow.forEach((p) => set.add(p)); }
    const ro = ow.filter((o) => o.target_type === 'role' && o.target_id !== cid && m.roles.includes(o.target_id));
    ro.forEach((o) => o.deny.forEach((p) => set.delete(p)));
    ro.forEach((o) => o.allow.forEach((p) => set.add(p)));
    const mo = ow.find((o) => o.target_type === 'member' && o.target_id === uid);
    if (mo) { mo.deny.forEach((p) => set.delete(p)); mo.allow.forEach((p) => set.add(p)); }
  }
  if (m.timed_out_until && Date.parse(m.timed_out_until) > Date.now()) return new Set([...set].filter((p) => p === 'VIEW_CHANNEL' || p === 'READ_MESSAGE_HISTORY'));
  return set;
}
function need(uid, cid, ch, p) {
  if (!perms(uid, cid, ch).has(p)) throw new HttpError(403, 'forbidden', `missing ${p}`, { permission: p });
}
function canSeeChannel(uid, ch) {
  if (!ch.community_id) return ch.recipients.includes(uid);
  return members.has(`${ch.community_id}:${uid}`) && perms(uid, ch.community_id, ch).has('VIEW_CHANNEL');
}
function getChannel(uid, id) {
  const ch = channels.get(id);
  if (!ch || !canSeeChannel(uid, ch)) throw new HttpError(404, 'not_found', 'no such channel');
  return ch;
}
function getCommunity(uid, id) {
  const c = communities.get(id);
  if (!c || !members.has(`${id}:${uid}`)) throw new HttpError(404, 'not_found', 'no such community');
  return c;
}
function communityFull(c, uid) {
  return {
    ...c,
    channels: [...channels.values()].filter((ch) => ch.community_id === c.id && canSeeChannel(uid, ch)).map(channelOut),
    roles: [...roles.values()].filter((r) => r.community_id === c.id),
    members: [...members.values()].filter((m) => members.get(`${c.id}:${m.user_id}`) === m && m.cid === c.id).map(memberOut),
  };
}

// ---- gateway ----
const gwSessions = new Map(); // session_id -> {user_id, auth_session, seq, buffer, socket}
const sockets = new Set();
function online(uid) { return [...gwSessions.values()].some((s) => s.user_id === uid && s.socket); }
function send(gs, t, d) {
  gs.seq++;
  const frame = { op: 'dispatch', t, s: gs.seq, d };
  gs.buffer.push(frame);
  if (gs.buffer.length > 1000) gs.buffer.shift();
  if (gs.socket && gs.socket.readyState === 1) gs.socket.send(JSON.stringify(frame));
}
function dispatch(t, d, filter) {
  for (const gs of gwSessions.values()) if (filter(gs.user_id)) send(gs, t, d);
}
const toMembers = (cid) => (uid) => members.has(`${cid}:${uid}`);
const toViewers = (ch) => (uid) => canSeeChannel(uid, ch);
function presence(uid, status) {
  const cids = [...communities.keys()].filter((cid) => members.has(`${cid}:${uid}`));
  dispatch('PRESENCE_UPDATE', { user_id: uid, status }, (u) => u === uid || cids.some((cid) => members.has(`${cid}:${u}`)));
}
function closeSessionSockets(sessionId, code) {
  for (const [id, gs] of gwSessions) if (gs.auth_session === sessionId) {
    gs.socket?.close(code, 'session revoked');
    gwSessions.delete(id);
  }
}
// Visibility snapshots so permission changes turn into CHANNEL_CREATE/DELETE per user.
function visibleSnapshot(cid) {
  const snap = new Map();
  for (const gs of gwSessions.values()) {
    if (!members.has(`${cid}:${gs.user_id}`)) continue;
    snap.set(gs.user_id, new Set([...channels.values()].filter((ch) => ch.community_id === cid && canSeeChannel(gs.user_id, ch)).map((ch) => ch.id)));
  }
  return snap;
}
function diffVisibility(cid, before, changedChannel) {
  const after = visibleSnapshot(cid);
  for (const gs of gwSessions.values()) {
    const b = before.get(gs.user_id) ?? new Set();
    const a = after.get(gs.user_id) ?? new Set();
    for (const id of b) if (!a.has(id)) send(gs, 'CHANNEL_DELETE', { id, community_id: cid });
    for (const id of a) {
      if (!b.has(id)) send(gs, 'CHANNEL_CREATE', channelOut(channels.get(id)));
      else if (changedChannel === id) send(gs, 'CHANNEL_UPDATE', channelOut(channels.get(id)));
    }
  }
}

function authUser(req) {
  const h = req.headers.authorization ?? '';
  const t = h.startsWith('Bearer ') ? h.slice(7) : '';
  const a = accessTokens.get(t);
  if (!a || a.exp < Date.now()) throw new HttpError(401, 'unauthorized', 'bad token');
  const s = sessions.get(a.session_id);
  if (!s || s.revoked) throw new HttpError(401, 'unauthorized', 'session ended');
  s.last_seen_at = now();
  return { uid: s.user_id, session: s };
}

function issue(res, req, s, withUser) {
  const access = token();
  accessTokens.set(access, { session_id: s.id, exp: Date.now() + 900_000 });
  s.refresh = token();
  const web = req.headers['x-hearth-client'] === 'web';
  const body = { access_token: access, expires_in: 900 };
  if (withUser) body.user = publicUser(users.get(s.user_id));
  if (web) res.setHeader('Set-Cookie', `hearth_refresh=${s.refresh}; HttpOnly; SameSite=Strict; Path=/api/v1/auth`);
  else body.refresh_token = s.refresh;
  return body;
}
function cookie(req, name) {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return null;
}

// ---- routes ----
const routes = [];
const route = (method, path, fn) => routes.push({ method, re: new RegExp('^' + path.replace(/\{(\w+)\}/g, '(?<$1>[^/]+)') + '$'), fn });

route('POST', '/api/v1/auth/register', (req, res, b) => {
  if (!/^[a-z0-9_.]{2,32}$/.test(b.username ?? '')) throw bad('bad username', { username: 'invalid' });
  if (typeof b.password !== 'string' || b.password.length < 8) throw bad('password too short', { password: 'too short' });
  if ([...users.values()].some((u) => u.username === b.username.toLowerCase())) throw new HttpError(409, 'conflict', 'username taken');
  const u = { id: snowflake(), username: b.username, password: b.password, display_name: b.display_name ?? null, created_at: now() };
  users.set(u.id, u);
  const s = { id: snowflake(), user_id: u.id, created_at: now(), last_seen_at: now(), user_agent: req.headers['user-agent'] ?? null };
  sessions.set(s.id, s);
  return [201, issue(res, req, s, true)];
});
route('POST', '/api/v1/auth/login', (req, res, b) => {
  const u = [...users.values()].find((x) => x.username === String(b.login ?? '').toLowerCase());
  if (!u || u.password !== b.password) throw new HttpError(401, 'invalid_credentials', 'wrong login or password');
  const s = { id: snowflake(), user_id: u.id, created_at: now(), last_seen_at: now(), user_agent: req.headers['user-agent'] ?? null };
  sessions.set(s.id, s);
  return [200, issue(res, req, s, true)];
});
route('POST', '/api/v1/auth/refresh', (req, res, b) => {
  const rt = b.refresh_token ?? cookie(req, 'hearth_refresh');
  const s = [...sessions.values()].find((x) => x.refresh === rt && !x.revoked);
  if (!rt || !s) throw new HttpError(401, 'unauthorized', 'no session');
  return [200, issue(res, req, s, false)];
});
function revoke(s) {
  s.revoked = true;
  for (const [t, a] of accessTokens) if (a.session_id === s.id) accessTokens.delete(t);
  closeSessionSockets(s.id, 4010);
}
route('POST', '/api/v1/auth/logout', (req, res) => {
  const { session } = authUser(req);
  revoke(session);
  res.setHeader('Set-Cookie', 'hearth_refresh=; HttpOnly; SameSite=Strict; Path=/api/v1/auth; Max-Age=0');
  return [204];
});
route('GET', '/api/v1/auth/sessions', (req) => {
  const { uid, session } = authUser(req);
  return [200, [...sessions.values()].filter((s) => s.user_id === uid && !s.revoked).map((s) => ({ id: s.id, created_at: s.created_at, last_seen_at: s.last_seen_at, user_agent: s.user_agent, current: s.id === session.id }))];
});
route('DELETE', '/api/v1/auth/sessions/{id}', (req, res, b, p) => {
  const { uid } = authUser(req);
  const s = sessions.get(p.id);
  if (!s || s.user_id !== uid) throw new HttpError(404, 'not_found', 'no session');
  revoke(s);
  return [204];
});
route('GET', '/api/v1/users/@me', (req) => [200, publicUser(users.get(authUser(req).uid))]);
route('PATCH', '/api/v1/users/@me', (req, res, b) => {
  const u = users.get(authUser(req).uid);
  if ('display_name' in b) u.display_name = b.display_name;
  return [200, publicUser(u)];
});
route('GET', '/api/v1/users/{id}', (req, res, b, p) => {
  authUser(req);
  const u = users.get(p.id);
  if (!u) throw new HttpError(404, 'not_found', 'no user');
  return [200, publicUser(u)];
});
route('POST', '/api/v1/communities', (req, res, b) => {
  const { uid } = authUser(req);
  if (!b.name?.trim()) throw bad('name required', { name: 'required' });
  const c = { id: snowflake(), name: b.name.trim(), owner_id: uid, icon_url: null, created_at: now() };
  communities.set(c.id, c);
  roles.set(c.id, { id: c.id, community_id: c.id, name: '@everyone', permissions: ['VIEW_CHANNEL', 'SEND_MESSAGES', 'READ_MESSAGE_HISTORY', 'ADD_REACTIONS', 'CREATE_INVITE', 'CONNECT', 'SPEAK'], color: null, position: 0 });
  members.set(`${c.id}:${uid}`, { cid: c.id, user_id: uid, roles: [], nickname: null, joined_at: now(), timed_out_until: null });
  const ch = { id: snowflake(), community_id: c.id, name: 'general', kind: 'text', topic: null, position: 0, parent_id: null, overwrites: [] };
  channels.set(ch.id, ch);
  dispatch('COMMUNITY_CREATE', communityFull(c, uid), (u) => u === uid);
  return [201, c];
});
route('GET', '/api/v1/communities', (req) => {
  const { uid } = authUser(req);
  return [200, [...communities.values()].filter((c) => members.has(`${c.id}:${uid}`))];
});
route('GET', '/api/v1/communities/{id}', (req, res, b, p) => [200, getCommunity(authUser(req).uid, p.id)]);
route('PATCH', '/api/v1/communities/{id}', (req, res, b, p) => {
  const { uid } = authUser(req);
  const c = getCommunity(uid, p.id);
  need(uid, c.id, null, 'MANAGE_COMMUNITY');
  if (b.name) c.name = b.name;
  dispatch('COMMUNITY_UPDATE', c, toMembers(c.id));
  return [200, c];
});
route('DELETE', '/api/v1/communities/{id}', (req, res, b, p) => {
  const { uid } = authUser(req);
  const c = getCommunity(uid, p.id);
  if (c.owner_id !== uid) throw new HttpError(403, 'forbidden', 'owner only');
  dispatch('COMMUNITY_DELETE', { id: c.id }, toMembers(c.id));
  communities.delete(c.id);
  return [204];
});
route('GET', '/api/v1/communities/{id}/channels', (req, res, b, p) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  return [200, [...channels.values()].filter((ch) => ch.community_id === p.id && canSeeChannel(uid, ch)).map(channelOut)];
});
route('POST', '/api/v1/communities/{id}/channels', (req, res, b, p) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  need(uid, p.id, null, 'MANAGE_CHANNELS');
  const pos = [...channels.values()].filter((c) => c.community_id === p.id).length;
  const ch = { id: snowflake(), community_id: p.id, name: b.name, kind: b.kind ?? 'text', topic: b.topic ?? null, position: pos, parent_id: b.parent_id ?? null, overwrites: [] };
  channels.set(ch.id, ch);
  dispatch('CHANNEL_CREATE', channelOut(ch), toViewers(ch));
  return [201, channelOut(ch)];
});
route('GET', '/api/v1/communities/{id}/members', (req, res, b, p, q) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  let list = [...members.values()].filter((m) => m.cid === p.id).sort((a, c) => cmp(a.user_id, c.user_id));
  if (q.get('after')) list = list.filter((m) => cmp(m.user_id, q.get('after')) > 0);
  return [200, list.slice(0, Number(q.get('limit') ?? 50)).map(memberOut)];
});
function removeMember(cid, target) {
  const before = visibleSnapshot(cid);
  dispatch('MEMBER_REMOVE', { community_id: cid, user: summary(users.get(target)) }, toMembers(cid));
  members.delete(`${cid}:${target}`);
  void before;
}
route('DELETE', '/api/v1/communities/{id}/members/@me', (req, res, b, p) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  removeMember(p.id, uid);
  return [204];
});
route('DELETE', '/api/v1/communities/{id}/members/{user_id}', (req, res, b, p) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  need(uid, p.id, null, 'KICK_MEMBERS');
  removeMember(p.id, p.user_id);
  return [204];
});
route('PATCH', '/api/v1/communities/{id}/members/{user_id}', (req, res, b, p) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  const m = members.get(`${p.id}:${p.user_id}`);
  if (!m) throw new HttpError(404, 'not_found', 'no member');
  if ('timed_out_until' in b) { need(uid, p.id, null, 'MODERATE_MEMBERS'); m.timed_out_until = b.timed_out_until; }
  if ('nickname' in b) m.nickname = b.nickname;
  dispatch('MEMBER_UPDATE', { ...memberOut(m), community_id: p.id }, toMembers(p.id));
  return [200, memberOut(m)];
});
route('PUT', '/api/v1/communities/{id}/bans/{user_id}', (req, res, b, p) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  need(uid, p.id, null, 'BAN_MEMBERS');
  bans.add(`${p.id}:${p.user_id}`);
  if (members.has(`${p.id}:${p.user_id}`)) removeMember(p.id, p.user_id);
  return [204];
});
route('POST', '/api/v1/communities/{id}/invites', (req, res, b, p) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  need(uid, p.id, null, 'CREATE_INVITE');
  const inv = { code: randomBytes(6).toString('base64url'), community_id: p.id, uses: 0, max_uses: b.max_uses ?? null, expires_at: b.max_age_seconds ? new Date(Date.now() + b.max_age_seconds * 1000).toISOString() : null };
  invites.set(inv.code, inv);
  return [201, inv];
});
route('GET', '/api/v1/invites/{code}', (req, res, b, p) => {
  const inv = invites.get(p.code);
  if (!inv) throw new HttpError(404, 'not_found', 'no invite');
  const c = communities.get(inv.community_id);
  return [200, { code: inv.code, community: c, member_count: [...members.values()].filter((m) => m.cid === c.id).length, expires_at: inv.expires_at }];
});
route('POST', '/api/v1/invites/{code}', (req, res, b, p) => {
  const { uid } = authUser(req);
  const inv = invites.get(p.code);
  if (!inv || (inv.max_uses && inv.uses >= inv.max_uses)) throw new HttpError(404, 'not_found', 'no invite');
  if (bans.has(`${inv.community_id}:${uid}`)) throw new HttpError(403, 'forbidden', 'banned');
  const c = communities.get(inv.community_id);
  if (!members.has(`${c.id}:${uid}`)) {
    inv.uses++;
    const m = { cid: c.id, user_id: uid, roles: [], nickname: null, joined_at: now(), timed_out_until: null };
    members.set(`${c.id}:${uid}`, m);
    dispatch('MEMBER_ADD', { ...memberOut(m), community_id: c.id }, (u) => u !== uid && members.has(`${c.id}:${u}`));
    dispatch('COMMUNITY_CREATE', communityFull(c, uid), (u) => u === uid);
    if (online(uid)) presence(uid, 'online');
  }
  return [200, c];
});
route('GET', '/api/v1/communities/{id}/roles', (req, res, b, p) => {
  getCommunity(authUser(req).uid, p.id);
  return [200, [...roles.values()].filter((r) => r.community_id === p.id)];
});
route('POST', '/api/v1/communities/{id}/roles', (req, res, b, p) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  need(uid, p.id, null, 'MANAGE_ROLES');
  const r = { id: snowflake(), community_id: p.id, name: b.name, permissions: b.permissions ?? [], color: b.color ?? null, position: b.position ?? [...roles.values()].filter((x) => x.community_id === p.id).length };
  roles.set(r.id, r);
  dispatch('ROLE_CREATE', r, toMembers(p.id));
  return [201, r];
});
route('PATCH', '/api/v1/communities/{id}/roles/{role_id}', (req, res, b, p) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  need(uid, p.id, null, 'MANAGE_ROLES');
  const r = roles.get(p.role_id);
  if (!r) throw new HttpError(404, 'not_found', 'no role');
  const before = visibleSnapshot(p.id);
  Object.assign(r, Object.fromEntries(Object.entries(b).filter(([k]) => ['name', 'permissions', 'color', 'position'].includes(k))));
  dispatch('ROLE_UPDATE', r, toMembers(p.id));
  diffVisibility(p.id, before, null);
  return [200, r];
});
route('DELETE', '/api/v1/communities/{id}/roles/{role_id}', (req, res, b, p) => {
  const { uid } = authUser(req);
  getCommunity(uid, p.id);
  need(uid, p.id, null, 'MANAGE_ROLES');
  roles.delete(p.role_id);
  for (const m of members.values()) m.roles = m.roles.filter((x) => x !== p.role_id);
  dispatch('ROLE_DELETE', { community_id: p.id, role_id: p.role_id }, toMembers(p.id));
  return [204];
});
for (const method of ['PUT', 'DELETE']) {
  route(method, '/api/v1/communities/{id}/members/{user_id}/roles/{role_id}', (req, res, b, p) => {
    const { uid } = authUser(req);
    getCommunity(uid, p.id);
    need(uid, p.id, null, 'MANAGE_ROLES');
    const m = members.get(`${p.id}:${p.user_id}`);
    const before = visibleSnapshot(p.id);
    m.roles = method === 'PUT' ? [...new Set([...m.roles, p.role_id])] : m.roles.filter((x) => x !== p.role_id);
    dispatch('MEMBER_UPDATE', { ...memberOut(m), community_id: p.id }, toMembers(p.id));
    diffVisibility(p.id, before, null);
    return [204];
  });
  route(method, '/api/v1/channels/{id}/overwrites/{target_id}', (req, res, b, p) => {
    const { uid } = authUser(req);
    const ch = getChannel(uid, p.id);
    need(uid, ch.community_id, ch, 'MANAGE_ROLES');
    const before = visibleSnapshot(ch.community_id);
    ch.overwrites = ch.overwrites.filter((o) => o.target_id !== p.target_id);
    if (method === 'PUT') ch.overwrites.push({ target_id: p.target_id, target_type: b.target_type, allow: b.allow ?? [], deny: b.deny ?? [] });
    diffVisibility(ch.community_id, before, ch.id);
    return [204];
  });
}
route('GET', '/api/v1/channels/{id}', (req, res, b, p) => [200, channelOut(getChannel(authUser(req).uid, p.id))]);
route('PATCH', '/api/v1/channels/{id}', (req, res, b, p) => {
  const { uid } = authUser(req);
  const ch = getChannel(uid, p.id);
  need(uid, ch.community_id, ch, 'MANAGE_CHANNELS');
  for (const k of ['name', 'topic', 'position', 'parent_id']) if (k in b) ch[k] = b[k];
  dispatch('CHANNEL_UPDATE', channelOut(ch), toViewers(ch));
  return [200, channelOut(ch)];
});
route('DELETE', '/api/v1/channels/{id}', (req, res, b, p) => {
  const { uid } = authUser(req);
  const ch = getChannel(uid, p.id);
  need(uid, ch.community_id, ch, 'MANAGE_CHANNELS');
  dispatch('CHANNEL_DELETE', { id: ch.id, community_id: ch.community_id }, toViewers(ch));
  channels.delete(ch.id);
  return [204];
});
route('GET', '/api/v1/dms', (req) => {
  const { uid } = authUser(req);
  return [200, [...channels.values()].filter((c) => c.recipients?.includes(uid)).map(channelOut)];
});
route('POST', '/api/v1/dms', (req, res, b) => {
  const { uid } = authUser(req);
  const ids = [...new Set([uid, ...(b.user_ids ?? [])])];
  if (ids.length === 2) {
    const existing = [...channels.values()].find((c) => c.kind === 'dm' && ids.every((i) => c.recipients.includes(i)));
    if (existing) return [200, channelOut(existing)];
  }
  const ch = { id: snowflake(), community_id: null, name: null, kind: ids.length === 2 ? 'dm' : 'group_dm', topic: null, position: 0, parent_id: null, recipients: ids };
  channels.set(ch.id, ch);
  dispatch('CHANNEL_CREATE', channelOut(ch), (u) => ids.includes(u));
  return [201, channelOut(ch)];
});
route('GET', '/api/v1/channels/{id}/messages', (req, res, b, p, q) => {
  const { uid } = authUser(req);
  const ch = getChannel(uid, p.id);
  if (ch.community_id) need(uid, ch.community_id, ch, 'READ_MESSAGE_HISTORY');
  const limit = Math.min(100, Math.max(1, Number(q.get('limit') ?? 50)));
  let list = messages.get(ch.id) ?? [];
  if (q.get('after')) list = list.filter((m) => cmp(m.id, q.get('after')) > 0).slice(0, limit);
  else {
    if (q.get('before')) list = list.filter((m) => cmp(m.id, q.get('before')) < 0);
    list = list.slice(-limit).reverse();
  }
  return [200, list.map((m) => msgOut(m, uid))];
});
route('POST', '/api/v1/channels/{id}/messages', (req, res, b, p) => {
  const { uid } = authUser(req);
  const ch = getChannel(uid, p.id);
  if (ch.community_id) need(uid, ch.community_id, ch, 'SEND_MESSAGES');
  const content = String(b.content ?? '').trim();
  if (!content || content.length > 4000) throw bad('content must be 1-4000 characters', { content: 'length' });
  const key = b.nonce ? `${uid}:${ch.id}:${b.nonce}` : null;
  if (key && nonces.has(key)) {
    const m = (messages.get(ch.id) ?? []).find((x) => x.id === nonces.get(key));
    if (m) return [200, msgOut(m, uid)];
  }
  const mentions = [...content.matchAll(/<@!?(\d+)>/g)].map((x) => x[1]);
  const m = { id: snowflake(), channel_id: ch.id, community_id: ch.community_id, author_id: uid, content, created_at: now(), edited_at: null, reply_to_id: b.reply_to_id ?? null, mentions, attachments: [], pinned: false, nonce: b.nonce ?? null };
  if (!messages.has(ch.id)) messages.set(ch.id, []);
  messages.get(ch.id).push(m);
  if (key) nonces.set(key, m.id);
  for (const gs of gwSessions.values()) if (canSeeChannel(gs.user_id, ch)) send(gs, 'MESSAGE_CREATE', msgOut(m, gs.user_id));
  return [201, msgOut(m, uid)];
});
function findMsg(uid, chid, mid) {
  const ch = getChannel(uid, chid);
  const m = (messages.get(ch.id) ?? []).find((x) => x.id === mid);
  if (!m) throw new HttpError(404, 'not_found', 'no message');
  return { ch, m };
}
route('GET', '/api/v1/channels/{id}/messages/{mid}', (req, res, b, p) => {
  const { uid } = authUser(req);
  return [200, msgOut(findMsg(uid, p.id, p.mid).m, uid)];
});
route('PATCH', '/api/v1/channels/{id}/messages/{mid}', (req, res, b, p) => {
  const { uid } = authUser(req);
  const { ch, m } = findMsg(uid, p.id, p.mid);
  if (m.author_id !== uid) throw new HttpError(403, 'forbidden', 'not yours');
  m.content = String(b.content).trim();
  m.edited_at = now();
  dispatch('MESSAGE_UPDATE', msgOut(m, uid), toViewers(ch));
  return [200, msgOut(m, uid)];
});
route('DELETE', '/api/v1/channels/{id}/messages/{mid}', (req, res, b, p) => {
  const { uid } = authUser(req);
  const { ch, m } = findMsg(uid, p.id, p.mid);
  if (m.author_id !== uid) need(uid, ch.community_id, ch, 'MANAGE_MESSAGES');
  messages.set(ch.id, messages.get(ch.id).filter((x) => x.id !== m.id));
  dispatch('MESSAGE_DELETE', { id: m.id, channel_id: ch.id, community_id: ch.community_id }, toViewers(ch));
  return [204];
});
for (const method of ['PUT', 'DELETE']) {
  route(method, '/api/v1/channels/{id}/messages/{mid}/reactions/{emoji}', (req, res, b, p) => {
    const { uid } = authUser(req);
    const { ch, m } = findMsg(uid, p.id, p.mid);
    const emoji = decodeURIComponent(p.emoji);
    if (!reactions.has(m.id)) reactions.set(m.id, new Map());
    const r = reactions.get(m.id);
    if (!r.has(emoji)) r.set(emoji, new Set());
    const set = r.get(emoji);
    const had = set.has(uid);
    if (method === 'PUT' ? had : !had) return [204];
    if (method === 'PUT') set.add(uid); else set.delete(uid);
    dispatch(method === 'PUT' ? 'REACTION_ADD' : 'REACTION_REMOVE', { channel_id: ch.id, message_id: m.id, user_id: uid, emoji }, toViewers(ch));
    return [204];
  });
  route(method, '/api/v1/channels/{id}/pins/{mid}', (req, res, b, p) => {
    const { uid } = authUser(req);
    const { ch, m } = findMsg(uid, p.id, p.mid);
    if (ch.community_id) need(uid, ch.community_id, ch, 'MANAGE_MESSAGES');
    m.pinned = method === 'PUT';
    dispatch('MESSAGE_UPDATE', { id: m.id, channel_id: ch.id, pinned: m.pinned }, toViewers(ch));
    return [204];
  });
}
route('GET', '/api/v1/channels/{id}/pins', (req, res, b, p) => {
  const { uid } = authUser(req);
  const ch = getChannel(uid, p.id);
  return [200, (messages.get(ch.id) ?? []).filter((m) => m.pinned).map((m) => msgOut(m, uid))];
});
route('POST', '/api/v1/channels/{id}/typing', (req, res, b, p) => {
  const { uid } = authUser(req);
  const ch = getChannel(uid, p.id);
  dispatch('TYPING_START', { channel_id: ch.id, user_id: uid, community_id: ch.community_id, timestamp: now() }, (u) => u !== uid && canSeeChannel(u, ch));
  return [204];
});
route('PUT', '/api/v1/channels/{id}/read', (req, res, b, p) => {
  const { uid } = authUser(req);
  const ch = getChannel(uid, p.id);
  const rs = { channel_id: ch.id, last_read_id: b.message_id, mention_count: 0 };
  readStates.set(`${uid}:${ch.id}`, rs);
  dispatch('READ_STATE_UPDATE', rs, (u) => u === uid);
  return [204];
});
route('GET', '/api/v1/read-states', (req) => {
  const { uid } = authUser(req);
  return [200, [...readStates.entries()].filter(([k]) => k.startsWith(`${uid}:`)).map(([, v]) => v)];
});

// ---- static files ----
const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.txt': 'text/plain', '.png': 'image/png', '.svg': 'image/svg+xml', '.ico': 'image/x-icon', '.woff2': 'font/woff2' };
function serveStatic(req, res, path) {
  if (!webDir) { res.writeHead(404); return res.end('no web dir'); }
  const clean = normalize(decodeURIComponent(path)).replace(/^(\.\.[/\\])+/, '');
  const candidates = clean === '/' ? ['index.html'] : [clean, `${clean}.html`, join(clean, 'index.html')];
  for (const c of candidates) {
    const file = join(webDir, c);
    if (!file.startsWith(webDir)) continue;
    if (existsSync(file) && statSync(file).isFile()) {
      res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
      return res.end(readFileSync(file));
    }
  }
  res.writeHead(404, { 'content-type': 'text/html' });
  res.end(existsSync(join(webDir, '404.html')) ? readFileSync(join(webDir, '404.html')) : 'not found');
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/healthz' || url.pathname === '/readyz') { res.writeHead(200); return res.end('ok'); }
  if (!url.pathname.startsWith('/api/')) return serveStatic(req, res, url.pathname);
  let raw = '';
  req.on('data', (c) => (raw += c));
  req.on('end', () => {
    const reply = (status, body) => {
      res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    try {
      const r = routes.find((x) => x.method === req.method && x.re.test(url.pathname));
      if (!r) throw new HttpError(404, 'not_found', 'no route');
      let body = {};
      if (raw) {
        try { body = JSON.parse(raw); } catch { throw bad('invalid JSON'); }
      }
      const params = r.re.exec(url.pathname).groups ?? {};
      const [status, out] = r.fn(req, res, body, params, url.searchParams);
      reply(status, out);
    } catch (e) {
      if (e instanceof HttpError) reply(e.status, { error: { code: e.code, message: e.message, details: e.details } });
      else { console.error(e); reply(500, { error: { code: 'internal', message: 'internal error', details: {} } }); }
    }
  });
});

const wss = new WebSocketServer({ server, path: '/api/v1/gateway' });
wss.on('connection', (ws) => {
  sockets.add(ws);
  let gs = null;
  let sid = null;
  ws.send(JSON.stringify({ op: 'hello', d: { heartbeat_interval_ms: 15000 } }));
  const ready = (uid, authSession) => {
    sid = snowflake();
    gs = { user_id: uid, auth_session: authSession, seq: 0, buffer: [], socket: ws };
    gwSessions.set(sid, gs);
    const cs = [...communities.values()].filter((c) => members.has(`${c.id}:${uid}`));
    const peers = new Set(cs.flatMap((c) => [...members.values()].filter((m) => m.cid === c.id).map((m) => m.user_id)));
    send(gs, 'READY', {
      session_id: sid,
      user: publicUser(users.get(uid)),
      communities: cs.map((c) => communityFull(c, uid)),
      dms: [...channels.values()].filter((c) => c.recipients?.includes(uid)).map(channelOut),
      read_states: [...readStates.entries()].filter(([k]) => k.startsWith(`${uid}:`)).map(([, v]) => v),
      presences: [...peers].map((p) => ({ user_id: p, status: online(p) ? 'online' : 'offline' })),
    });
    presence(uid, 'online');
  };
  const auth = (tok) => {
    const a = accessTokens.get(tok);
    const s = a && sessions.get(a.session_id);
    if (!a || !s || s.revoked || a.exp < Date.now()) { ws.close(4004, 'authentication failed'); return null; }
    return s;
  };
  ws.on('message', (raw) => {
    let f;
    try { f = JSON.parse(String(raw)); } catch { return ws.close(4002, 'decode error'); }
    if (f.op === 'heartbeat') return ws.send(JSON.stringify({ op: 'heartbeat_ack', d: {} }));
    if (f.op === 'identify') {
      const s = auth(f.d?.token);
      if (s) ready(s.user_id, s.id);
      return;
    }
    if (f.op === 'resume') {
      const s = auth(f.d?.token);
      if (!s) return;
      const old = gwSessions.get(f.d.session_id);
      if (!old || old.user_id !== s.user_id) return ws.send(JSON.stringify({ op: 'invalid_session', d: { resumable: false } }));
      gs = old;
      sid = f.d.session_id;
      gs.socket = ws;
      for (const fr of gs.buffer) if (fr.s > f.d.s) ws.send(JSON.stringify(fr));
      send(gs, 'RESUMED', {});
      return;
    }
    if (f.op === 'presence_update' && gs) presence(gs.user_id, f.d?.status === 'invisible' ? 'offline' : f.d?.status);
  });
  ws.on('close', () => {
    sockets.delete(ws);
    if (gs && gs.socket === ws) {
      gs.socket = null;
      if (!online(gs.user_id)) presence(gs.user_id, 'offline');
    }
  });
});

server.listen(Number(port), host, () => console.log(`fake hearth listening on http://${host}:${port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
