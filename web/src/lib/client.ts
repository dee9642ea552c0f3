// The running app: one gateway per tab, the outbox, and every dispatch applied to the
// stores. Components call the actions here; nothing in here touches React.
import type { Channel, Community, Member, Message, NotificationCreateEvent, NotificationReadEvent, Overwrite, PresenceStatus, ReadState, ReadyCommunity, ReadyPayload, Role, User } from '@/api/types';
import { api, gatewayUrl, requestJson, unwrap } from './api';
import { getAccessToken, refresh, sessionRevoked } from './auth';
import { ApiError, describeError } from './errors';
import { Gateway, type GatewayOptions } from './gateway';
import { compareIds, newNonce } from './ids';
import { Outbox, type OutboxItem } from './outbox';
import { restoreUploads } from './attachments';
import type { UploadedFile } from './uploader';
import { channelPermissions } from './permissions';
import * as C from '@/stores/communities';
import * as M from '@/stores/messages';
import * as R from '@/stores/readStates';
import * as I from '@/stores/inbox';
import * as NS from '@/stores/notificationSettings';
import { loadNotificationSettings, notificationsApi, refreshUnreadCount, startMuteClock } from './notifications';
import { setComposerError, setCooldown, restoreDraft } from '@/stores/drafts';
import { bulkDelete as postBulkDelete } from './moderation';
import { setPresence, startTyping, stopTyping, sweepTyping } from '@/stores/presence';
import { startAutoIdle, type AutoIdle } from './autoIdle';
import { sessionStore } from '@/stores/session';
import { callStore, voiceCall } from '@/voice/call';
import * as V from '@/voice/states';

export const PAGE = 50;
const CATCH_UP_PAGE = 100;
const TYPING_EVERY_MS = 8_000;

type Any = Record<string, unknown>;

export interface ClientOptions {
  gateway?: Partial<GatewayOptions>;
}

export class HearthClient {
  readonly gateway: Gateway;
  /** Communities whose presence comes by subscription (READY's `large`). */
  private largeCommunities = new Set<string>();
  readonly outbox: Outbox;
  activeChannelId: string | null = null;
  /** The message list is scrolled to the bottom (new messages are being seen). */
  atBottom = true;
  private loadingOlder = new Set<string>();
  private loadingNewer = new Set<string>();
  private loadingInitial = new Map<string, Promise<void>>();
  /** Jumps to a message in flight, by channel: the first page of that channel is the jump's. */
  private jumping = new Map<string, { seq: number; done: Promise<void> }>();
  private focusSeq = 0;
  private lastTyping = new Map<string, number>();
  private ackTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private acked = new Map<string, string>();
  private cleanups: (() => void)[] = [];
  private unreadRefresh: ReturnType<typeof setTimeout> | null = null;
  private readySeen = false;
  private started = false;
  /** Says idle while the tab is hidden (see lib/autoIdle.ts). */
  private autoIdle: AutoIdle | null = null;

  constructor(opts: ClientOptions = {}) {
    this.gateway = new Gateway({
      url: gatewayUrl,
      getToken: async (fresh) => {
        if (!fresh && getAccessToken()) return getAccessToken();
        try {
          return await refresh();
        } catch {
          return getAccessToken();
        }
      },
      ...opts.gateway,
    });
    this.outbox = new Outbox({
      // Sending goes over REST: try at once unless the browser knows it is offline. A
      // failed attempt queues the message (same nonce) until the gateway is back.
      isOnline: () => typeof navigator === 'undefined' || navigator.onLine !== false,
      send: (item) => this.postMessage(item),
      onSending: (item) => this.patchPending(item, { status: 'sending', error: undefined }),
      onSent: (_item, message) => this.applyMessage(message),
      onQueued: (item, err) => this.patchPending(item, { status: 'queued', error: err ? err.human : undefined }),
      // Slowmode: the server says when we may send again; the text goes back in the box
      // with a countdown instead of being resent by itself.
      failOn429: (item) => (C_get().channels[item.channelId]?.slowmode_secs ?? 0) > 0,
      onFailed: (item, err) => {
        messagesStoreSet((s) => M.removePending(s, item.channelId, item.nonce));
        restoreDraft(item.channelId, item.content);
        restoreUploads(item.channelId, item.attachments ?? []);
        if (err.status === 429) {
          setCooldown(item.channelId, Date.now() + (err.retryAfterMs ?? 1000));
          setComposerError(item.channelId, null);
          return;
        }
        const locked = err.status === 403 && C_get().channels[item.channelId]?.locked;
        setComposerError(item.channelId, locked ? SEND_LOCKED : err.status === 403 ? SEND_FORBIDDEN : err.human);
        // Our permissions changed under us: re-read them so the composer explains itself.
        if (err.status === 403) void this.loadOverwrites(item.channelId);
      },
    });
    this.gateway.on('state', (state) => sessionStore.set((s) => ({ ...s, gateway: state })));
    this.gateway.on('dispatch', (t, d) => this.onDispatch(t, d as Any));
    voiceCall().setSender((op, d) => this.gateway.sendOp(op, d));
    this.gateway.on('ready', (info) => {
      if (info.recovered) {
        // A call belongs to the gateway session that joined it; that one is gone.
        if (typeof window !== 'undefined') voiceCall().teardown();
        void this.loadVoiceStates();
      }
      if (info.recovered) void this.catchUp();
      // No dispatch carries settings changed on another device while we were away.
      if (info.recovered) void loadNotificationSettings().catch(() => undefined);
      void this.outbox.flush();
    });
    this.gateway.on('revoked', () => sessionRevoked());
  }

