// What clients of a running three-node cluster see when its Redis or its Postgres
// restarts (issue 14, "faults"). Driven by scripts/cluster-faults.sh, which owns that
// Redis and that Postgres and is called back to stop and start them:
//   node --experimental-websocket scripts/cluster-faults.mjs LB_URL FAULT_SCRIPT NODE_PORT...
// (run as `FAULT_SCRIPT _fault redis-stop|redis-start|pg-stop|pg-start`.)
//
// Three users, each with a gateway session on a different node, share a channel.
// Redis restarted empty: connected clients keep getting messages; a client that
// reconnects and resumes gets either every missed dispatch or `invalid_session`, then
// identifies and reads what it missed (nothing lost either way); presence of the users
// still connected is back in READY within 30 s; the time until a send through the load
// balancer reaches all three clients is measured.
// Postgres restarted: while it is down every API call answers 503 `unavailable` (never
// 500, never a hang; at once after the first seconds, the nodes' database gate);
// afterwards the service is whole by itself (the same measure).
// One NATS server killed (SIGKILL): sends keep being acknowledged (the log is R3), and
// every acknowledged message reaches every session; the time until whole is measured
// from the kill, and again after the server is back.
// A node frozen (SIGSTOP) for 10 s: its client, like one whose heartbeat went
// unanswered, resumes through the load balancer on another node; sends through the
// balancer work meanwhile; when the node wakes it writes no stale state (fencing): a
// message sent to it is ordered after everything acknowledged meanwhile, nothing
// arrives twice or out of order, and the moved session still resumes from its record.
// Prints one JSON line of figures last.
import { execFileSync } from "node:child_process";

const [lb, faultScript, ...ports] = process.argv.slice(2);
if (!lb || !faultScript || ports.length < 3) {
  console.error("usage: cluster-faults.mjs LB_URL FAULT_SCRIPT NODE_PORT NODE_PORT NODE_PORT");
  process.exit(2);
}
const fail = (msg) => {
  console.error(`cluster faults: FAILED: ${msg}`);
  process.exit(1);
};
const say = (msg) => console.log(`cluster faults: ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fault = (what) => execFileSync(faultScript, ["_fault", what], { stdio: "inherit" });
const node = (i) => `http://127.0.0.1:${ports[i]}`;
const PASSWORD = "correct horse battery";

/** One API call with a deadline: {status, body, ms}; status 0 when it did not answer. */
async function api(base, method, path, token, body, timeoutMs = 15_000) {
  const t0 = Date.now();
  try {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, ms: Date.now() - t0 };
  } catch (e) {
    return { status: 0, body: String(e), ms: Date.now() - t0 };
  }
}

async function must(base, method, path, token, body) {
  const r = await api(base, method, path, token, body);
  if (r.status < 200 || r.status > 299) fail(`${method} ${base}${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function readyz(i) {
  try {
    const res = await fetch(`${node(i)}/readyz`, { signal: AbortSignal.timeout(3000) });
    return res.status;
  } catch {
    return 0;
  }
}

/** A gateway session: identifies (or resumes), heartbeats, keeps every dispatch. */
class Gateway {
  constructor(base, token) {
    this.base = base;
    this.token = token;
    this.events = [];
    this.s = 0;
    this.closed = null;
    this.waiters = [];
  }

  open(resume) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${this.base.replace(/^http/, "ws")}/api/v1/gateway`);
      this.ws = ws;
      this.closed = null;
      const timer = setTimeout(() => reject(new Error(`no READY/RESUMED/invalid_session from ${this.base}`)), 20_000);
      ws.onerror = () => {};
      ws.onclose = (e) => {
        this.closed = e.code;
        this.reason = e.reason;
        clearInterval(this.hb);
        this.wake();
      };
      ws.onmessage = (e) => {
        const f = JSON.parse(e.data);
        if (f.op === "hello") {
          this.hb = setInterval(() => ws.readyState === 1 && ws.send(JSON.stringify({ op: "heartbeat", d: { s: this.s } })), f.d.heartbeat_interval_ms / 2);
          ws.send(JSON.stringify(resume ? { op: "resume", d: { token: this.token, session_id: this.sessionId, s: this.s } } : { op: "identify", d: { token: this.token } }));
        } else if (f.op === "invalid_session") {
          clearTimeout(timer);
          resolve("invalid_session");
        } else if (f.op === "dispatch") {
          if (typeof f.s === "number") this.s = f.s;
          if (f.t === "READY") {
            this.sessionId = f.d.session_id;
            this.ready = f.d;
            clearTimeout(timer);
            resolve("ready");
          } else if (f.t === "RESUMED") {
            clearTimeout(timer);
            resolve("resumed");
          } else {
            this.events.push(f);
            this.wake();
          }
        }
      };
    });
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  contents() {
    return this.events.filter((f) => f.t === "MESSAGE_CREATE").map((f) => f.d.content);
  }

  /** Until a MESSAGE_CREATE with `content` arrived (true) or `ms` passed (false). */
  async got(content, ms) {
    const deadline = Date.now() + ms;
    while (!this.contents().includes(content)) {
      if (this.closed !== null || Date.now() > deadline) return false;
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
    return true;
  }

  close() {
    clearInterval(this.hb);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
    }
  }
}

