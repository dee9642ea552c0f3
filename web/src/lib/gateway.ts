// The one WebSocket per tab (contract "Gateway").
//   hello → identify {token} → READY, heartbeats {s} every heartbeat_interval_ms,
//   on disconnect: resume {token, session_id, s} → missed dispatches → RESUMED,
//   on invalid_session: identify again; the caller then catches up over REST
//   (the `ready` event says `recovered: true`).
// Kept free of React and stores so it can be tested against a real `ws` server.

export type GatewayState = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closed';

export interface GatewayFrame {
  op: string;
  d?: unknown;
  t?: string;
  s?: number;
}

/** The subset of the WebSocket API we use: browsers' WebSocket and the `ws` package both fit. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type SocketFactory = (url: string) => SocketLike;

export interface ReadyInfo {
  /** The session was resumed: every missed dispatch has been replayed. */
  resumed: boolean;
  /**
   * A new session replaced an earlier one (invalid_session or a non-resumable close):
   * dispatches may have been missed, so fetch `messages?after=` per channel.
   */
  recovered: boolean;
}

export interface GatewayOptions {
  url: () => string;
  /** Access token; `fresh` asks for a refreshed one (after close 4004). null = signed out. */
  getToken: (fresh: boolean) => Promise<string | null>;
  socket?: SocketFactory;
  /** Delay before reconnect attempt n (0-based). */
  reconnectDelay?: (attempt: number) => number;
}

type Listener<A extends unknown[]> = (...args: A) => void;
interface Events {
  state: [GatewayState];
  dispatch: [string, unknown, number | undefined];
  ready: [ReadyInfo];
  /** Session revoked (close 4010) or the token can't be renewed: sign out. */
  revoked: [];
}

const OPEN = 1;

// Close codes after which the old session can't be resumed (contract "Close codes").
const FRESH_SESSION_CODES = new Set([4001, 4002, 4003, 4005, 4007]);