  /** Idempotent: sign-in starts it before navigating, so /app opens with data in flight. */
  start() {
    if (this.started) return;
    this.started = true;
    this.gateway.connect();
    // Mutes show in the sidebar from the start (READY does not carry settings).
    void loadNotificationSettings().catch(() => undefined);
    this.cleanups.push(startMuteClock());
    // Render from REST while the socket handshakes (and if it can't connect at all):
    // the first screen shouldn't wait for READY.
    void this.bootstrap().catch(() => undefined);
    if (typeof window !== 'undefined') {
      const online = () => {
        this.gateway.reconnectNow();
        // The socket may have survived the outage (then no new READY comes): send what waited.
        void this.outbox.flush();
      };
      const focus = () => this.maybeAck();
      if (typeof document !== 'undefined') {
        const idle = startAutoIdle(document, (s) => this.gateway.setPresence(s));
        this.autoIdle = idle;
        this.cleanups.push(() => {
          idle.stop();
          this.autoIdle = null;
        });
      }
      window.addEventListener('online', online);
      window.addEventListener('focus', focus);
      const sweep = setInterval(() => sweepTyping(), 2_000);
      this.cleanups.push(() => {
        window.removeEventListener('online', online);
        window.removeEventListener('focus', focus);
        clearInterval(sweep);
      });
    }
  }

  stop() {
    this.started = false;
    this.gateway.close();
    for (const c of this.cleanups) c();
    this.cleanups = [];
    for (const t of this.ackTimers.values()) clearTimeout(t);
    if (this.unreadRefresh) clearTimeout(this.unreadRefresh);
    this.unreadRefresh = null;
  }

  me(): User | null {
    return sessionStore.get().user;
  }

  // ---- gateway events -------------------------------------------------------------

  onDispatch(t: string, d: Any) {
    switch (t) {
      case 'READY':
        return this.onReady(d as unknown as ReadyPayload);
      case 'MESSAGE_CREATE':
        return this.onMessageCreate(d as unknown as Message);
      case 'MESSAGE_UPDATE':
        return messagesStoreSet((s) => M.applyUpdate(s, d as unknown as Message));
      case 'USER_UPDATE': {
        // Our own profile changed (here or in another tab: a new avatar, a new name).
        const u = d as unknown as User;
        C_set((s) => C.rememberUser(s, u));
        if (u.id === this.me()?.id) sessionStore.set((s) => (s.user ? { ...s, user: { ...s.user, ...u } } : s));
        return;
      }
      case 'MESSAGE_DELETE': {
        const [channelId, id] = [String(d.channel_id), String(d.id ?? d.message_id)];
        inboxSet((s) => I.dropMessages(s, channelId, [id]));
        this.refreshUnreadSoon();
        return messagesStoreSet((s) => M.applyDelete(s, channelId, id));
      }
      case 'MESSAGE_DELETE_BULK': {
        const channelId = String(d.channel_id);
        const ids = ((d.ids ?? d.message_ids) as unknown[] | undefined ?? []).map(String);
        inboxSet((s) => I.dropMessages(s, channelId, ids));
        this.refreshUnreadSoon();
        return messagesStoreSet((s) => M.applyDeleteMany(s, channelId, ids));
      }
      case 'REACTION_ADD':
      case 'REACTION_REMOVE':
        return messagesStoreSet((s) =>
          M.applyReaction(s, d as unknown as M.ReactionEvent, this.me()?.id ?? null, t === 'REACTION_ADD'),
        );
      case 'CHANNEL_CREATE':
      case 'CHANNEL_UPDATE':
        return this.onChannel(d as unknown as Channel);
      case 'CHANNEL_DELETE':
        return this.forgetChannel(String(d.id));
      case 'COMMUNITY_CREATE':
      case 'COMMUNITY_UPDATE':
        return C_set((s) => C.upsertCommunity(s, d as unknown as ReadyCommunity));
      case 'COMMUNITY_DELETE':
        return this.forgetCommunity(String(d.id));
      case 'MEMBER_ADD':
      case 'MEMBER_UPDATE':
        return this.onMember(d as unknown as Member & { community_id: string });
      case 'MEMBER_REMOVE': {
        const cid = String(d.community_id);
        const uid = String(d.user_id ?? (d.user as Any | undefined)?.id);
        if (uid === this.me()?.id) return this.forgetCommunity(cid);
        return C_set((s) => C.removeMember(s, cid, uid));
      }
      case 'ROLE_CREATE':
      case 'ROLE_UPDATE': {
        const role = ((d.role as Role | undefined) ?? (d as unknown as Role));
        const cid = String(role.community_id ?? d.community_id);
        C_set((s) => C.upsertRole(s, { ...role, community_id: cid }));
        return this.afterPermissionChange(cid);
      }
      case 'ROLE_DELETE': {
        const cid = String(d.community_id);
        C_set((s) => C.removeRole(s, cid, String(d.role_id ?? d.id)));
        return this.afterPermissionChange(cid);
      }
      case 'TYPING_START': {
        const uid = String(d.user_id);
        if (uid !== this.me()?.id) startTyping(String(d.channel_id), uid);
        if (d.member && d.community_id) this.onMember({ ...(d.member as Member), community_id: String(d.community_id) });
        return;
      }
      case 'PRESENCE_UPDATE': {
        const uid = String(d.user_id ?? (d.user as Any | undefined)?.id);
        return setPresence(uid, (d.status as PresenceStatus) ?? 'offline');
      }
      case 'READ_STATE_UPDATE':
        return readSet((s) => R.applyReadState(s, d as unknown as ReadState));
      case 'NOTIFICATION_CREATE': {
        const { unread_count, ...n } = d as unknown as NotificationCreateEvent;
        if (n.message?.author) C_set((s) => C.rememberUser(s, n.message!.author));
        return inboxSet((s) => I.applyCreate(s, n, unread_count));
      }
      case 'NOTIFICATION_READ':
        return inboxSet((s) => I.applyRead(s, d as unknown as NotificationReadEvent));
      case 'VOICE_STATE_UPDATE':
        return V.voiceStatesStore.set((s) => V.applyVoiceState(s, d as unknown as V.VoiceState));
      case 'VOICE_SERVER':
      case 'VOICE_SIGNAL':
        if (typeof window !== 'undefined') voiceCall().onDispatch(t, d);
        return;
      default:
        return;
    }
  }