// --- setup: three users, one channel, a session on each node ----------------------
const tag = Date.now().toString(36);
const users = [];
for (const n of ["a", "b", "c"]) {
  const r = await must(lb, "POST", "/auth/register", null, { username: `fault${n}${tag}`, password: PASSWORD });
  users.push({ name: `fault${n}${tag}`, token: r.access_token, id: r.user?.id });
}
for (const u of users) if (!u.id) u.id = (await must(lb, "GET", "/users/@me", u.token)).id;
const community = await must(lb, "POST", "/communities", users[0].token, { name: "Faults" });
const invite = await must(lb, "POST", `/communities/${community.id}/invites`, users[0].token, {});
for (const u of users.slice(1)) await must(lb, "POST", `/invites/${invite.code}`, u.token);
const [channel] = await must(lb, "GET", `/communities/${community.id}/channels`, users[0].token);
const gws = [];
for (const [i, u] of users.entries()) {
  const g = new Gateway(node(i), u.token);
  if ((await g.open(false)) !== "ready") fail(`user ${i} did not identify`);
  gws.push(g);
}
let n = 0;
/** Sends through the load balancer; the message's content, or null when not 201. */
async function send(prefix, statuses, timeoutMs = 15_000) {
  const content = `${prefix} ${++n}`;
  const r = await api(lb, "POST", `/channels/${channel.id}/messages`, users[n % 3].token, { content, nonce: `${tag}-${n}` }, timeoutMs);
  statuses?.push(r.status);
  if (r.status >= 500 && !(r.status === 503 && r.body?.error?.code === "unavailable")) fail(`a send: ${r.status} ${JSON.stringify(r.body)}`);
  return r.status === 201 ? content : null;
}
/** Whole: every node (of `nodes`) ready, and a send through the load balancer
 * reaches every open session. Sends it made go to `statuses`, and the acknowledged
 * ones to `acked`. */
async function whole(prefix, sessions, limitMs, { nodes = ports.map((_, i) => i), statuses, acked } = {}) {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    const codes = await Promise.all(nodes.map((i) => readyz(i)));
    if (codes.every((c) => c === 200)) {
      // Unanswered in 5 s (a request nginx passed to a node that then froze): not
      // whole yet.
      const c = await send(prefix, statuses, 5000);
      if (c) acked?.push(c);
      if (c) {
        const got = await Promise.all(sessions.map((g) => g.got(c, 5000)));
        if (got.every(Boolean)) return Date.now() - t0;
      }
    }
    await sleep(250);
  }
  fail(`${prefix}: not whole within ${limitMs} ms`);
}
const check = await send("before the faults");
for (const g of gws) if (!(await g.got(check, 10_000))) fail("a session did not get the first message");
say("three sessions, one per node, all receiving");
const figures = {};

