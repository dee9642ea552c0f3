// HearthClient end to end in Node: a real http + ws server on one port, the generated
// REST client and the gateway. Covers invalid_session → identify → catch-up fetch.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, WebSocket as WsSocket } from 'ws';
import { setBaseUrl } from '@/lib/api';
import { HearthClient } from '@/lib/client';
import type { SocketLike } from '@/lib/gateway';
import { messagesStore } from '@/stores/messages';
import { draftsStore } from '@/stores/drafts';
import { trayOf, trayState, uploadsStore } from '@/stores/uploads';
import { readStatesStore, mentionCount, isUnread } from '@/stores/readStates';
import type { Message } from '@/api/types';
import { message } from './fixtures';

const msg = (id: number, extra: Partial<Message> = {}): Message =>
  message(id, { channel_id: '5', community_id: '9', created_at: new Date().toISOString(), ...extra });

let http: Server;
let wss: WebSocketServer;
let port = 0;
const requests: string[] = [];
let serverMessages: Message[] = [];
let resumeAnswer: 'invalid' | 'resume' = 'invalid';
let sessions = 0;
const posts: { nonce: string; content: string; attachment_ids?: string[] }[] = [];
/** 'drop': store the message, then cut the connection before answering (answer lost). */
let postMode: 'ok' | 'drop' | '503' | '400' = 'ok';

