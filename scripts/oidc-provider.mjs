#!/usr/bin/env node
// A real OpenID Connect provider for Hearth's "Sign in with ..." tests:
// panva's oidc-provider (installed in scripts/oidc/node_modules, see
// scripts/oidc.sh) with one confidential client, accounts made up from the
// login_hint, no login page, and a switch that makes the token endpoint hand
// out defective ID tokens so the tests can check the server refuses them.
//
//   PORT=9400 HOST=127.0.0.1 node scripts/oidc-provider.mjs
//
// Issuer: http://$HOST:$PORT (ISSUER overrides it), no trailing slash;
// discovery at $ISSUER/.well-known/openid-configuration.
//
// Client: client_id hearth-test, client_secret hearth-test-secret, sent in
// the token request body (client_secret_post) or as HTTP Basic (oidc-provider
// accepts either for a client registered with one of the two). Code flow
// only, PKCE S256 required, scopes openid email profile. redirect_uri may be
// http://127.0.0.1:<any port>/api/v1/auth/oidc/callback (or localhost): the
// client is registered as a native app, for which oidc-provider ignores the
// port of loopback redirect URIs (RFC 8252 section 7.3).
//
// Logging in: a GET of the authorization URL answers 302 straight to
// redirect_uri?code=...&state=...&iss=... when it carries login_hint=<id>
// (the account <id> logs in and consents to everything asked), or to
// redirect_uri?error=access_denied&state=... without a login_hint (the user
// "cancelled"). No cookies are needed; nothing is remembered between
// requests. Request errors that must not go back to the client (unknown
// client, unregistered redirect_uri) are a 400 JSON body instead.
//
// Accounts: any id exists; claims sub=<id>, email=<id>@oidc.test,
// email_verified=true, name=<id>, all of them in the ID token as well as at
// the userinfo endpoint.
//
// Test hooks (outside the OIDC routes):
//   GET  /test/mode                 -> {"mode": "...", "accounts": {...}}
//   POST /test/mode {"mode": "..."} -> sets it until the next change:
//     normal          tokens as issued
//     bad_signature   the id_token signature has bytes flipped
//     wrong_audience  aud is another client (re-signed with the real key)
//     expired         exp (and iat) an hour in the past (re-signed)
//     wrong_issuer    iss is another URL (re-signed)
//     wrong_nonce     nonce differs from the one requested (re-signed)
//   Only the id_token of token endpoint responses changes; the code, the
//   access token and userinfo stay genuine.
//   POST /test/mode {"mode": "...", "account": "<id>"} sets a mode for the
//   tokens of that one account only (taking precedence over the global one;
//   "normal" removes it): tests running in parallel each use their own
//   account and do not see each other's defects. GET lists these under
//   "accounts".
//
// One line per request goes to stderr. oidc-provider 9 warns "Unsupported
// runtime" on Node.js 20 (it asks for 22+); scripts/oidc-selftest.mjs passes
// on 20 all the same.

import crypto from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// The package lives in scripts/oidc/node_modules, out of reach of a bare
// import from this directory: resolve it from there, following its own
// package.json entry point.
const requireFromOidc = createRequire(new URL('./oidc/package.json', import.meta.url));
const { Provider } = await import(pathToFileURL(requireFromOidc.resolve('oidc-provider')).href);

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 9400);
const ISSUER = (process.env.ISSUER || `http://${HOST}:${PORT}`).replace(/\/+$/, '');
const CLIENT_ID = 'hearth-test';
const CALLBACK_PATH = '/api/v1/auth/oidc/callback';

const MODES = ['normal', 'bad_signature', 'wrong_audience', 'expired', 'wrong_issuer', 'wrong_nonce'];
let mode = 'normal';
const accountModes = new Map();

const log = (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

// The signing key is ours, not oidc-provider's, because altered ID tokens are
// re-signed with it: a wrong_audience token must fail on its audience alone.
// A fresh key per start is fine: relying parties fetch the JWKS.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const KID = `hearth-test-${crypto.randomBytes(6).toString('hex')}`;
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };

