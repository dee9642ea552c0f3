// SDP negotiation with the SFU ("perfect negotiation", the browser being the impolite
// peer): every step runs in one queue so steps never interleave; an SFU offer that
// arrives while our own offer is outstanding is ignored (the SFU rolls back, answers
// ours and offers again); an offer we want while one is outstanding waits for its
// answer. Candidates: ours go only after the offer that created them, and at most
// MAX_CANDIDATES per connection (the gateway allows 120 client frames a minute).
// Free of DOM types so it can be unit tested with a fake peer connection.

export type TrackKind = 'audio' | 'camera' | 'screen';
export interface TrackLabel {
  mid: string;
  kind: TrackKind;
}

export interface SessionDescription {
  type: 'offer' | 'answer' | 'pranswer' | 'rollback';
  sdp?: string;
}

export interface CandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

/** The parts of RTCPeerConnection the negotiator uses. */
export interface PcLike {
  readonly signalingState: string;
  createOffer(): Promise<SessionDescription>;
  createAnswer(): Promise<SessionDescription>;
  setLocalDescription(d: SessionDescription): Promise<void>;
  setRemoteDescription(d: SessionDescription): Promise<void>;
  addIceCandidate(c: CandidateInit): Promise<void>;
}

/** What goes to the server as `voice_signal`. */
export type OutSignal =
  | { type: 'offer'; sdp: string; tracks: TrackLabel[] }
  | { type: 'answer'; sdp: string }
  | { type: 'candidate'; candidate: string; sdp_mid: string | null; sdp_mline_index: number | null; username_fragment: string | null };

/** SDP and candidates from the server's VOICE_SIGNAL. */
export type InSignal =
  | { type: 'offer'; sdp: string }
  | { type: 'answer'; sdp: string }
  | { type: 'candidate'; candidate: string; sdp_mid?: string | null; sdp_mline_index?: number | null; username_fragment?: string | null };

export const MAX_CANDIDATES = 24;

export interface NegotiatorStats {
  offersSent: number;
  answersSent: number;
  offersIgnored: number;
  candidatesSent: number;
  candidatesDropped: number;
}

export class Negotiator {
  readonly stats: NegotiatorStats = { offersSent: 0, answersSent: 0, offersIgnored: 0, candidatesSent: 0, candidatesDropped: 0 };
  private chain: Promise<void> = Promise.resolve();
  private wantOffer = false;
  private offered = false;
  private early: CandidateInit[] = [];
  private closed = false;

  constructor(
    private readonly pc: PcLike,
    private readonly send: (s: OutSignal) => void,
    /** Labels of the sending m-sections, read after setLocalDescription (mids are set then). */
    private readonly labels: () => TrackLabel[],
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {}

  close() {
    this.closed = true;
  }

  /** Settles when every queued step has run (tests, and callers that want to wait). */
  idle(): Promise<void> {
    return this.chain;
  }

  private enqueue(step: () => Promise<void>) {
    this.chain = this.chain.then(async () => {
      if (this.closed) return;
      try {
        await step();
      } catch (e) {
        this.onError(e);
      }
    });
    return this.chain;
  }

  /** We have something new to publish (or stop): offer now, or after the pending answer. */
  requestOffer(): Promise<void> {
    return this.enqueue(async () => {
      if (this.pc.signalingState !== 'stable') {
        this.wantOffer = true;
        return;
      }
      await this.makeOffer();
    });
  }

  private async makeOffer() {
    this.wantOffer = false;
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    this.send({ type: 'offer', sdp: offer.sdp ?? '', tracks: this.labels() });
    this.stats.offersSent++;
    if (!this.offered) {
      this.offered = true;
      for (const c of this.early.splice(0)) this.sendCandidate(c);
    }
  }

  /** SDP or a candidate from the SFU. */
  remote(sig: InSignal): Promise<void> {
    switch (sig.type) {
      case 'offer':
        return this.enqueue(async () => {
          if (this.pc.signalingState !== 'stable') {
            // Glare: we are impolite, our offer wins; the SFU offers again after answering.
            this.stats.offersIgnored++;
            return;
          }
          await this.pc.setRemoteDescription({ type: 'offer', sdp: sig.sdp });
          const answer = await this.pc.createAnswer();
          await this.pc.setLocalDescription(answer);
          this.send({ type: 'answer', sdp: answer.sdp ?? '' });
          this.stats.answersSent++;
          if (this.wantOffer) await this.makeOffer();
        });
      case 'answer':
        return this.enqueue(async () => {
          if (this.pc.signalingState !== 'have-local-offer') return;
          await this.pc.setRemoteDescription({ type: 'answer', sdp: sig.sdp });
          if (this.wantOffer) await this.makeOffer();
        });
      case 'candidate':
        return this.enqueue(async () => {
          if (!sig.candidate) return;
          try {
            await this.pc.addIceCandidate({
              candidate: sig.candidate,
              sdpMid: sig.sdp_mid ?? null,
              sdpMLineIndex: sig.sdp_mline_index ?? null,
              usernameFragment: sig.username_fragment ?? null,
            });
          } catch {
            // A candidate for a description we ignored (glare): harmless.
          }
        });
    }
  }

  /** The browser's onicecandidate (null / empty = end of candidates, not sent). */
  localCandidate(c: CandidateInit | null) {
    if (!c || !c.candidate || this.closed) return;
    if (!this.offered) {
      this.early.push(c);
      return;
    }
    this.sendCandidate(c);
  }

  private sendCandidate(c: CandidateInit) {
    if (this.stats.candidatesSent >= MAX_CANDIDATES) {
      this.stats.candidatesDropped++;
      return;
    }
    this.stats.candidatesSent++;
    this.send({
      type: 'candidate',
      candidate: c.candidate,
      sdp_mid: c.sdpMid ?? null,
      sdp_mline_index: c.sdpMLineIndex ?? null,
      username_fragment: c.usernameFragment ?? null,
    });
  }
}