beforeEach(async () => {
  requests.length = 0;
  posts.length = 0;
  sessions = 0;
  serverMessages = [];
  messagesStore.set({});
  readStatesStore.set({ byChannel: {}, lastMessage: {} });
  http = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (req.method === 'GET' && url.pathname === '/api/v1/channels/5/messages') {
      const after = url.searchParams.get('after');
      const limit = Number(url.searchParams.get('limit') ?? 50);
      let list = serverMessages.slice();
      if (after) list = list.filter((m) => BigInt(m.id) > BigInt(after)).slice(0, limit);
      else list = list.reverse().slice(0, limit);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(list));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/api/v1/channels/5/messages') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const b = JSON.parse(body);
        posts.push(b);
        if (postMode === '400') {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'invalid_request', message: 'attachment_ids: not yours', details: { fields: { attachment_ids: 'unknown' } } } }));
          return;
        }
        if (postMode === '503') {
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'unavailable', message: 'down', details: {} } }));
          return;
        }
        const existing = serverMessages.find((m) => m.nonce === b.nonce);
        const files = (b.attachment_ids ?? []).map((id: string) => ({ id, filename: `f${id}.txt`, content_type: 'text/plain', size: 3, url: `/api/v1/attachments/${id}/f${id}.txt`, width: null, height: null, blurhash: null, preview_url: null }));
        const m = existing ?? msg(1000 + serverMessages.length, { content: b.content, nonce: b.nonce, attachments: files, author: { id: '1', username: 'me', display_name: null, avatar_url: null } });
        if (!existing) serverMessages.push(m);
        if (postMode === 'drop') {
          req.socket.destroy();
          return;
        }
        res.writeHead(existing ? 200 : 201, { 'content-type': 'application/json' });
        res.end(JSON.stringify(m));
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'not_found', message: 'no' } }));
  });
  wss = new WebSocketServer({ server: http, path: '/api/v1/gateway' });
  wss.on('connection', (ws) => {
    let seq = 0;
    ws.send(JSON.stringify({ op: 'hello', d: { heartbeat_interval_ms: 10_000 } }));
    ws.on('message', (raw) => {
      const f = JSON.parse(String(raw));
      const ready = () => {
        sessions++;
        seq = 0;
        ws.send(
          JSON.stringify({
            op: 'dispatch',
            t: 'READY',
            s: ++seq,
            d: {
              session_id: `s${sessions}`,
              user: { id: '1', username: 'me', display_name: null, avatar_url: null, created_at: '2025-01-01T00:00:00Z', plan: 'free' },
              communities: [{ id: '9', name: 'c', owner_id: '2', icon_url: null, created_at: '2025-01-01T00:00:00Z', channels: [{ id: '5', community_id: '9', name: 'general', kind: 'text', topic: null, position: 0, parent_id: null }], roles: [] }],
              dms: [],
              read_states: [{ channel_id: '5', last_read_id: '3', mention_count: 2 }],
            },
          }),
        );
      };
      if (f.op === 'identify') ready();
      if (f.op === 'resume') {
        if (resumeAnswer === 'invalid') ws.send(JSON.stringify({ op: 'invalid_session', d: { resumable: false } }));
        else ws.send(JSON.stringify({ op: 'dispatch', t: 'RESUMED', s: ++seq, d: {} }));
      }
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  port = (http.address() as AddressInfo).port;
  setBaseUrl(`http://127.0.0.1:${port}`);
});

afterEach(async () => {
  for (const c of wss.clients) c.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
  await new Promise<void>((r) => http.close(() => r()));
});

function makeClient(delay = 10) {
  return new HearthClient({
    gateway: {
      getToken: async () => 'tok',
      socket: (url) => new WsSocket(url) as unknown as SocketLike,
      reconnectDelay: () => delay,
    },
  });
}

async function until(cond: () => boolean, ms = 4000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${cond.toString()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('HearthClient', () => {
  it('after invalid_session identifies again and catches up with messages?after= until a short page', async () => {
    for (let i = 1; i <= 3; i++) serverMessages.push(msg(i));
    const client = makeClient();
    client.start();
    await until(() => client.gateway.state === 'ready');
    await client.loadInitial('5');
    expect(messagesStore.get()['5'].messages.map((m) => m.id)).toEqual(['1', '2', '3']);
    expect(mentionCount(readStatesStore.get(), '5')).toBe(2);

    // While disconnected, 150 messages land on the server.
    for (const c of wss.clients) c.terminate();
    for (let i = 4; i <= 153; i++) serverMessages.push(msg(i));
    await until(() => sessions === 2 && client.gateway.state === 'ready');
    await until(() => messagesStore.get()['5'].messages.length === 153);
    const catchUps = requests.filter((r) => r.includes('after='));
    expect(catchUps).toEqual(['GET /api/v1/channels/5/messages?after=3&limit=100', 'GET /api/v1/channels/5/messages?after=103&limit=100']);
    const ids = messagesStore.get()['5'].messages.map((m) => Number(m.id));
    expect(ids).toEqual(Array.from({ length: 153 }, (_, i) => i + 1));
    // Counts come from the new READY, not double-counted by catch-up.
    expect(mentionCount(readStatesStore.get(), '5')).toBe(2);
    expect(isUnread(readStatesStore.get(), '5')).toBe(true);
    client.stop();
  });

  it('queues messages that fail while offline and resends each nonce until it lands; never shows one twice', async () => {
    resumeAnswer = 'resume';
    const client = makeClient(300);
    client.start();
    await until(() => client.gateway.state === 'ready');
    await client.loadInitial('5');
    for (const c of wss.clients) c.terminate();
    await until(() => client.gateway.state === 'reconnecting');
    // The first POST reaches the server but its answer is lost; the second gets a 503.
    postMode = 'drop';
    const n1 = client.sendMessage('5', 'hello');
    await until(() => messagesStore.get()['5'].pending[0]?.status === 'queued');
    postMode = '503';
    const n2 = client.sendMessage('5', 'world');
    await until(() => messagesStore.get()['5'].pending.length === 2 && messagesStore.get()['5'].pending.every((p) => p.status === 'queued'));
    postMode = 'ok';
    // Back online: RESUMED flushes the queue in order, with the same nonces.
    await until(() => client.gateway.state === 'ready');
    await until(() => messagesStore.get()['5'].pending.length === 0);
    const sent = posts.map((p) => p.nonce);
    expect(sent.filter((n) => n === n1).length).toBeGreaterThanOrEqual(2);
    expect(sent.slice(-2)).toEqual([n1, n2]);
    // The server stored "hello" once (nonce dedupe) and the client shows it once.
    expect(serverMessages.filter((m) => m.nonce === n1)).toHaveLength(1);
    // The gateway echo of our own message arrives after the POST answer: still once.
    const echoed = serverMessages[serverMessages.length - 1];
    client.onDispatch('MESSAGE_CREATE', echoed as never);
    const log = messagesStore.get()['5'];
    expect(log.messages.map((m) => m.content)).toEqual(['hello', 'world']);
    resumeAnswer = 'invalid';
    postMode = 'ok';
    client.stop();
  });

  it('sends the uploaded files as attachment_ids; a refused send puts the text and the files back', async () => {
    const client = makeClient();
    client.start();
    await until(() => client.gateway.state === 'ready');
    await client.loadInitial('5');
    const file = (id: string) => ({ id, filename: `f${id}.txt`, content_type: 'text/plain', size: 3, url: `/api/v1/attachments/${id}/f${id}.txt` });
    postMode = 'ok';
    client.sendMessage('5', '', null, [file('71'), file('72')]);
    // While it sends, the pending copy names the files.
    expect(messagesStore.get()['5'].pending[0].attachments?.map((a) => a.filename)).toEqual(['f71.txt', 'f72.txt']);
    await until(() => messagesStore.get()['5'].pending.length === 0);
    expect(posts[posts.length - 1]).toMatchObject({ content: '', attachment_ids: ['71', '72'] });
    expect(messagesStore.get()['5'].messages.at(-1)?.attachments.map((a) => a.id)).toEqual(['71', '72']);

    postMode = '400';
    client.sendMessage('5', 'with a file', null, [file('73')]);
    await until(() => messagesStore.get()['5'].pending.length === 0);
    expect(draftsStore.get().text['5']).toBe('with a file');
    const tray = trayOf(uploadsStore.get(), '5');
    expect(tray.map((t) => [t.status, t.attachment?.id])).toEqual([['done', '73']]);
    expect(trayState(tray).ready).toBe(true);
    postMode = 'ok';
    client.stop();
  });
});