  /** Loads what READY would carry over REST; ignored if READY got here first. */
  async bootstrap(): Promise<void> {
    const me = this.me() ?? (await unwrap<User>(api.GET('/api/v1/users/@me')));
    const [communities, dms, readStates, unread] = await Promise.all([
      unwrap<Community[]>(api.GET('/api/v1/communities')),
      unwrap<Channel[]>(api.GET('/api/v1/dms')).catch(() => [] as Channel[]),
      unwrap<ReadState[]>(api.GET('/api/v1/read-states')).catch(() => [] as ReadState[]),
      // READY's `notifications_unread`, over REST: the count of a one-entry page.
      notificationsApi.list({ limit: 1, unread: true }).then((p) => p.unread_count, () => undefined),
    ]);
    const full: ReadyCommunity[] = await Promise.all(
      communities.map(async (c) => {
        const [channels, roles] = await Promise.all([
          unwrap<Channel[]>(api.GET('/api/v1/communities/{id}/channels', { params: { path: { id: c.id } } })).catch(() => [] as Channel[]),
          unwrap<Role[]>(api.GET('/api/v1/communities/{id}/roles', { params: { path: { id: c.id } } })).catch(() => [] as Role[]),
        ]);
        return { ...c, channels, roles };
      }),
    );
    if (this.readySeen) return;
    this.onReady({ session_id: '', user: me, communities: full, dms, read_states: readStates, notifications_unread: unread }, true);
  }

  private onReady(d: ReadyPayload, fromRest = false) {
    if (!fromRest) this.readySeen = true;
    this.largeCommunities = new Set((d.communities ?? []).filter((c) => c.large).map((c) => c.id));
    sessionStore.set((s) => ({ ...s, user: d.user, status: 'signed_in', loaded: true }));
    C_set((s) => C.fromReady(s, d.communities ?? [], d.dms ?? [], d.user));
    const last: Record<string, string> = {};
    for (const c of d.communities ?? []) for (const ch of c.channels ?? []) if (ch.last_message_id) last[ch.id] = ch.last_message_id;
    for (const ch of d.dms ?? []) if (ch.last_message_id) last[ch.id] = ch.last_message_id;
    // Keep newer IDs we saw live before this READY.
    const prev = R_get().lastMessage;
    for (const [cid, id] of Object.entries(prev)) if (!last[cid] || compareIds(id, last[cid]) > 0) last[cid] = id;
    readSet(() => R.fromReady(d.read_states ?? [], last));
    for (const p of d.presences ?? []) setPresence(p.user_id, p.status);
    setPresence(d.user.id, 'online');
    if (typeof d.notifications_unread === 'number') inboxSet((s) => I.fromReady(s, d.notifications_unread!));
    if (typeof performance !== 'undefined' && performance.getEntriesByName('hearth:data-loaded').length === 0) performance.mark('hearth:data-loaded');
    this.preloadSelected();
    void this.loadVoiceStates((d.communities ?? []).map((c) => c.id));
    // Channels we can no longer see lose their cached history.
    const chans = C_get().channels;
    messagesStoreSet((s) => {
      let next = s;
      for (const id of Object.keys(s)) if (!chans[id]) next = M.dropChannel(next, id);
      return next;
    });
  }

