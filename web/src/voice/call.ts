// The one call of this tab: gateway ops (voice_join/leave/state/signal/layer), the
// RTCPeerConnection, local media (microphone, camera with simulcast, screen), remote
// streams by participant, connection quality. Components read `callStore`.
// Browser-only (RTCPeerConnection, getUserMedia); the pure parts live beside it.
import { createStore } from '@/stores/store';
import { notify } from '@/stores/notices';
import { Negotiator, type InSignal, type OutSignal, type TrackKind, type TrackLabel } from './negotiation';
import { assessQuality, sampleStats, type QualityReport, type StatsSample } from './quality';

export type CallStatus = 'idle' | 'joining' | 'connecting' | 'connected' | 'reconnecting' | 'failed';
export type Layer = 'low' | 'medium' | 'high';

export interface RemoteStream {
  id: string;
  participant: string;
  screen: boolean;
  stream: MediaStream;
  /** Bumped when tracks are added or removed (MediaStream itself is mutable). */
  version: number;
}

export interface CallState {
  status: CallStatus;
  communityId: string | null;
  channelId: string | null;
  selfMute: boolean;
  selfDeaf: boolean;
  camera: boolean;
  screen: boolean;
  localCamera: MediaStream | null;
  localScreen: MediaStream | null;
  remote: Readonly<Record<string, RemoteStream>>;
  activeSpeaker: string | null;
  quality: QualityReport | null;
  micId: string | null;
  camId: string | null;
}

const INITIAL: CallState = {
  status: 'idle', communityId: null, channelId: null, selfMute: false, selfDeaf: false, camera: false, screen: false,
  localCamera: null, localScreen: null, remote: {}, activeSpeaker: null, quality: null, micId: null, camId: null,
};

export const callStore = createStore<CallState>(INITIAL);

/** Sends a client op; the app wires this to its gateway. */
export type SendOp = (op: string, d: unknown) => boolean;

interface IceServerIn {
  urls: string[] | string;
  username?: string;
  credential?: string;
}

/** `?relay=1` or localStorage `hearth.voice.relay = 1`: TURN relay only (tests, strict networks). */
export function relayOnly(): boolean {
  if (typeof window === 'undefined') return false;
  try {
    if (new URLSearchParams(window.location.search).get('relay') === '1') return true;
    return window.localStorage.getItem('hearth.voice.relay') === '1';
  } catch {
    return false;
  }
}

/** `localStorage['hearth.voice.allCodecs'] = '1'`: offer every codec the browser has (tests the SFU's answers). */
function allCodecs(): boolean {
  try {
    return typeof window !== 'undefined' && window.localStorage.getItem('hearth.voice.allCodecs') === '1';
  } catch {
    return false;
  }
}

const SIMULCAST: RTCRtpEncodingParameters[] = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_500_000 },
];

export interface CallTimings {
  joinAt: number;
  serverAt?: number;
  offerAt?: number;
  connectedAt?: number;
}

class VoiceCall {
  private send: SendOp = () => false;
  private pc: RTCPeerConnection | null = null;
  private neg: Negotiator | null = null;
  private mic: MediaStreamTrack | null = null;
  private micPromise: Promise<MediaStreamTrack | null> | null = null;
  private camTrack: MediaStreamTrack | null = null;
  private screenTrack: MediaStreamTrack | null = null;
  private kinds = new WeakMap<RTCRtpTransceiver, TrackKind>();
  private tx: Partial<Record<TrackKind, RTCRtpTransceiver>> = {};
  private layers = new Map<string, Layer>();
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  private lastSample: StatsSample | null = null;
  private canSpeak = true;
  timings: CallTimings | null = null;

  setSender(send: SendOp) {
    this.send = send;
  }

  private set(patch: Partial<CallState> | ((s: CallState) => Partial<CallState>)) {
    callStore.set((s) => ({ ...s, ...(typeof patch === 'function' ? patch(s) : patch) }));
  }

  /** Joins a voice channel (the server leaves any other call of ours). */
  join(communityId: string, channelId: string, opts: { speak: boolean }) {
    const s = callStore.get();
    if (s.channelId === channelId && s.status !== 'idle' && s.status !== 'failed') return;
    this.canSpeak = opts.speak;
    this.timings = { joinAt: performance.now() };
    if (!this.send('voice_join', { channel_id: channelId, self_mute: s.selfMute, self_deaf: s.selfDeaf })) {
      notify('Not connected to the server; try again in a moment.');
      return;
    }
    this.set({ status: 'joining', communityId, channelId, remote: {}, activeSpeaker: null, quality: null });
    // Ask for the microphone while the server answers.
    if (opts.speak && !this.mic) this.micPromise = this.openMic(s.micId);
  }

