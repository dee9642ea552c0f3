// Smoke test of a running scripts/cluster.sh cluster (Node 20+, run with
// --experimental-websocket on Node 20/21):
//   node --experimental-websocket scripts/cluster-smoke.mjs http://127.0.0.1:8090 8081 8082 8083
// Through nginx: register, create a community, open the gateway (WebSocket
// upgrade through the proxy) and identify; then send one message on each node
// directly and expect every one as MESSAGE_CREATE on the gateway (cross-node
// fan-out over the NATS cluster).
const [lb, ...ports] = process.argv.slice(2);
if (!lb || ports.length === 0) {
  console.error("usage: cluster-smoke.mjs LB_URL NODE_PORT...");
  process.exit(2);
}
const fail = (msg) => {
  console.error(`cluster smoke: FAILED: ${msg}`);
  process.exit(1);
};
let contents = [];
const seen = new Set();
const timer = setTimeout(
  () => fail(`timed out after 30 s; not received: ${JSON.stringify(contents.filter((c) => !seen.has(c)))}`),
  30_000,
);

async function call(base, method, path, token, body) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) fail(`${method} ${base}${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const name = `smoke${Date.now().toString(36)}`;
const { access_token: token } = await call(lb, "POST", "/auth/register", null, {
  username: name,
  password: "correct horse battery",
});
const community = await call(lb, "POST", "/communities", token, { name: "Cluster smoke" });
const [channel] = await call(lb, "GET", `/communities/${community.id}/channels`, token);

const ws = new WebSocket(`${lb.replace(/^http/, "ws")}/api/v1/gateway`);
let ready;
const readyP = new Promise((r) => (ready = r));
let waiting = null;
ws.onerror = () => fail("gateway WebSocket error (upgrade through nginx?)");
ws.onclose = (e) => fail(`gateway closed ${e.code} ${e.reason}`);
ws.onmessage = (e) => {
  const f = JSON.parse(e.data);
  if (f.op === "hello") ws.send(JSON.stringify({ op: "identify", d: { token } }));
  if (f.op === "dispatch" && f.t === "READY") ready();
  if (f.op === "dispatch" && f.t === "MESSAGE_CREATE") {
    seen.add(f.d.content);
    if (waiting && waiting.every((c) => seen.has(c))) waiting.done();
  }
};
await readyP;

contents = ports.map((p) => `hello from node :${p}`);
const all = new Promise((done) => (waiting = { every: (f) => contents.every(f), done }));
for (const [i, p] of ports.entries()) {
  await call(`http://127.0.0.1:${p}`, "POST", `/channels/${channel.id}/messages`, token, {
    content: contents[i],
    nonce: `${name}-${i}`,
  });
}
await all;
clearTimeout(timer);
ws.onclose = null;
ws.close();
console.log(`cluster smoke: ok (gateway through ${lb} got messages sent on ${ports.length} nodes)`);
process.exit(0);