  /**
   * Starts fetching the channel the app is about to show (the one in the URL, or the
   * first text channel) so history arrives while the shell renders.
   */
  private preloadSelected() {
    if (typeof window === 'undefined') return;
    const q = new URLSearchParams(window.location.search);
    const s = C_get();
    let ch = q.get('ch');
    if (!ch || !s.channels[ch]) {
      const c = q.get('c') && s.communities[q.get('c')!] ? q.get('c')! : s.order[0];
      const first = C.sortChannels(Object.values(s.channels).filter((x) => x.community_id === c && x.kind === 'text'))[0];
      ch = first?.id ?? null;
    }
    if (ch) void this.loadInitial(ch).catch(() => undefined);
  }

  private onMessageCreate(m: Message) {
    C_set((s) => C.rememberUser(s, m.author));
    stopTyping(m.channel_id, m.author.id);
    this.applyMessage(m);
  }

  /**
   * Adds a message from any source (event, POST answer, catch-up) exactly once.
   * Catch-up passes countMentions=false: the fresh READY's read states already count them.
   */
  applyMessage(m: Message, countMentions = true) {
    messagesStoreSet((s) => M.applyCreate(s, m));
    const me = this.me();
    if (!me) return;
    if (!countMentions) {
      readSet((s) => R.noteLastMessage(s, m.channel_id, m.id));
      return;
    }
    const ch = C_get().channels[m.channel_id];
    const isDm = ch?.kind === 'dm' || ch?.kind === 'group_dm';
    readSet((s) => R.onMessage(s, m, this.meForMentions(m.community_id), { reading: this.isReading(m.channel_id), isDm }));
    if (this.isReading(m.channel_id)) this.scheduleAck(m.channel_id);
  }

  private meForMentions(communityId: string | null | undefined): R.Me {
    const me = this.me();
    const roleIds = communityId ? C_get().members[communityId]?.[me?.id ?? '']?.roles ?? [] : [];
    return { id: me?.id ?? '', roleIds };
  }

  private onChannel(ch: Channel) {
    if (ch.community_id && !this.canView(ch)) {
      this.forgetChannel(ch.id);
      return;
    }
    C_set((s) => C.upsertChannel(s, ch));
    if (ch.last_message_id) readSet((s) => R.noteLastMessage(s, ch.id, ch.last_message_id!));
    // CHANNEL_UPDATE follows overwrite changes but may not carry them: read them.
    if (ch.community_id && !('overwrites' in ch)) void this.loadOverwrites(ch.id);
  }

  /** Reads a community channel's overwrites (what SEND_MESSAGES etc. resolve against). */
  async loadOverwrites(channelId: string) {
    const ch = C_get().channels[channelId];
    if (!ch?.community_id) return;
    try {
      const list = await unwrap<Overwrite[]>(api.GET('/api/v1/channels/{id}/overwrites', { params: { path: { id: channelId } } }));
      C_set((s) => (s.channels[channelId] ? C.upsertChannel(s, { ...s.channels[channelId], overwrites: list }) : s));
    } catch {
      // Not visible any more (CHANNEL_DELETE follows) or offline: the next event corrects it.
    }
  }

  private onMember(m: Member & { community_id: string }) {
    const { community_id, ...member } = m as Member & { community_id: string };
    C_set((s) => C.upsertMember(s, community_id, member as Member));
    if (member.user?.id === this.me()?.id) void this.afterPermissionChange(community_id);
  }

  private canView(ch: Channel): boolean {
    const me = this.me();
    const s = C_get();
    const community = ch.community_id ? s.communities[ch.community_id] : undefined;
    if (!me || !community) return true;
    const member = s.members[community.id]?.[me.id];
    // Without our member record we can't judge role overwrites: trust the server.
    if (!member && community.owner_id !== me.id) {
      const everyoneOw = ch.overwrites?.find((o) => o.target_id === community.id);
      if (!everyoneOw?.deny.includes('VIEW_CHANNEL')) return true;
      const others = ch.overwrites?.some((o) => o.target_id !== community.id && o.allow.includes('VIEW_CHANNEL'));
      if (others) return true;
    }
    const perms = channelPermissions({ community, roles: s.roles[community.id] ?? [], member, userId: me.id }, ch);
    return perms.has('VIEW_CHANNEL');
  }

  /** Our roles or a role's permissions changed: re-read which channels we can see. */
  private async afterPermissionChange(communityId: string) {
    const s = C_get();
    const me = this.me();
    for (const ch of Object.values(s.channels)) if (ch.community_id === communityId && !this.canView(ch)) this.forgetChannel(ch.id);
    if (!me || !s.communities[communityId]) return;
    try {
      const list = await unwrap<Channel[]>(api.GET('/api/v1/communities/{id}/channels', { params: { path: { id: communityId } } }));
      const ids = new Set(list.map((c) => c.id));
      C_set((st) => {
        let next = st;
        for (const ch of list) next = C.upsertChannel(next, ch);
        for (const ch of Object.values(st.channels)) if (ch.community_id === communityId && !ids.has(ch.id)) next = C.removeChannel(next, ch.id);
        return next;
      });
      for (const ch of Object.values(s.channels)) if (ch.community_id === communityId && !ids.has(ch.id)) messagesStoreSet((m) => M.dropChannel(m, ch.id));
    } catch {
      // The next event or READY corrects it.
    }
  }

