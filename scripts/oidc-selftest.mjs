#!/usr/bin/env node
// Checks the test OpenID Connect provider (scripts/oidc-provider.mjs) the way
// Hearth will use it: discovery, the authorization code flow with PKCE, state
// and nonce, the token exchange, and the ID token verified against the JWKS;
// then that each defect mode really produces that defect and nothing else,
// and that the provider refuses what it must (a code redeemed twice, a wrong
// code_verifier, a wrong secret, a missing code_challenge, a foreign
// redirect_uri). Node 18+ only: fetch and node:crypto, no packages.
//
//   node scripts/oidc-selftest.mjs [--url http://127.0.0.1:9400]
//
// Prints one line per check and `selftest: N passed, M failed`; exits 1 when
// anything failed.

import crypto from 'node:crypto';

const args = process.argv.slice(2);
const urlArg = args.indexOf('--url');
const ISSUER = (urlArg >= 0 ? args[urlArg + 1] : 'http://127.0.0.1:9400').replace(/\/+$/, '');
const CLIENT_ID = 'hearth-test';
const CLIENT_SECRET = 'hearth-test-secret';
// Nothing listens there: the flow stops at the Location header.
const REDIRECT_URI = 'http://127.0.0.1:5555/api/v1/auth/oidc/callback';

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed += 1; else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && detail ? `: ${detail}` : ''}`);
  return ok;
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const random = () => b64url(crypto.randomBytes(24));
const now = () => Math.floor(Date.now() / 1000);

async function getJson(url, init) {
  const res = await fetch(url, init);
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = { raw: text }; }
  return { status: res.status, body };
}

// --- the flow, as Hearth's server and a browser-less test would run it ------

// Starts a login at the provider and follows its redirects (carrying its
// cookies, as a browser would) until one leaves for the redirect_uri.
// Returns that URL, the number of hops it took and the request's secrets.
// loginHint null leaves login_hint out.
async function authorize(meta, { loginHint = 'alice', redirectUri = REDIRECT_URI, pkce = true } = {}) {
  const state = random();
  const nonce = random();
  const verifier = random() + random();
  const params = new URLSearchParams({
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid email profile',
    state,
    nonce,
  });
  if (pkce) {
    params.set('code_challenge', b64url(crypto.createHash('sha256').update(verifier).digest()));
    params.set('code_challenge_method', 'S256');
  }
  if (loginHint !== null) params.set('login_hint', loginHint);

  const origin = new URL(ISSUER).origin;
  const cookies = new Map();
  let url = new URL(`${meta.authorization_endpoint}?${params}`);
  for (let hops = 1; hops <= 10; hops += 1) {
    const res = await fetch(url, {
      redirect: 'manual',
      headers: cookies.size ? { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {},
    });
    for (const line of res.headers.getSetCookie?.() ?? []) {
      const pair = line.split(';')[0];
      const i = pair.indexOf('=');
      cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) {
      return { status: res.status, body: await res.text(), hops, state, nonce, verifier };
    }
    const next = new URL(location, url);
    if (next.origin !== origin) {
      return { status: res.status, location: next, hops, cookies: cookies.size, state, nonce, verifier };
    }
    url = next;
  }
  throw new Error('more than 10 redirects inside the provider');
}

async function exchange(meta, code, verifier, { basic = false, secret = CLIENT_SECRET } = {}) {
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT_URI,
    code_verifier: verifier,
  });
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) {
    const enc = encodeURIComponent;
    headers.authorization = `Basic ${Buffer.from(`${enc(CLIENT_ID)}:${enc(secret)}`).toString('base64')}`;
  } else {
    form.set('client_id', CLIENT_ID);
    form.set('client_secret', secret);
  }
  return getJson(meta.token_endpoint, { method: 'POST', headers, body: form });
}

function decodeJwt(token) {
  const [h, p, s] = String(token).split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    payload: JSON.parse(Buffer.from(p, 'base64url')),
    input: Buffer.from(`${h}.${p}`),
    signature: Buffer.from(s, 'base64url'),
  };
}

// RS256 against the key the JWKS names in the token's header.
function signatureValid(jwks, jwt) {
  if (jwt.header.alg !== 'RS256') return false;
  const jwk = jwks.keys.find((k) => k.kid === jwt.header.kid);
  if (!jwk) return false;
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  return crypto.verify('RSA-SHA256', jwt.input, key, jwt.signature);
}

// Every check a relying party makes on an ID token, by name, so a defect
// mode can be tested as "exactly this one fails".
function idTokenChecks(jwks, jwt, nonce, sub) {
  const p = jwt.payload;
  const t = now();
  return {
    signature: signatureValid(jwks, jwt),
    iss: p.iss === ISSUER,
    aud: p.aud === CLIENT_ID || (Array.isArray(p.aud) && p.aud.length === 1 && p.aud[0] === CLIENT_ID),
    exp: typeof p.exp === 'number' && p.exp > t,
    iat: typeof p.iat === 'number' && p.iat <= t + 60,
    nonce: p.nonce === nonce,
    sub: p.sub === sub,
    email: p.email === `${sub}@oidc.test` && p.email_verified === true,
    name: p.name === sub,
  };
}

const failing = (checks) => Object.entries(checks).filter(([, ok]) => !ok).map(([k]) => k);

async function setMode(mode, account) {
  const res = await getJson(`${ISSUER}/test/mode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mode, account }),
  });
  const now = account === undefined ? res.body.mode : (res.body.accounts?.[account] ?? 'normal');
  if (res.status !== 200 || now !== mode) throw new Error(`could not set mode ${mode}: ${res.status} ${JSON.stringify(res.body)}`);
}