const account = (id) => ({
  accountId: id,
  // oidc-provider filters these down to what the granted scopes allow.
  async claims() {
    return { sub: id, email: `${id}@oidc.test`, email_verified: true, name: id };
  },
});

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: 'hearth-test-secret',
    token_endpoint_auth_method: 'client_secret_post',
    // "native" is what lets the redirect_uri port vary: the tests' servers
    // listen on whatever port they were given.
    application_type: 'native',
    redirect_uris: [`http://127.0.0.1${CALLBACK_PATH}`, `http://localhost${CALLBACK_PATH}`],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [signingJwk] },
  responseTypes: ['code'],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // By default a code flow ID token carries only sub and the protocol claims
  // (the rest is at userinfo); relying parties, Hearth included, commonly
  // read email from the ID token, so put the scope claims there too.
  conformIdTokenClaims: false,
  findAccount: async (_ctx, id) => account(id),
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: { devInteractions: { enabled: false } },
  // Seconds. Spelled out because oidc-provider nags about its defaults.
  ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Grant: 3600, Session: 3600 },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  // Errors rendered by the provider itself (never sent to a redirect_uri)
  // as JSON, which a test can read; the default is an HTML page.
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// oidc-provider logs through events; surface the server errors, which
// otherwise only show up as a bare 500.
provider.on('server_error', (_ctx, err) => log(`server_error: ${err.stack || err}`));

// --- ID token alteration -----------------------------------------------------

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function sign(header, payload) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const signature = crypto.sign('RSA-SHA256', Buffer.from(input), privateKey);
  return `${input}.${b64url(signature)}`;
}

function alterIdToken(idToken, how) {
  const [h, p, s] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const payload = JSON.parse(Buffer.from(p, 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  switch (how) {
    case 'bad_signature': {
      // Same length, same header and payload: only the check of the
      // signature itself can catch it.
      const sig = Buffer.from(s, 'base64url');
      for (let i = 0; i < 8; i += 1) sig[(sig.length >> 1) + i] ^= 0xff;
      return `${h}.${p}.${b64url(sig)}`;
    }
    case 'wrong_audience':
      return sign(header, { ...payload, aud: 'some-other-client' });
    case 'expired':
      // An hour is far beyond any sane clock skew leeway.
      return sign(header, { ...payload, iat: now - 7200, exp: now - 3600 });
    case 'wrong_issuer':
      return sign(header, { ...payload, iss: 'http://wrong-issuer.oidc.test' });
    case 'wrong_nonce':
      return sign(header, { ...payload, nonce: `not-${payload.nonce ?? 'requested'}` });
    default:
      return idToken;
  }
}

// Runs around every OIDC route; only touches successful token responses.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  // sub is the account id (public subject type).
  const { sub } = JSON.parse(Buffer.from(ctx.body.id_token.split('.')[1], 'base64url'));
  const how = accountModes.get(sub) ?? mode;
  if (how !== 'normal') {
    ctx.body = { ...ctx.body, id_token: alterIdToken(ctx.body.id_token, how) };
    ctx.set('x-hearth-oidc-mode', how);
  }
});

// --- Our own routes ----------------------------------------------------------

const oidcCallback = provider.callback();

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function testMode(req, res) {
  const state = () => ({ mode, accounts: Object.fromEntries(accountModes) });
  if (req.method === 'GET') return sendJson(res, 200, state());
  if (req.method !== 'POST') return sendJson(res, 405, { error: 'use GET or POST' });
  let wanted;
  let account;
  try {
    ({ mode: wanted, account } = JSON.parse(await readBody(req)));
  } catch {
    return sendJson(res, 400, { error: 'body must be JSON {"mode": "...", "account": optional}' });
  }
  if (!MODES.includes(wanted)) return sendJson(res, 400, { error: `mode must be one of ${MODES.join(', ')}` });
  if (account !== undefined && (typeof account !== 'string' || !account)) {
    return sendJson(res, 400, { error: 'account must be a non-empty string' });
  }
  if (account === undefined) {
    mode = wanted;
    log(`mode is now ${mode}`);
  } else {
    if (wanted === 'normal') accountModes.delete(account); else accountModes.set(account, wanted);
    log(`mode for ${account} is now ${wanted}`);
  }
  return sendJson(res, 200, state());
}