  forgetChannel(id: string) {
    inboxSet((s) => I.dropChannels(s, [id]));
    this.refreshUnreadSoon();
    C_set((s) => C.removeChannel(s, id));
    messagesStoreSet((s) => M.dropChannel(s, id));
  }

  /** Who is in which voice channel (then VOICE_STATE_UPDATE keeps it current). */
  async loadVoiceStates(ids: readonly string[] = C_get().order) {
    await Promise.all(
      ids.map(async (id) => {
        try {
          const list = await requestJson<V.VoiceState[]>('GET', `/api/v1/communities/${id}/voice-states`);
          V.voiceStatesStore.set((s) => V.loadStates(s, id, list ?? []));
        } catch {
          // not critical: updates still arrive
        }
      }),
    );
  }

  forgetCommunity(id: string) {
    V.voiceStatesStore.set((s) => V.forgetCommunity(s, id));
    const vc = typeof window !== 'undefined' ? voiceCall() : null;
    if (vc && callCommunity() === id) vc.teardown();
    const chans = Object.values(C_get().channels).filter((c) => c.community_id === id).map((c) => c.id);
    C_set((s) => C.removeCommunity(s, id));
    inboxSet((s) => I.dropChannels(s, chans));
    this.refreshUnreadSoon();
    messagesStoreSet((s) => chans.reduce((acc, cid) => M.dropChannel(acc, cid), s));
  }

  /**
   * A deleted message or a channel we lost may take unread notifications with it, and no
   * dispatch says so: re-read the count shortly after (once for a burst), and only when
   * the bell shows any.
   */
  private refreshUnreadSoon() {
    if (I.inboxStore.get().unread === 0 || this.unreadRefresh || !this.started) return;
    this.unreadRefresh = setTimeout(() => {
      this.unreadRefresh = null;
      void refreshUnreadCount().catch(() => undefined);
    }, 1500);
  }

  // ---- history --------------------------------------------------------------------

  /** First page of a channel (newest 50). Shared by concurrent callers. */
  loadInitial(channelId: string): Promise<void> {
    const log = M_get()[channelId];
    if (log?.loaded) return Promise.resolve();
    // Opening the channel for a jump: the window around the message is its first page.
    const jump = this.jumping.get(channelId);
    if (jump) return jump.done;
    const running = this.loadingInitial.get(channelId);
    if (running) return running;
    const p = (async () => {
      const epoch = M_get()[channelId]?.epoch ?? 0;
      const page = await unwrap<Message[]>(
        api.GET('/api/v1/channels/{id}/messages', { params: { path: { id: channelId }, query: { limit: PAGE } } }),
      );
      this.rememberAuthors(page);
      messagesStoreSet((s) => M.applyPage(s, channelId, page, { initial: true, limit: PAGE, epoch }));
      const newest = M.newestId(M_get()[channelId]);
      if (newest) readSet((s) => R.noteLastMessage(s, channelId, newest));
    })().finally(() => this.loadingInitial.delete(channelId));
    this.loadingInitial.set(channelId, p);
    return p;
  }

  /** The page before the oldest message we have (scrolling up). */
  async loadOlder(channelId: string): Promise<void> {
    const log = M_get()[channelId];
    if (!log?.loaded || !log.hasMoreBefore || this.loadingOlder.has(channelId)) return;
    const oldest = log.messages[0]?.id;
    if (!oldest) return;
    const epoch = log.epoch;
    this.loadingOlder.add(channelId);
    try {
      const page = await unwrap<Message[]>(
        api.GET('/api/v1/channels/{id}/messages', { params: { path: { id: channelId }, query: { before: oldest, limit: PAGE } } }),
      );
      this.rememberAuthors(page);
      messagesStoreSet((s) => M.applyPage(s, channelId, page, { older: true, limit: PAGE, epoch }));
    } finally {
      this.loadingOlder.delete(channelId);
    }
  }

  /** The page after the newest message of a detached window (scrolling down); may make it live again. */
  async loadNewer(channelId: string): Promise<void> {
    const log = M_get()[channelId];
    if (!log?.loaded || !log.detached || this.loadingNewer.has(channelId)) return;
    const newest = M.newestId(log);
    if (!newest) return;
    const epoch = log.epoch;
    this.loadingNewer.add(channelId);
    try {
      const page = await unwrap<Message[]>(
        api.GET('/api/v1/channels/{id}/messages', { params: { path: { id: channelId }, query: { after: newest, limit: PAGE } } }),
      );
      this.rememberAuthors(page);
      messagesStoreSet((s) => M.applyNewer(s, channelId, page, { limit: PAGE, epoch }));
      const now = M_get()[channelId];
      if (now && now.epoch === epoch && !now.detached) await this.joined(channelId);
    } finally {
      this.loadingNewer.delete(channelId);
    }
  }

