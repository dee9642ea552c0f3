// The gateway client against a real `ws` WebSocket server speaking the contract.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, WebSocket as WsSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { Gateway, type SocketLike } from '@/lib/gateway';
import { Outbox, type OutboxItem } from '@/lib/outbox';
import type { Message } from '@/api/types';

interface Conn {
  ws: WsSocket;
  frames: { op: string; d: any }[];
}

class FakeServer {
  wss: WebSocketServer;
  conns: Conn[] = [];
  seq = 0;
  sessions = new Map<string, { dispatched: { t: string; d: unknown; s: number }[] }>();
  /** What to do with a resume: 'resume' replays, 'invalid' answers invalid_session. */
  onResume: 'resume' | 'invalid' = 'resume';
  heartbeatMs = 50;
  private waiters: (() => void)[] = [];
  listening: Promise<void>;

  constructor() {
    this.wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    this.listening = new Promise((r) => this.wss.once('listening', () => r()));
    this.wss.on('connection', (ws) => {
      const conn: Conn = { ws, frames: [] };
      this.conns.push(conn);
      ws.send(JSON.stringify({ op: 'hello', d: { heartbeat_interval_ms: this.heartbeatMs } }));
      ws.on('message', (raw) => {
        const f = JSON.parse(String(raw));
        conn.frames.push(f);
        if (f.op === 'heartbeat') ws.send(JSON.stringify({ op: 'heartbeat_ack', d: {} }));
        if (f.op === 'identify') {
          const sid = `sess${this.sessions.size + 1}`;
          this.sessions.set(sid, { dispatched: [] });
          this.seq = 0;
          this.dispatch(conn, sid, 'READY', { session_id: sid, user: { id: '1', username: 'me' }, communities: [], dms: [], read_states: [] });
        }
        if (f.op === 'resume') {
          const sess = this.sessions.get(f.d.session_id);
          if (!sess || this.onResume === 'invalid') {
            ws.send(JSON.stringify({ op: 'invalid_session', d: { resumable: false } }));
          } else {
            for (const e of sess.dispatched) if (e.s > f.d.s) ws.send(JSON.stringify({ op: 'dispatch', t: e.t, s: e.s, d: e.d }));
            this.dispatch(conn, f.d.session_id, 'RESUMED', {});
          }
        }
        this.waiters.splice(0).forEach((w) => w());
      });
    });
  }