// Stands in for the login and consent pages: the account is the login_hint,
// and it grants everything the client asked for.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { params, prompt } = details;
  const accountId = params.login_hint;
  if (!accountId) {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'no login_hint: the test provider has no login page',
    }, { mergeWithLastSubmission: false });
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  grant.addOIDCScope(params.scope);
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, {
    login: { accountId },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

// A browser would go authorization endpoint -> /interaction/<uid> ->
// /auth/<uid> (the provider binding each step with cookies) -> redirect_uri.
// Tests have no browser, so the provider walks that chain itself, over HTTP
// to its own listener with a private cookie jar, and answers the client with
// the last hop only. Starting from an empty jar each time also means no
// provider session survives between two logins, whoever the test logs in as.
const INTERNAL = 'x-hearth-oidc-internal';

async function authorize(req, res) {
  const jar = new Map();
  let url = new URL(req.url, ISSUER);
  for (let hop = 0; hop < 10; hop += 1) {
    const answer = await fetch(new URL(url.pathname + url.search, `http://${HOST}:${PORT}`), {
      redirect: 'manual',
      headers: {
        [INTERNAL]: '1',
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
      },
    });
    for (const line of answer.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const name = pair.slice(0, pair.indexOf('=')).trim();
      const value = pair.slice(pair.indexOf('=') + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=.*1970/i.test(a)) || value === '';
      if (expired) jar.delete(name); else jar.set(name, value);
    }
    const location = answer.headers.get('location');
    if (answer.status >= 300 && answer.status < 400 && location) {
      const next = new URL(location, url);
      if (next.origin === new URL(ISSUER).origin) {
        url = next;
        continue;
      }
      // Leaving the provider: this is the redirect to the client.
      res.setHeader('location', next.href);
      res.writeHead(302, { 'content-length': 0, 'cache-control': 'no-store' });
      return res.end();
    }
    // Anything else (an error page) goes back as it is.
    const body = Buffer.from(await answer.arrayBuffer());
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') || 'text/plain',
      'content-length': body.length,
    });
    return res.end(body);
  }
  return sendJson(res, 500, { error: 'too many redirects inside the provider' });
}

const server = http.createServer(async (req, res) => {
  const started = process.hrtime.bigint();
  const internal = req.headers[INTERNAL] === '1';
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const altered = res.getHeader('x-hearth-oidc-mode');
    const location = internal ? undefined : res.getHeader('location');
    log(`${internal ? '  (internal) ' : ''}${req.method} ${req.url} ${res.statusCode} ${ms.toFixed(1)}ms`
      + `${location ? ` -> ${location}` : ''}${altered ? ` id_token:${altered}` : ''}`);
  });
  try {
    const { pathname } = new URL(req.url, ISSUER);
    if (pathname === '/test/mode') return await testMode(req, res);
    if (pathname.startsWith('/interaction/')) return await interaction(req, res);
    if (pathname === '/auth' && req.method === 'GET' && !internal) return await authorize(req, res);
    return oidcCallback(req, res);
  } catch (err) {
    log(`error: ${err.stack || err}`);
    if (!res.headersSent) sendJson(res, err.statusCode || 500, { error: err.name, error_description: err.message });
    else res.destroy();
  }
});

server.listen(PORT, HOST, () => log(`oidc provider ${ISSUER} listening on ${HOST}:${PORT} (client ${CLIENT_ID}, key ${KID})`));

// State is in memory only, so there is nothing to wind down.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