  /**
   * Opens a channel's history at one message (a search result): the log becomes the
   * window `messages?around=` answers, and the list scrolls to the message and marks it.
   * A message already in the log is only scrolled to.
   */
  jumpTo(channelId: string, messageId: string): Promise<void> {
    const seq = ++this.focusSeq;
    const have = M_get()[channelId];
    // (Unless another jump is on its way: its window would replace this one's scroll.)
    if (have?.loaded && !this.jumping.has(channelId) && M.findMessage(M_get(), channelId, messageId)) {
      messagesStoreSet((s) => M.setFocus(s, channelId, messageId, seq));
      return Promise.resolve();
    }
    const done = (async () => {
      const page = await requestJson<Message[]>('GET', `/api/v1/channels/${channelId}/messages?around=${encodeURIComponent(messageId)}&limit=${PAGE}`);
      // A later jump in the same channel wins.
      if (this.jumping.get(channelId)?.seq !== seq) return;
      this.rememberAuthors(page ?? []);
      messagesStoreSet((s) => M.applyAround(s, channelId, page ?? [], { limit: PAGE, targetId: messageId, seq }));
      const now = M_get()[channelId];
      if (now && !now.detached) await this.joined(channelId);
    })().finally(() => {
      if (this.jumping.get(channelId)?.seq === seq) this.jumping.delete(channelId);
    });
    this.jumping.set(channelId, { seq, done });
    return done;
  }

  /** "Jump to present": a detached window gives way to the newest page, live again. */
  async jumpToPresent(channelId: string): Promise<void> {
    const seq = ++this.focusSeq;
    this.jumping.delete(channelId);
    const page = await unwrap<Message[]>(
      api.GET('/api/v1/channels/{id}/messages', { params: { path: { id: channelId }, query: { limit: PAGE } } }),
    );
    this.rememberAuthors(page);
    messagesStoreSet((s) => M.applyPresent(s, channelId, page, { limit: PAGE, seq }));
    await this.joined(channelId);
  }

  /**
   * A window just became live. A message sent while it was detached and not in the last
   * page (it arrived between the server's answer and now) was not added: fetch after the
   * newest we have, as after a reconnect. Later ones arrive live.
   */
  private async joined(channelId: string) {
    await this.catchUpChannel(channelId);
    const newest = M.newestId(M_get()[channelId]);
    if (newest) readSet((s) => R.noteLastMessage(s, channelId, newest));
    this.maybeAck();
  }

  private rememberAuthors(page: readonly Message[]) {
    C_set((s) => page.reduce((acc, m) => C.rememberUser(acc, m.author), s));
  }

  /**
   * After a new session replaced a lost one: fetch `messages?after=<newest we have>`
   * for every channel we hold history for, oldest first, until a short page.
   */
  async catchUp(): Promise<void> {
    const logs = M_get();
    const chans = C_get().channels;
    await Promise.all(
      Object.keys(logs).map(async (channelId) => {
        if (!chans[channelId] && Object.keys(chans).length > 0) return;
        await this.catchUpChannel(channelId);
      }),
    );
  }

  /** One channel's catch-up; a detached window has nothing live to catch up (it pages forward instead). */
  private async catchUpChannel(channelId: string): Promise<void> {
    const log = M_get()[channelId];
    if (!log || log.detached) return;
    const start = M.newestId(log);
    if (!start) return;
    let after: string = start;
    for (let guard = 0; guard < 1000; guard++) {
      let page: Message[];
      try {
        page = await unwrap<Message[]>(
          api.GET('/api/v1/channels/{id}/messages', { params: { path: { id: channelId }, query: { after, limit: CATCH_UP_PAGE } } }),
        );
      } catch {
        return;
      }
      this.rememberAuthors(page);
      for (const m of page) this.applyMessage(m, false);
      if (page.length < CATCH_UP_PAGE) break;
      const newest: string = page.reduce<string>((a, m) => (compareIds(m.id, a) > 0 ? m.id : a), after);
      if (newest === after) break;
      after = newest;
    }
  }

  // ---- sending --------------------------------------------------------------------

  private postMessage(item: OutboxItem): Promise<Message> {
    const body: { content: string; nonce: string; reply_to_id?: string; attachment_ids?: string[] } = { content: item.content, nonce: item.nonce };
    if (item.replyToId) body.reply_to_id = item.replyToId;
    if (item.attachments?.length) body.attachment_ids = item.attachments.map((a) => a.id);
    return unwrap<Message>(api.POST('/api/v1/channels/{id}/messages', { params: { path: { id: item.channelId } }, body }));
  }

  private patchPending(item: OutboxItem, patch: Partial<M.PendingMessage>) {
    messagesStoreSet((s) => M.updatePending(s, item.channelId, item.nonce, patch));
  }