  leave() {
    this.send('voice_leave', {});
    this.teardown();
  }

  private async openMic(deviceId: string | null): Promise<MediaStreamTrack | null> {
    try {
      const m = await navigator.mediaDevices.getUserMedia({
        audio: deviceId ? { deviceId: { exact: deviceId }, echoCancellation: true, noiseSuppression: true } : { echoCancellation: true, noiseSuppression: true },
      });
      const t = m.getAudioTracks()[0] ?? null;
      if (t) t.enabled = !callStore.get().selfMute;
      this.mic = t;
      return t;
    } catch (e) {
      notify(`Microphone unavailable: ${(e as Error).message || e}. You can still listen.`);
      return null;
    }
  }

  // ---- server events ---------------------------------------------------------------

  onDispatch(t: string, d: Record<string, unknown>) {
    if (t === 'VOICE_SERVER') void this.onServer(d);
    else if (t === 'VOICE_SIGNAL') this.onSignal(d);
  }

  private async onServer(d: Record<string, unknown>) {
    if (this.timings) this.timings.serverAt = performance.now();
    this.closePc();
    const communityId = String(d.community_id);
    const channelId = String(d.channel_id);
    this.set({ status: 'connecting', communityId, channelId, remote: {} });
    const iceServers = ((d.ice_servers as IceServerIn[] | undefined) ?? []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: relayOnly() ? 'relay' : 'all', bundlePolicy: 'max-bundle' });
    this.pc = pc;
    const neg = new Negotiator(
      pc as unknown as ConstructorParameters<typeof Negotiator>[0],
      (sig: OutSignal) => this.send('voice_signal', sig),
      () => this.labels(),
      (e) => console.warn('voice negotiation', e),
    );
    this.neg = neg;
    pc.onicecandidate = (e) => neg.localCandidate(e.candidate ? e.candidate.toJSON() as { candidate: string } : null);
    pc.ontrack = (e) => this.onTrack(e);
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      const st = pc.connectionState;
      if (st === 'connected') {
        if (this.timings && !this.timings.connectedAt) this.timings.connectedAt = performance.now();
        this.set({ status: 'connected' });
      } else if (st === 'disconnected') this.set({ status: 'reconnecting' });
      else if (st === 'failed') this.set({ status: 'failed' });
    };
    this.publishWindow();

    const mic = this.mic ?? (this.micPromise ? await this.micPromise : this.canSpeak ? await (this.micPromise = this.openMic(callStore.get().micId)) : null);
    if (this.pc !== pc) return;
    if (mic) this.addSender('audio', mic);
    else pc.addTransceiver('audio', { direction: 'recvonly' });
    // Settle video codecs in the first exchange even when not publishing video.
    if (this.camTrack) this.addSender('camera', this.camTrack);
    else pc.addTransceiver('video', { direction: 'recvonly' });
    if (this.screenTrack) this.addSender('screen', this.screenTrack);
    await neg.requestOffer();
    if (this.timings) this.timings.offerAt = performance.now();
    this.startStats();
  }

  private onSignal(d: Record<string, unknown>) {
    const type = String(d.type);
    switch (type) {
      case 'offer':
      case 'answer':
      case 'candidate':
        void this.neg?.remote(d as unknown as InSignal);
        return;
      case 'participant_left':
        return this.dropParticipant(String(d.participant));
      case 'track_unpublished': {
        const p = String(d.participant);
        if (d.kind === 'screen') this.dropStream(`${p}-screen`);
        else this.bump(p);
        return;
      }
      case 'track_published':
        return this.bump(String(d.stream_id ?? d.participant));
      case 'active_speaker':
        return this.set({ activeSpeaker: d.participant == null ? null : String(d.participant) });
      case 'left': {
        const reason = String(d.reason ?? 'left');
        if (reason !== 'left' && reason !== 'replaced') notify(leftMessage(reason, d.message as string | undefined));
        if (reason !== 'replaced') this.teardown();
        return;
      }
      case 'moved':
        this.set({ channelId: String(d.channel_id), status: 'joining' });
        return;
      case 'error': {
        notify(String(d.message ?? d.code ?? 'Voice error'));
        const s = callStore.get();
        if (s.status === 'joining' && !this.pc) this.teardown();
        return;
      }
      default:
        return;
    }
  }

  private onTrack(e: RTCTrackEvent) {
    const stream = e.streams[0];
    if (!stream) return;
    const id = stream.id;
    const screen = id.endsWith('-screen');
    const participant = screen ? id.slice(0, -'-screen'.length) : id;
    const refresh = () => this.bump(id);
    stream.onaddtrack = refresh;
    stream.onremovetrack = refresh;
    e.track.onunmute = refresh;
    e.track.onmute = refresh;
    e.track.onended = refresh;
    this.set((s) => ({ remote: { ...s.remote, [id]: { id, participant, screen, stream, version: (s.remote[id]?.version ?? 0) + 1 } } }));
  }

  private bump(id: string) {
    this.set((s) => (s.remote[id] ? { remote: { ...s.remote, [id]: { ...s.remote[id], version: s.remote[id].version + 1 } } } : {}));
  }

  private dropStream(id: string) {
    this.set((s) => {
      if (!s.remote[id]) return {};
      const r = { ...s.remote };
      delete r[id];
      return { remote: r };
    });
  }

  private dropParticipant(p: string) {
    this.dropStream(p);
    this.dropStream(`${p}-screen`);
    this.layers.delete(p);
  }

  // ---- publications ----------------------------------------------------------------

  private labels(): TrackLabel[] {
    const out: TrackLabel[] = [];
    for (const t of this.pc?.getTransceivers() ?? []) {
      const kind = this.kinds.get(t);
      if (kind && t.mid && (t.direction === 'sendonly' || t.direction === 'sendrecv')) out.push({ mid: t.mid, kind });
    }
    return out;
  }

  private addSender(kind: TrackKind, track: MediaStreamTrack) {
    const pc = this.pc;
    if (!pc) return;
    const existing = this.tx[kind];
    if (existing && existing.currentDirection !== 'stopped') {
      void existing.sender.replaceTrack(track);
      existing.direction = 'sendonly';
      return;
    }
    const init: RTCRtpTransceiverInit = { direction: 'sendonly' };
    if (kind === 'camera') init.sendEncodings = SIMULCAST.map((e) => ({ ...e }));
    const t = pc.addTransceiver(track, init);
    if (kind === 'camera' || kind === 'screen') {
      // VP8 only (with RTX) for what we publish: every browser simulcasts it, and the
      // SFU's answer to a full codec list is not always valid (see the report in
      // crates/voice: duplicate VP9 payload types).
      try {
        const codecs = RTCRtpReceiver.getCapabilities?.('video')?.codecs ?? [];
        const vp8 = codecs.filter((c) => /^video\/(vp8|rtx)$/i.test(c.mimeType));
        if (vp8.some((c) => /vp8/i.test(c.mimeType)) && !allCodecs()) t.setCodecPreferences(vp8);
      } catch {
        // older browsers: the default order
      }
    }
    this.kinds.set(t, kind);
    this.tx[kind] = t;
  }

  /**
   * Stops a publication: the transceiver is stopped (its m-section rejected), so the SFU
   * unpublishes the track; turning it on again adds a fresh transceiver. (Pausing the
   * same transceiver with direction "inactive" is not seen as an unpublish by the SFU,
   * and its forwarding did not resume after "sendonly" again.)
   */
  private stopSender(kind: TrackKind) {
    const t = this.tx[kind];
    if (!t) return;
    try {
      t.stop();
    } catch {
      t.direction = 'inactive';
    }
    delete this.tx[kind];
  }

  toggleMute() {
    const s = callStore.get();
    const selfMute = !s.selfMute;
    // Unmuting while deafened undeafens too.
    const selfDeaf = selfMute ? s.selfDeaf : false;
    if (this.mic) this.mic.enabled = !selfMute;
    this.set({ selfMute, selfDeaf });
    if (s.status !== 'idle') this.send('voice_state', { self_mute: selfMute, self_deaf: selfDeaf });
  }

  toggleDeaf() {
    const s = callStore.get();
    const selfDeaf = !s.selfDeaf;
    this.set({ selfDeaf });
    if (s.status !== 'idle') this.send('voice_state', { self_deaf: selfDeaf });
  }

  async toggleCamera() {
    const s = callStore.get();
    if (s.camera) {
      this.stopSender('camera');
      this.camTrack?.stop();
      this.camTrack = null;
      this.set({ camera: false, localCamera: null });
      this.send('voice_state', { self_video: false });
      await this.neg?.requestOffer();
      return;
    }
    try {
      const m = await navigator.mediaDevices.getUserMedia({
        video: { ...(s.camId ? { deviceId: { exact: s.camId } } : {}), width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24 } },
      });
      this.camTrack = m.getVideoTracks()[0];
      this.set({ camera: true, localCamera: m });
      if (this.pc) {
        this.addSender('camera', this.camTrack);
        this.send('voice_state', { self_video: true });
        await this.neg?.requestOffer();
      }
    } catch (e) {
      notify(`Camera unavailable: ${(e as Error).message || e}`);
    }
  }

  /** `track` lets tests or other sources publish something as the screen. */
  async toggleScreen(track?: MediaStreamTrack) {
    const s = callStore.get();
    if (s.screen) {
      this.stopSender('screen');
      this.screenTrack?.stop();
      this.screenTrack = null;
      this.set({ screen: false, localScreen: null });
      this.send('voice_state', { self_stream: false });
      await this.neg?.requestOffer();
      return;
    }
    try {
      let t = track;
      let stream: MediaStream;
      if (t) stream = new MediaStream([t]);
      else {
        stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
        t = stream.getVideoTracks()[0];
      }
      t.contentHint = 'detail';
      t.addEventListener('ended', () => {
        if (this.screenTrack === t) void this.toggleScreen();
      });
      this.screenTrack = t;
      this.set({ screen: true, localScreen: stream });
      if (this.pc) {
        this.addSender('screen', t);
        this.send('voice_state', { self_stream: true });
        await this.neg?.requestOffer();
      }
    } catch (e) {
      if ((e as Error).name !== 'NotAllowedError') notify(`Screen share unavailable: ${(e as Error).message || e}`);
    }
  }

  async setMic(deviceId: string) {
    this.set({ micId: deviceId || null });
    if (!this.mic) return;
    const old = this.mic;
    const t = await this.openMic(deviceId || null);
    if (t && this.tx.audio) await this.tx.audio.sender.replaceTrack(t);
    if (t) old.stop();
  }

  async setCamera(deviceId: string) {
    this.set({ camId: deviceId || null });
    if (!this.camTrack) return;
    try {
      const m = await navigator.mediaDevices.getUserMedia({ video: { ...(deviceId ? { deviceId: { exact: deviceId } } : {}), width: { ideal: 1280 }, height: { ideal: 720 } } });
      const t = m.getVideoTracks()[0];
      if (this.tx.camera) await this.tx.camera.sender.replaceTrack(t);
      this.camTrack.stop();
      this.camTrack = t;
      this.set({ localCamera: m });
    } catch (e) {
      notify(`Camera unavailable: ${(e as Error).message || e}`);
    }
  }

  /** The highest simulcast layer wanted of `userId`'s video; sent only on change. */
  setLayer(userId: string, layer: Layer) {
    if (this.layers.get(userId) === layer || !this.pc) return;
    if (this.send('voice_layer', { user_id: userId, layer })) this.layers.set(userId, layer);
  }

  // ---- stats -----------------------------------------------------------------------

  private startStats() {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.lastSample = null;
    this.statsTimer = setInterval(async () => {
      const pc = this.pc;
      if (!pc) return;
      try {
        const report = await pc.getStats();
        const cur = sampleStats(report.values() as Iterable<Record<string, unknown> & { type: string }>);
        const q = assessQuality(this.lastSample, cur);
        this.lastSample = cur;
        this.set({ quality: q });
      } catch {
        // closed meanwhile
      }
    }, 2000);
  }

  // ---- teardown --------------------------------------------------------------------

  private closePc() {
    this.neg?.close();
    this.neg = null;
    if (this.pc) {
      this.pc.onicecandidate = null;
      this.pc.ontrack = null;
      this.pc.onconnectionstatechange = null;
      this.pc.close();
    }
    this.pc = null;
    this.tx = {};
    this.layers.clear();
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = null;
  }

  teardown() {
    this.closePc();
    this.mic?.stop();
    this.mic = null;
    this.micPromise = null;
    this.camTrack?.stop();
    this.camTrack = null;
    this.screenTrack?.stop();
    this.screenTrack = null;
    const s = callStore.get();
    callStore.set({ ...INITIAL, selfMute: s.selfMute, selfDeaf: s.selfDeaf, micId: s.micId, camId: s.camId });
    this.publishWindow();
  }

  /** Tests read the connection from `window.__hearthVoice`. */
  private publishWindow() {
    if (typeof window === 'undefined') return;
    (window as unknown as { __hearthVoice?: unknown }).__hearthVoice = {
      pc: this.pc,
      call: this,
      negotiator: this.neg,
      state: () => callStore.get(),
      timings: this.timings,
    };
  }
}

function leftMessage(reason: string, message?: string): string {
  switch (reason) {
    case 'kicked':
      return message ? `Removed from the call: ${message}` : 'Removed from the call.';
    case 'ice_timeout':
      return 'Could not connect to the voice server (network blocked?).';
    case 'connection_failed':
      return 'The voice connection was lost.';
    case 'signal_flood':
      return 'Disconnected from voice: too many signalling messages.';
    default:
      return message ?? `Left the call (${reason}).`;
  }
}

let instance: VoiceCall | null = null;

export function voiceCall(): VoiceCall {
  if (!instance) instance = new VoiceCall();
  return instance;
}