export function defaultReconnectDelay(attempt: number): number {
  // 0.5 s, 1 s, 2 s … capped at 10 s, with jitter so a restarted node isn't stampeded.
  const base = Math.min(10_000, 500 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

export class Gateway {
  state: GatewayState = 'idle';
  sessionId: string | null = null;
  /** Last dispatch sequence seen in this session. */
  seq = 0;

  private ws: SocketLike | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private acked = true;
  private attempt = 0;
  private everReady = false;
  private lostSession = false;
  private freshToken = false;
  private stopped = false;
  private presence: string | null = null;
  /** Users whose presence this session follows (large communities); re-sent after READY. */
  private presenceSubs: string[] = [];
  private listeners: { [K in keyof Events]: Set<Listener<Events[K]>> } = {
    state: new Set(),
    dispatch: new Set(),
    ready: new Set(),
    revoked: new Set(),
  };

  constructor(private readonly opts: GatewayOptions) {}

  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    this.listeners[event].add(fn);
    return () => this.listeners[event].delete(fn);
  }

  private emit<K extends keyof Events>(event: K, ...args: Events[K]) {
    for (const fn of [...this.listeners[event]]) {
      try {
        fn(...args);
      } catch (e) {
        // A broken listener must not kill the connection.
        console.error('gateway listener failed', e);
      }
    }
  }

  private setState(s: GatewayState) {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  connect() {
    this.stopped = false;
    if (this.ws) return;
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    this.setState(this.everReady || this.attempt > 0 ? 'reconnecting' : 'connecting');
    const factory: SocketFactory = this.opts.socket ?? ((url) => new WebSocket(url) as unknown as SocketLike);
    let ws: SocketLike;
    try {
      ws = factory(this.opts.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let frame: GatewayFrame;
      try {
        frame = JSON.parse(typeof ev.data === 'string' ? ev.data : String(ev.data));
      } catch {
        return;
      }
      void this.handle(ws, frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.handleClose(ev.code);
    };
    ws.onerror = () => {
      // A close event always follows; reconnect logic lives there.
    };
  }

  /** Closes for good (sign-out, page teardown). */
  close() {
    this.stopped = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= OPEN) ws.close(1000, 'client closing');
    this.setState('closed');
  }

  /** Try now instead of waiting for the backoff (the browser came back online). */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  /** Drops the socket as a network failure would (tests, and a dead-socket watchdog). */
  dropConnection() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    try {
      ws.close(4000, 'client dropping connection');
    } catch {
      // already closing
    }
    this.handleClose(1006);
  }

  setPresence(status: 'online' | 'idle' | 'dnd' | 'invisible') {
    this.presence = status;
    if (this.state === 'ready') this.send('presence_update', { status });
  }

  /**
   * In a large community the server sends presence (and member events) only
   * for users a session asked about: the members it shows. Replaces the
   * previous list; at most 1,000 ids (the server's bound).
   */
  subscribePresence(userIds: string[]) {
    this.presenceSubs = userIds.slice(0, 1000);
    if (this.state === 'ready') this.send('subscribe_presence', { user_ids: this.presenceSubs });
  }

  /** Sends a client op (voice_*) on the live session; false when not connected. */
  sendOp(op: string, d: unknown): boolean {
    if (this.state !== 'ready') return false;
    return this.send(op, d);
  }

  private send(op: string, d: unknown): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify({ op, d }));
    return true;
  }

  private async handle(ws: SocketLike, f: GatewayFrame) {
    switch (f.op) {
      case 'hello': {
        const d = (f.d ?? {}) as { heartbeat_interval_ms?: number };
        this.startHeartbeat(Math.max(1000 / 10, d.heartbeat_interval_ms ?? 41_250));
        const token = await this.opts.getToken(this.freshToken);
        this.freshToken = false;
        if (this.ws !== ws) return;
        if (!token) {
          this.revoke();
          return;
        }
        if (this.sessionId) this.send('resume', { token, session_id: this.sessionId, s: this.seq });
        else this.send('identify', { token });
        return;
      }
      case 'heartbeat_ack':
        this.acked = true;
        return;
      case 'heartbeat':
        // The server may ask for a beat right away.
        this.send('heartbeat', { s: this.seq });
        return;
      case 'invalid_session': {
        // Not resumable: start a new session and let the app fetch what it missed.
        if (this.sessionId || this.everReady) this.lostSession = true;
        this.sessionId = null;
        this.seq = 0;
        const token = await this.opts.getToken(false);
        if (this.ws !== ws) return;
        if (!token) {
          this.revoke();
          return;
        }
        this.send('identify', { token });
        return;
      }
      case 'reconnect':
        // The node is restarting (a rolling restart) and closes with 1012
        // next: close now and resume, which lands on another node.
        if (this.ws === ws) ws.close(1000);
        return;
      case 'dispatch':
        this.handleDispatch(f);
        return;
      default:
        return;
    }
  }

  private handleDispatch(f: GatewayFrame) {
    if (typeof f.s === 'number') {
      // Replays after a resume may overlap what we already have: apply each once.
      // READY/RESUMED are control points and never dropped.
      const control = f.t === 'READY' || f.t === 'RESUMED';
      if (!control && f.s <= this.seq) return;
      if (f.t === 'READY' || f.s > this.seq) this.seq = f.s;
    }
    const t = f.t ?? '';
    if (t === 'READY') {
      const d = f.d as { session_id?: string };
      this.sessionId = d?.session_id ?? null;
      const recovered = this.everReady || this.lostSession;
      this.everReady = true;
      this.lostSession = false;
      this.attempt = 0;
      this.emit('dispatch', t, f.d, f.s);
      this.setState('ready');
      this.emit('ready', { resumed: false, recovered });
      if (this.presence) this.send('presence_update', { status: this.presence });
      if (this.presenceSubs.length) this.send('subscribe_presence', { user_ids: this.presenceSubs });
      return;
    }
    if (t === 'RESUMED') {
      this.attempt = 0;
      this.emit('dispatch', t, f.d, f.s);
      this.setState('ready');
      this.emit('ready', { resumed: true, recovered: false });
      if (this.presence) this.send('presence_update', { status: this.presence });
      return;
    }
    this.emit('dispatch', t, f.d, f.s);
  }

  private startHeartbeat(interval: number) {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.acked = true;
    this.heartbeatTimer = setInterval(() => {
      if (!this.acked) {
        // No ack since the last beat: the connection is a zombie. Drop it and resume.
        this.dropConnection();
        return;
      }
      this.acked = false;
      this.send('heartbeat', { s: this.seq });
    }, interval);
  }

  private clearTimers() {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.heartbeatTimer = null;
    this.reconnectTimer = null;
  }

  private revoke() {
    this.stopped = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= OPEN) ws.close(1000, 'signed out');
    this.sessionId = null;
    this.setState('closed');
    this.emit('revoked');
  }

  private handleClose(code: number) {
    this.ws = null;
    this.clearTimers();
    if (this.stopped) {
      this.setState('closed');
      return;
    }
    if (code === 4010) {
      this.revoke();
      return;
    }
    if (code === 4004) this.freshToken = true;
    if (FRESH_SESSION_CODES.has(code) && this.sessionId) {
      this.sessionId = null;
      this.seq = 0;
      this.lostSession = true;
    }
    this.scheduleReconnect(code === 4008 ? 5_000 : 0);
  }

  private scheduleReconnect(minDelay = 0) {
    this.setState('reconnecting');
    const delay = Math.max(minDelay, (this.opts.reconnectDelay ?? defaultReconnectDelay)(this.attempt));
    this.attempt++;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }
}