  get url() {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/api/v1/gateway`;
  }

  dispatch(conn: Conn | null, sid: string, t: string, d: unknown) {
    const sess = this.sessions.get(sid)!;
    const s = ++this.seq;
    sess.dispatched.push({ t, d, s });
    if (conn && conn.ws.readyState === WsSocket.OPEN) conn.ws.send(JSON.stringify({ op: 'dispatch', t, s, d }));
  }

  last() {
    return this.conns[this.conns.length - 1];
  }

  async until(cond: () => boolean, ms = 3000) {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close() {
    for (const c of this.conns) c.ws.terminate();
    return new Promise<void>((r) => this.wss.close(() => r()));
  }
}

const servers: FakeServer[] = [];
const gateways: Gateway[] = [];
afterEach(async () => {
  gateways.splice(0).forEach((g) => g.close());
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(opts: { token?: () => Promise<string | null> } = {}) {
  const server = new FakeServer();
  servers.push(server);
  await server.listening;
  const gw = new Gateway({
    url: () => server.url,
    getToken: opts.token ?? (async () => 'tok'),
    socket: (url) => new WsSocket(url) as unknown as SocketLike,
    reconnectDelay: () => 20,
  });
  gateways.push(gw);
  return { server, gw };
}

describe('gateway', () => {
  it('identifies after hello and becomes ready on READY', async () => {
    const { server, gw } = await setup();
    const events: string[] = [];
    gw.on('dispatch', (t) => events.push(t));
    const states: string[] = [];
    gw.on('state', (s) => states.push(s));
    gw.connect();
    await server.until(() => gw.state === 'ready');
    expect(server.last().frames[0]).toEqual({ op: 'identify', d: { token: 'tok' } });
    expect(gw.sessionId).toBe('sess1');
    expect(gw.seq).toBe(1);
    expect(events).toEqual(['READY']);
    expect(states).toEqual(['connecting', 'ready']);
  });

  it('subscribes to presence once ready; a new list replaces it, at most 1,000 ids', async () => {
    const { server, gw } = await setup();
    gw.subscribePresence(['7', '8']);
    gw.connect();
    await server.until(() => !!server.last()?.frames.some((f) => f.op === 'subscribe_presence'));
    expect(server.last().frames.find((f) => f.op === 'subscribe_presence')).toEqual({ op: 'subscribe_presence', d: { user_ids: ['7', '8'] } });
    gw.subscribePresence(Array.from({ length: 1500 }, (_, i) => String(i)));
    await server.until(() => server.last().frames.filter((f) => f.op === 'subscribe_presence').length === 2);
    const last = server.last().frames.filter((f) => f.op === 'subscribe_presence')[1];
    expect(last.d.user_ids.length).toBe(1000);
  });

  it('heartbeats with the last sequence seen', async () => {
    const { server, gw } = await setup();
    gw.connect();
    await server.until(() => gw.state === 'ready');
    server.dispatch(server.last(), 'sess1', 'TYPING_START', { channel_id: '5', user_id: '2' });
    server.dispatch(server.last(), 'sess1', 'TYPING_START', { channel_id: '5', user_id: '3' });
    await server.until(() => server.last().frames.some((f) => f.op === 'heartbeat' && f.d.s === 3));
    const beats = server.last().frames.filter((f) => f.op === 'heartbeat');
    expect(beats.length).toBeGreaterThan(0);
    expect(beats.every((b) => typeof b.d.s === 'number')).toBe(true);
  });

  it('resumes after the server closes the socket and receives missed dispatches once', async () => {
    const { server, gw } = await setup();
    const seen: number[] = [];
    gw.on('dispatch', (t, d: any) => {
      if (t === 'MESSAGE_CREATE') seen.push(Number(d.id));
    });
    const readies: { resumed: boolean; recovered: boolean }[] = [];
    gw.on('ready', (i) => readies.push(i));
    gw.connect();
    await server.until(() => gw.state === 'ready');
    server.dispatch(server.last(), 'sess1', 'MESSAGE_CREATE', { id: '10', channel_id: '5' });
    await server.until(() => seen.length === 1);
    const first = server.last();
    first.ws.close(4009, 'timed out');
    // Dispatched while the client is away: must arrive on resume.
    server.dispatch(null, 'sess1', 'MESSAGE_CREATE', { id: '11', channel_id: '5' });
    server.dispatch(null, 'sess1', 'MESSAGE_CREATE', { id: '12', channel_id: '5' });
    await server.until(() => server.conns.length === 2 && gw.state === 'ready' && seen.length === 3);
    const resume = server.last().frames.find((f) => f.op === 'resume');
    expect(resume?.d).toEqual({ token: 'tok', session_id: 'sess1', s: 2 });
    expect(seen).toEqual([10, 11, 12]);
    expect(readies).toEqual([
      { resumed: false, recovered: false },
      { resumed: true, recovered: false },
    ]);
  });

  it('on op reconnect (a node restarting) resumes the same session, not a new one', async () => {
    const { server, gw } = await setup();
    const seen: number[] = [];
    gw.on('dispatch', (t, d: any) => {
      if (t === 'MESSAGE_CREATE') seen.push(Number(d.id));
    });
    gw.connect();
    await server.until(() => gw.state === 'ready');
    server.dispatch(server.last(), 'sess1', 'MESSAGE_CREATE', { id: '20', channel_id: '5' });
    await server.until(() => seen.length === 1);
    server.last().ws.send(JSON.stringify({ op: 'reconnect', d: {} }));
    server.dispatch(null, 'sess1', 'MESSAGE_CREATE', { id: '21', channel_id: '5' });
    await server.until(() => server.conns.length === 2 && gw.state === 'ready' && seen.length === 2);
    expect(server.last().frames.find((f) => f.op === 'resume')?.d).toEqual({ token: 'tok', session_id: 'sess1', s: 2 });
    expect(server.last().frames.some((f) => f.op === 'identify')).toBe(false);
    expect(seen).toEqual([20, 21]);
  });

  it('shows reconnecting while the server is gone', async () => {
    const { server, gw } = await setup();
    gw.connect();
    await server.until(() => gw.state === 'ready');
    server.last().ws.terminate();
    await server.until(() => gw.state === 'reconnecting');
    await server.until(() => gw.state === 'ready');
  });

  it('on invalid_session identifies again and reports a recovered session', async () => {
    const { server, gw } = await setup();
    const readies: { resumed: boolean; recovered: boolean }[] = [];
    gw.on('ready', (i) => readies.push(i));
    gw.connect();
    await server.until(() => gw.state === 'ready');
    server.onResume = 'invalid';
    server.last().ws.close(1001, 'node going away');
    await server.until(() => readies.length === 2);
    const frames = server.last().frames.map((f) => f.op);
    expect(frames.slice(0, 2)).toEqual(['resume', 'identify']);
    expect(gw.sessionId).toBe('sess2');
    expect(readies[1]).toEqual({ resumed: false, recovered: true });
  });

  it('stops and reports revocation on close 4010', async () => {
    const { server, gw } = await setup();
    let revoked = 0;
    gw.on('revoked', () => revoked++);
    gw.connect();
    await server.until(() => gw.state === 'ready');
    server.last().ws.close(4010, 'session revoked');
    await server.until(() => revoked === 1);
    expect(gw.state).toBe('closed');
    await new Promise((r) => setTimeout(r, 100));
    expect(server.conns.length).toBe(1);
  });

  it('asks for a fresh token after close 4004', async () => {
    const asked: boolean[] = [];
    const { server, gw } = await setup({ token: undefined });
    (gw as any).opts.getToken = async (fresh: boolean) => {
      asked.push(fresh);
      return fresh ? 'tok2' : 'tok';
    };
    gw.connect();
    await server.until(() => gw.state === 'ready');
    server.last().ws.close(4004, 'auth failed');
    await server.until(() => server.conns.length === 2 && gw.state === 'ready');
    expect(asked).toEqual([false, true]);
    expect(server.last().frames[0].d.token).toBe('tok2');
  });
});

describe('offline queue over a real reconnect', () => {
  it('sends each queued nonce exactly once after the connection comes back', async () => {
    const { server, gw } = await setup();
    const sent: string[] = [];
    const outbox = new Outbox({
      isOnline: () => gw.state === 'ready',
      send: async (item: OutboxItem) => {
        sent.push(item.nonce);
        await new Promise((r) => setTimeout(r, 5));
        return { id: String(100 + sent.length), channel_id: item.channelId, nonce: item.nonce } as Message;
      },
    });
    gw.on('ready', () => void outbox.flush());
    gw.connect();
    await server.until(() => gw.state === 'ready');
    server.last().ws.terminate();
    await server.until(() => gw.state === 'reconnecting');
    outbox.enqueue({ nonce: 'n1', channelId: '5', content: 'one', replyToId: null });
    outbox.enqueue({ nonce: 'n2', channelId: '5', content: 'two', replyToId: null });
    outbox.enqueue({ nonce: 'n2', channelId: '5', content: 'two', replyToId: null }); // double submit
    expect(sent).toEqual([]);
    // Extra flushes racing the one triggered by RESUMED must not resend.
    await server.until(() => gw.state === 'ready');
    await Promise.all([outbox.flush(), outbox.flush()]);
    await server.until(() => outbox.size === 0);
    expect(sent).toEqual(['n1', 'n2']);
  });

  it('keeps the nonce when the send fails in transit and resends the same nonce', async () => {
    let online = true;
    const sent: string[] = [];
    let fail = true;
    const outbox = new Outbox({
      isOnline: () => online,
      send: async (item) => {
        sent.push(item.nonce);
        if (fail) throw new TypeError('fetch failed');
        return { id: '1', channel_id: item.channelId, nonce: item.nonce } as Message;
      },
    });
    outbox.enqueue({ nonce: 'n1', channelId: '5', content: 'x', replyToId: null });
    await outbox.flush();
    expect(outbox.size).toBe(1);
    fail = false;
    online = true;
    await outbox.flush();
    expect(sent).toEqual(['n1', 'n1']);
    expect(outbox.size).toBe(0);
  });
});