// A full login ending with the token response; checks along the way.
async function login(meta, label, opts = {}) {
  const a = await authorize(meta, opts);
  if (!check(`${label}: authorization redirects to the redirect_uri`, a.location?.href.startsWith(REDIRECT_URI), `${a.status} ${a.body ?? a.location}`)) return undefined;
  const q = a.location.searchParams;
  check(`${label}: state comes back`, q.get('state') === a.state, q.get('state'));
  check(`${label}: iss comes back (RFC 9207)`, q.get('iss') === ISSUER, q.get('iss'));
  if (!check(`${label}: code present`, !!q.get('code'), a.location.href)) return undefined;
  const tokens = await exchange(meta, q.get('code'), a.verifier, opts);
  if (!check(`${label}: token exchange 200`, tokens.status === 200 && !!tokens.body.id_token, `${tokens.status} ${JSON.stringify(tokens.body)}`)) return undefined;
  return { ...a, code: q.get('code'), tokens: tokens.body, jwt: decodeJwt(tokens.body.id_token) };
}

async function main() {
  console.log(`checking the OIDC provider at ${ISSUER}`);
  const disc = await getJson(`${ISSUER}/.well-known/openid-configuration`);
  if (!check('discovery answers 200', disc.status === 200, `${disc.status}`)) return;
  const meta = disc.body;
  check('discovery: issuer is exactly the URL', meta.issuer === ISSUER, meta.issuer);
  check('discovery: S256 PKCE', meta.code_challenge_methods_supported?.includes('S256'));
  check('discovery: RS256 ID tokens', meta.id_token_signing_alg_values_supported?.includes('RS256'));
  check('discovery: client_secret_post and _basic', ['client_secret_post', 'client_secret_basic'].every((m) => meta.token_endpoint_auth_methods_supported?.includes(m)));
  check('discovery: scopes openid email profile', ['openid', 'email', 'profile'].every((s) => meta.scopes_supported?.includes(s)));

  const jwksRes = await getJson(meta.jwks_uri);
  const jwks = jwksRes.body;
  check('JWKS: an RS256 RSA key with a kid', jwksRes.status === 200 && jwks.keys?.some((k) => k.kty === 'RSA' && k.kid && k.alg === 'RS256'));
  check('JWKS: no private key material', !jwks.keys?.some((k) => 'd' in k || 'p' in k));

  await setMode('normal');

  // The normal flow, with every ID token check.
  const ok = await login(meta, 'normal');
  if (ok) {
    check('normal: one hop, straight from the authorization URL to the redirect_uri', ok.hops === 1, `${ok.hops} hops`);
    check('normal: the provider sets no cookies on the client', ok.cookies === 0, `${ok.cookies} cookies`);
    const bad = failing(idTokenChecks(jwks, ok.jwt, ok.nonce, 'alice'));
    check('normal: the id_token passes every check', bad.length === 0, `failed: ${bad.join(', ')} in ${JSON.stringify(ok.jwt.payload)}`);
    check('normal: token_type Bearer with an access_token', ok.tokens.token_type === 'Bearer' && !!ok.tokens.access_token);
    const info = await getJson(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${ok.tokens.access_token}` } });
    check('normal: userinfo has sub and email', info.status === 200 && info.body.sub === 'alice' && info.body.email === 'alice@oidc.test', JSON.stringify(info.body));

    const again = await exchange(meta, ok.code, ok.verifier);
    check('a code cannot be redeemed twice (400 invalid_grant)', again.status === 400 && again.body.error === 'invalid_grant', `${again.status} ${JSON.stringify(again.body)}`);
  }

  // Another account right after: nothing of alice's login may carry over.
  const bob = await login(meta, 'bob', { loginHint: 'bob' });
  if (bob) {
    const bad = failing(idTokenChecks(jwks, bob.jwt, bob.nonce, 'bob'));
    check('bob: the id_token is bob\'s and passes every check', bad.length === 0, `failed: ${bad.join(', ')} in ${JSON.stringify(bob.jwt.payload)}`);
  }

  const viaBasic = await login(meta, 'client_secret_basic', { basic: true });
  if (viaBasic) check('client_secret_basic: id_token valid', failing(idTokenChecks(jwks, viaBasic.jwt, viaBasic.nonce, 'alice')).length === 0);

  // Refusals the provider itself must make.
  {
    const a = await authorize(meta);
    const r = await exchange(meta, a.location.searchParams.get('code'), `${a.verifier}x`);
    check('a wrong code_verifier is refused (400 invalid_grant)', r.status === 400 && r.body.error === 'invalid_grant', `${r.status} ${JSON.stringify(r.body)}`);
  }
  {
    const a = await authorize(meta);
    const r = await exchange(meta, a.location.searchParams.get('code'), a.verifier, { secret: 'wrong' });
    check('a wrong client_secret is refused (401 invalid_client)', r.status === 401 && r.body.error === 'invalid_client', `${r.status} ${JSON.stringify(r.body)}`);
  }
  {
    const a = await authorize(meta, { pkce: false });
    const q = a.location?.searchParams;
    check('an authorization request without PKCE is refused (error=invalid_request to the redirect_uri)', q?.get('error') === 'invalid_request' && q?.get('state') === a.state, a.location?.href ?? `${a.status} ${a.body}`);
  }
  {
    const a = await authorize(meta, { loginHint: null });
    const q = a.location?.searchParams;
    check('no login_hint: error=access_denied with the state', q?.get('error') === 'access_denied' && q?.get('state') === a.state && !q?.get('code'), a.location?.href ?? `${a.status} ${a.body}`);
  }
  {
    const a = await authorize(meta, { redirectUri: 'http://127.0.0.1:40123/api/v1/auth/oidc/callback' });
    check('redirect_uri on another loopback port is accepted', a.location?.port === '40123' && !!a.location.searchParams.get('code'), a.location?.href ?? `${a.status} ${a.body}`);
  }
  for (const uri of ['http://127.0.0.1:5555/elsewhere', 'http://example.test:5555/api/v1/auth/oidc/callback']) {
    const a = await authorize(meta, { redirectUri: uri });
    check(`redirect_uri ${uri} is refused (400, no redirect)`, a.status === 400 && !a.location, `${a.status} ${a.location ?? ''}`);
  }

  // Each defect mode: that check fails, every other one still passes.
  const expectations = {
    bad_signature: ['signature'],
    wrong_audience: ['aud'],
    expired: ['exp'],
    wrong_issuer: ['iss'],
    wrong_nonce: ['nonce'],
  };
  try {
    for (const [mode, expected] of Object.entries(expectations)) {
      await setMode(mode);
      const r = await login(meta, mode);
      if (!r) continue;
      const bad = failing(idTokenChecks(jwks, r.jwt, r.nonce, 'alice'));
      check(`${mode}: the id_token fails exactly on ${expected.join(', ')}`, JSON.stringify(bad) === JSON.stringify(expected), `failed: [${bad.join(', ')}] in ${JSON.stringify(r.jwt.payload)}`);
    }
  } finally {
    await setMode('normal');
  }
  // A mode for one account leaves everyone else's tokens alone.
  try {
    await setMode('expired', 'carol');
    const alice = await login(meta, 'alice beside carol\'s mode');
    if (alice) check('alice beside carol\'s mode: id_token passes every check', failing(idTokenChecks(jwks, alice.jwt, alice.nonce, 'alice')).length === 0);
    const carol = await login(meta, 'carol\'s mode', { loginHint: 'carol' });
    if (carol) {
      const bad = failing(idTokenChecks(jwks, carol.jwt, carol.nonce, 'carol'));
      check('carol\'s mode: her id_token fails exactly on exp', JSON.stringify(bad) === '["exp"]', `failed: [${bad.join(', ')}]`);
    }
  } finally {
    await setMode('normal', 'carol');
  }

  const modeNow = await getJson(`${ISSUER}/test/mode`);
  check('GET /test/mode says normal again, for everyone', modeNow.body.mode === 'normal' && Object.keys(modeNow.body.accounts ?? {}).length === 0, JSON.stringify(modeNow.body));
  const badMode = await getJson(`${ISSUER}/test/mode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"mode":"nonsense"}' });
  check('POST /test/mode with an unknown mode is 400', badMode.status === 400, `${badMode.status}`);
}

try {
  await main();
} catch (err) {
  check('selftest ran to the end', false, err.stack || String(err));
}
console.log(`selftest: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