// --- Redis restarts empty ----------------------------------------------------------
{
  // User 0 goes away before the restart and comes back after it to resume.
  const away = gws[0];
  const lastS = away.s;
  away.close();
  const t0 = Date.now();
  fault("redis-stop");
  const during = [];
  const tDown = Date.now();
  while (Date.now() - tDown < 3000) {
    const r = await api(lb, "GET", "/users/@me", users[1].token, undefined, 10_000);
    during.push(r.status);
    if (r.status >= 500 && !(r.status === 503 && r.body?.error?.code === "unavailable")) fail(`during the Redis outage: ${r.status} ${JSON.stringify(r.body)}`);
    await sleep(200);
  }
  // A send needs its channel's ordering lease, which lives in Redis: it may answer
  // 503 meanwhile (never 500), and if it answers 201 the message must not be lost.
  const sendStatuses = [];
  const missed = await send("sent while Redis was down", sendStatuses);
  fault("redis-start");
  const tBack = Date.now();
  const wholeMs = await whole("after Redis", gws.slice(1), 60_000);
  figures.redis = { outage_ms: tBack - t0, whole_after_back_ms: wholeMs, statuses_during: count(during), send_during: sendStatuses[0] };
  say(`Redis: whole ${wholeMs} ms after it was back (reads during the outage: ${JSON.stringify(figures.redis.statuses_during)}, a send: ${sendStatuses[0]})`);
  for (const g of gws.slice(1)) if (g.closed !== null) fail(`a connected session was closed (${g.closed}) by the Redis restart`);

  // The away client resumes on another node: every missed dispatch, or invalid_session.
  away.base = node(1);
  away.s = lastS;
  away.events = [];
  const outcome = await away.open(true);
  figures.redis.resume = outcome;
  if (outcome === "invalid_session") {
    if ((await away.open(false)) !== "ready") fail("identify after invalid_session");
  } else if (outcome !== "resumed") {
    fail(`resume after the Redis restart: ${outcome}`);
  }
  // Nothing lost either way: what it missed is in the history (or was replayed).
  const page = await must(lb, "GET", `/channels/${channel.id}/messages?limit=100`, users[0].token);
  const history = page.map((m) => m.content);
  if (missed && !history.includes(missed) && !away.contents().includes(missed)) fail(`"${missed}" (answered 201 while Redis was down) is lost`);
  say(`Redis: a session that was away resumed with '${outcome}'${missed ? "; the message sent during the outage is there" : ""}`);

  // Presence: users 1 and 2 never left; a fresh READY shows them online again.
  const tP = Date.now();
  for (;;) {
    const probe = new Gateway(node(2), users[0].token);
    await probe.open(false);
    const online = new Map((probe.ready.presences ?? []).map((p) => [p.user_id, p.status]));
    probe.close();
    if (online.get(users[1].id) === "online" && online.get(users[2].id) === "online") break;
    if (Date.now() - tBack > 30_000) fail(`presence not rebuilt 30 s after Redis came back: ${JSON.stringify([...online])}`);
    // Each probe leaves a resumable session (at most 16 a user): a dozen in 30 s.
    await sleep(2500);
  }
  figures.redis.presence_back_ms = Date.now() - tBack;
  say(`Redis: presence of the connected users back ${figures.redis.presence_back_ms} ms after Redis was (bound 30,000)`);
  gws[0] = away;
}