  /** Optimistic send: shown at once as pending, posted now or when back online. */
  sendMessage(channelId: string, content: string, replyToId: string | null = null, attachments: UploadedFile[] = []): string {
    const me = this.me();
    const nonce = newNonce();
    // Sending from a window of the past goes back to the present, where the message shows.
    if (M_get()[channelId]?.detached) void this.jumpToPresent(channelId).catch(() => undefined);
    setComposerError(channelId, null);
    messagesStoreSet((s) =>
      M.addPending(s, {
        nonce,
        channel_id: channelId,
        content,
        reply_to_id: replyToId,
        created_at: new Date().toISOString(),
        author: { id: me?.id ?? '', username: me?.username ?? '', display_name: me?.display_name ?? null, avatar_url: me?.avatar_url ?? null },
        status: typeof navigator === 'undefined' || navigator.onLine !== false ? 'sending' : 'queued',
        ...(attachments.length ? { attachments: attachments.map((a) => ({ id: a.id, filename: a.filename })) } : {}),
      }),
    );
    this.lastTyping.delete(channelId);
    this.outbox.enqueue({ nonce, channelId, content, replyToId, ...(attachments.length ? { attachments } : {}) });
    return nonce;
  }

  retryPending(channelId: string) {
    void channelId;
    void this.outbox.flush();
  }

  discardPending(channelId: string, nonce: string) {
    this.outbox.remove(nonce);
    messagesStoreSet((s) => M.removePending(s, channelId, nonce));
  }

  async editMessage(channelId: string, id: string, content: string) {
    const m = await unwrap<Message>(
      api.PATCH('/api/v1/channels/{id}/messages/{message_id}', { params: { path: { id: channelId, message_id: id } }, body: { content } }),
    );
    messagesStoreSet((s) => M.applyUpdate(s, m));
  }

  async deleteMessage(channelId: string, id: string) {
    await unwrap(api.DELETE('/api/v1/channels/{id}/messages/{message_id}', { params: { path: { id: channelId, message_id: id } } }));
    messagesStoreSet((s) => M.applyDelete(s, channelId, id));
  }

  /** Deletes 2-100 messages of a channel in one call (MANAGE_MESSAGES); every viewer gets MESSAGE_DELETE_BULK. */
  async bulkDelete(channelId: string, ids: readonly string[]) {
    await postBulkDelete(channelId, ids);
    messagesStoreSet((s) => M.applyDeleteMany(s, channelId, ids));
  }

  async toggleReaction(channelId: string, messageId: string, emoji: string, add: boolean) {
    const me = this.me();
    const ev = { channel_id: channelId, message_id: messageId, emoji, user_id: me?.id ?? '' };
    messagesStoreSet((s) => M.applyReaction(s, ev, me?.id ?? null, add));
    try {
      const opts = { params: { path: { id: channelId, message_id: messageId, emoji } } };
      await unwrap(add ? api.PUT('/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}', opts) : api.DELETE('/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}', opts));
    } catch (e) {
      messagesStoreSet((s) => M.applyReaction(s, ev, me?.id ?? null, !add));
      throw e;
    }
  }

  async setPinned(channelId: string, messageId: string, pinned: boolean) {
    const opts = { params: { path: { id: channelId, message_id: messageId } } };
    await unwrap(pinned ? api.PUT('/api/v1/channels/{id}/pins/{message_id}', opts) : api.DELETE('/api/v1/channels/{id}/pins/{message_id}', opts));
    messagesStoreSet((s) => M.applyUpdate(s, { id: messageId, channel_id: channelId, pinned }));
  }

  /** Tells others we're typing, at most every 8 s per channel. */
  typing(channelId: string) {
    const now = Date.now();
    if (now - (this.lastTyping.get(channelId) ?? 0) < TYPING_EVERY_MS) return;
    this.lastTyping.set(channelId, now);
    void unwrap(api.POST('/api/v1/channels/{id}/typing', { params: { path: { id: channelId } } })).catch(() => undefined);
  }

  // ---- read state -----------------------------------------------------------------

  isReading(channelId: string): boolean {
    if (channelId !== this.activeChannelId || !this.atBottom) return false;
    // The bottom of a window of the past is not the newest message.
    if (M_get()[channelId]?.detached) return false;
    if (typeof document === 'undefined') return true;
    return document.visibilityState === 'visible' && document.hasFocus();
  }

  setActiveChannel(channelId: string | null) {
    this.activeChannelId = channelId;
    this.atBottom = true;
    this.maybeAck();
  }

  setAtBottom(atBottom: boolean) {
    const was = this.atBottom;
    this.atBottom = atBottom;
    if (atBottom && !was) this.maybeAck();
  }

  maybeAck() {
    const id = this.activeChannelId;
    if (id && this.isReading(id)) this.scheduleAck(id);
  }

  /** Marks read locally now and tells the server shortly after (debounced). */
  private scheduleAck(channelId: string) {
    const newest = M.newestId(M_get()[channelId]) ?? R_get().lastMessage[channelId];
    if (!newest) return;
    readSet((s) => R.ack(s, channelId, newest));
    if (this.acked.get(channelId) === newest) return;
    const t = this.ackTimers.get(channelId);
    if (t) clearTimeout(t);
    this.ackTimers.set(
      channelId,
      setTimeout(() => {
        this.ackTimers.delete(channelId);
        const latest = M.newestId(M_get()[channelId]) ?? newest;
        if (this.acked.get(channelId) === latest) return;
        this.acked.set(channelId, latest);
        void unwrap(api.PUT('/api/v1/channels/{id}/read', { params: { path: { id: channelId } }, body: { message_id: latest } })).catch(() => {
          this.acked.delete(channelId);
        });
      }, 400),
    );
  }