// --- Postgres restarts ---------------------------------------------------------------
{
  const t0 = Date.now();
  fault("pg-stop");
  const during = [];
  let slowest = 0;
  let slowestSettled = 0;
  const tDown = Date.now();
  let settled = 0;
  while (Date.now() - tDown < 6000 || settled < 10) {
    for (const [method, path, body] of [
      ["GET", `/communities`, undefined],
      ["POST", `/channels/${channel.id}/messages`, { content: "while Postgres is down" }],
    ]) {
      const sent = Date.now();
      const r = await api(lb, method, path, users[1].token, body, 15_000);
      during.push(r.status);
      slowest = Math.max(slowest, r.ms);
      // Once the nodes know (their probe: within ~2 s), answers come at once.
      if (sent - tDown > 3000) {
        slowestSettled = Math.max(slowestSettled, r.ms);
        settled++;
      }
      if (r.status === 0) fail(`${method} ${path} did not answer within 15 s while Postgres was down`);
      if (r.status >= 500 && !(r.status === 503 && r.body?.error?.code === "unavailable")) fail(`while Postgres was down: ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    await sleep(200);
  }
  if (!during.includes(503)) fail(`no 503 while Postgres was down: ${JSON.stringify(count(during))}`);
  if (slowestSettled > 1000) fail(`answers took up to ${slowestSettled} ms 3 s into the Postgres outage (the nodes should fail fast by then)`);
  fault("pg-start");
  const tBack = Date.now();
  const wholeMs = await whole("after Postgres", gws, 60_000);
  figures.postgres = { outage_ms: tBack - t0, whole_after_back_ms: wholeMs, statuses_during: count(during), slowest_answer_ms: slowest, slowest_after_3s_ms: slowestSettled };
  for (const g of gws) if (g.closed !== null) fail(`a session was closed (${g.closed}) by the Postgres restart`);
  say(`Postgres: whole ${wholeMs} ms after it was back (API during the outage: ${JSON.stringify(figures.postgres.statuses_during)}, slowest answer ${slowest} ms, ${slowestSettled} ms after the first 3 s)`);
}

// --- one NATS server killed ------------------------------------------------------------
/** Sends through the balancer for `ms`; {statuses, acked: contents answered 201}.
 * A send unanswered after 3 s counts as status 0 (one nginx had already passed to a
 * node that then froze waits for its read timeout; a client gives up first and
 * retries with its nonce). */
async function sendFor(prefix, ms) {
  const statuses = [];
  const acked = [];
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const c = await send(prefix, statuses, 3000);
    if (c) acked.push(c);
    await sleep(150);
  }
  return { statuses, acked };
}
/** Every message in `acked` reached every session in `sessions` (waiting up to `ms`). */
async function allDelivered(what, acked, sessions, ms) {
  for (const [i, g] of sessions.entries())
    for (const c of acked)
      if (!(await g.got(c, ms))) {
        if (g.closed !== null) fail(`${what}: session ${i} was closed (${g.closed} ${g.reason ?? ""}) before "${c}" reached it`);
        fail(`${what}: "${c}" (acknowledged) never reached session ${i} (it has ${g.contents().length} messages, the last "${g.contents().at(-1)}")`);
      }
}
/** Message ids each session got, in arrival order: strictly increasing, none twice. */
function inOrder(what, sessions) {
  for (const [i, g] of sessions.entries()) {
    const ids = g.events.filter((f) => f.t === "MESSAGE_CREATE").map((f) => BigInt(f.d.id));
    for (let k = 1; k < ids.length; k++)
      if (ids[k] <= ids[k - 1]) fail(`${what}: session ${i} got message ${ids[k]} after ${ids[k - 1]} (out of order or twice)`);
  }
}
{
  // An append whose acknowledgement was lost with the server is appended again
  // (events/appender.rs), and a send is answered 201 only once its event is stored.
  fault("nats-kill");
  const statuses = [];
  const acked = [];
  const wholeMs = await whole("with NATS server 2 dead", gws, 60_000, { statuses, acked });
  const more = await sendFor("while NATS server 2 is dead", 4000);
  statuses.push(...more.statuses);
  acked.push(...more.acked);
  if (more.acked.length === 0) fail(`no send acknowledged with one NATS server of three dead: ${JSON.stringify(count(more.statuses))}`);
  await allDelivered("NATS server killed", acked, gws, 20_000);
  for (const g of gws) if (g.closed !== null) fail(`a session was closed (${g.closed}) by the NATS kill`);
  fault("nats-start");
  const tBack = Date.now();
  const backMs = await whole("after NATS server 2 is back", gws, 60_000);
  inOrder("NATS server killed", gws);
  figures.nats = { whole_after_kill_ms: wholeMs, sends_during: count(statuses), acked_during: acked.length, whole_after_back_ms: backMs };
  say(`NATS: one server of three killed: sends during ${JSON.stringify(figures.nats.sends_during)}, every acknowledged one delivered; whole ${wholeMs} ms after the kill, ${backMs} ms after it was back`);
}

// --- a node frozen for 10 s ---------------------------------------------------------------
{
  const frozen = gws[2];
  const t0 = Date.now();
  fault("node-freeze");
  // The client notices as one does when its heartbeat goes unanswered, and resumes
  // through the balancer (which has the frozen node out of rotation, or skips it).
  await sleep(1000);
  // Frames already on their way when the node froze may still arrive in that second:
  // the client resumes from the last one it has (frozen.s), as a real one would.
  frozen.close();
  frozen.base = lb;
  let outcome = "";
  for (let attempt = 0; attempt < 10 && outcome !== "resumed"; attempt++) {
    outcome = await frozen.open(true).catch((e) => `error: ${e.message}`);
    if (outcome === "invalid_session") fail("the frozen node's session could not resume elsewhere (invalid_session)");
    if (outcome !== "resumed") await sleep(500);
  }
  if (outcome !== "resumed") fail(`the frozen node's session did not resume elsewhere: ${outcome}`);
  const resumedMs = Date.now() - t0;
  const statuses = [];
  const acked = [];
  await whole("with node 3 frozen", [gws[0], gws[1], frozen], 30_000, { nodes: [0, 1], statuses, acked });
  const wholeMs = Date.now() - t0;
  const more = await sendFor("while node 3 is frozen", Math.max(1000, 10_000 - (Date.now() - t0)));
  statuses.push(...more.statuses);
  acked.push(...more.acked);
  await allDelivered("node frozen", acked, [gws[0], gws[1], frozen], 20_000);
  const frozenFor = Date.now() - t0;
  fault("node-thaw");
  const tWake = Date.now();
  // Awake: a send straight to it and one through the balancer, both after
  // everything acknowledged meanwhile.
  const direct = await api(node(2), "POST", `/channels/${channel.id}/messages`, users[2].token, { content: `to the woken node ${++n}`, nonce: `${tag}-${n}` }, 15_000);
  if (direct.status !== 201) fail(`a send to the woken node: ${direct.status} ${JSON.stringify(direct.body)}`);
  const last = acked.length ? acked[acked.length - 1] : null;
  const sessions = [gws[0], gws[1], frozen];
  await allDelivered("node woken", [direct.body.content], sessions, 20_000);
  const backMs = await whole("after node 3 woke", sessions, 60_000);
  inOrder("node frozen", sessions);
  if (last) {
    const ids = new Map(frozen.events.filter((f) => f.t === "MESSAGE_CREATE").map((f) => [f.d.content, BigInt(f.d.id)]));
    if (!(BigInt(direct.body.id) > ids.get(last))) fail(`the woken node minted ${direct.body.id}, not after ${ids.get(last)} acknowledged while it slept`);
  }
  // The moved session's record belongs to its new node: the woken one did not
  // overwrite it, so it resumes once more, with nothing lost.
  const again = frozen.s;
  frozen.close();
  frozen.s = again;
  const missedWhileAway = await send("while the moved session is away");
  frozen.base = lb;
  const second = await frozen.open(true);
  if (second !== "resumed") fail(`the moved session resumed as '${second}' after the node woke (its record was overwritten?)`);
  if (missedWhileAway && !(await frozen.got(missedWhileAway, 10_000))) fail("the moved session's second resume lost a message");
  inOrder("node frozen, second resume", [frozen]);
  gws[2] = frozen;
  figures.sigstop = { frozen_ms: frozenFor, client_resumed_elsewhere_ms: resumedMs, sends_during: count(statuses), acked_during: acked.length, whole_while_frozen_ms: wholeMs, whole_after_wake_ms: backMs };
  say(`SIGSTOP: node 3 frozen ${frozenFor} ms: its client resumed elsewhere ${resumedMs} ms after the freeze (1 s of it the client's own wait); sends during ${JSON.stringify(figures.sigstop.sends_during)}; whole (without it) ${wholeMs} ms after the freeze, ${backMs} ms after it woke; no stale writes (order, record)`);
  if (Date.now() - tWake > 60_000) fail("not whole a minute after the node woke");
}

for (const g of gws) g.close();
console.log(JSON.stringify(figures));
process.exit(0);

function count(xs) {
  const out = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