  // ---- communities, members, DMs ------------------------------------------------

  async loadMembers(communityId: string): Promise<void> {
    let after: string | undefined;
    const all: Member[] = [];
    for (let guard = 0; guard < 200; guard++) {
      const page = await unwrap<Member[]>(
        api.GET('/api/v1/communities/{id}/members', { params: { path: { id: communityId }, query: after ? { after, limit: 100 } : { limit: 100 } } }),
      );
      all.push(...page);
      if (page.length < 100) break;
      after = page[page.length - 1].user.id;
    }
    C_set((s) => C.setMembers(s, communityId, all));
    // A large community sends statuses only for the members we show.
    if (this.largeCommunities.has(communityId)) this.gateway.subscribePresence(all.map((m) => m.user.id));
  }

  async createCommunity(name: string): Promise<Community> {
    const c = await unwrap<Community>(api.POST('/api/v1/communities', { body: { name } }));
    await this.refreshCommunity(c.id, c);
    return c;
  }

  /** Loads a community's channels and roles over REST (after create/join, before its event lands). */
  async refreshCommunity(id: string, known?: Community) {
    const [community, channels, roles] = await Promise.all([
      known ? Promise.resolve(known) : unwrap<Community>(api.GET('/api/v1/communities/{id}', { params: { path: { id } } })),
      unwrap<Channel[]>(api.GET('/api/v1/communities/{id}/channels', { params: { path: { id } } })),
      unwrap<Role[]>(api.GET('/api/v1/communities/{id}/roles', { params: { path: { id } } })).catch(() => [] as Role[]),
    ]);
    C_set((s) => C.upsertCommunity(s, { ...community, channels, roles }));
  }

  async joinInvite(code: string): Promise<Community> {
    const c = await unwrap<Community>(api.POST('/api/v1/invites/{code}', { params: { path: { code } } }));
    await this.refreshCommunity(c.id, c.id ? c : undefined).catch(() => undefined);
    return c;
  }

  async leaveCommunity(id: string) {
    // Contract: DELETE /communities/{id}/members/@me ("@me" in the user_id slot).
    await unwrap(api.DELETE('/api/v1/communities/{id}/members/{user_id}', { params: { path: { id, user_id: '@me' } } }));
    this.forgetCommunity(id);
  }

  async openDm(userIds: string[]): Promise<Channel> {
    const ch = await unwrap<Channel>(api.POST('/api/v1/dms', { body: { user_ids: userIds } }));
    C_set((s) => C.upsertChannel(s, ch));
    return ch;
  }

  setPresence(status: 'online' | 'idle' | 'dnd' | 'invisible') {
    this.autoIdle?.choose(status);
    this.gateway.setPresence(status);
    const me = this.me();
    if (me) setPresence(me.id, status === 'invisible' ? 'offline' : status);
  }
}

// Store shorthands (keeps the handlers above readable).
function messagesStoreSet(fn: (s: M.MessagesState) => M.MessagesState) {
  M.messagesStore.set(fn);
}
function M_get() {
  return M.messagesStore.get();
}
function C_set(fn: (s: C.CommunitiesState) => C.CommunitiesState) {
  C.communitiesStore.set(fn);
}
function C_get() {
  return C.communitiesStore.get();
}
function readSet(fn: (s: R.ReadStatesState) => R.ReadStatesState) {
  R.readStatesStore.set(fn);
}
function R_get() {
  return R.readStatesStore.get();
}
function inboxSet(fn: (s: I.InboxState) => I.InboxState) {
  I.inboxStore.set(fn);
}

let instance: HearthClient | null = null;

export const SEND_LOCKED = 'This channel is locked: only moderators can send messages. Your text is back in the box.';
export const SEND_FORBIDDEN = 'You no longer have permission to send messages in this channel. Your text is back in the box.';

/** The tab's one client (and so one gateway connection). */
export function getClient(): HearthClient {
  if (!instance) instance = new HearthClient();
  return instance;
}

/** Sign-out: drop the connection and every cached byte of the old account. */
function callCommunity(): string | null {
  return callStore.get().communityId;
}

export function resetClient() {
  if (typeof window !== 'undefined' && callStore.get().status !== 'idle') voiceCall().leave();
  V.voiceStatesStore.set({});
  instance?.stop();
  instance = null;
  M.messagesStore.set({});
  sessionStore.set((s) => ({ ...s, loaded: false, gateway: 'idle' }));
  C.communitiesStore.set({ communities: {}, order: [], channels: {}, roles: {}, members: {}, membersLoaded: {}, dms: [], users: {} });
  R.readStatesStore.set({ byChannel: {}, lastMessage: {} });
  I.inboxStore.set(I.EMPTY_INBOX);
  NS.notificationSettingsStore.set(NS.EMPTY_SETTINGS);
}

export { describeError, ApiError };
