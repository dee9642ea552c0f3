import { describe, expect, it } from 'vitest';
import { applyVoiceState, forgetCommunity, loadStates, membersOf, type VoiceState } from '@/voice/states';
import { MAX_CANDIDATES, Negotiator, type OutSignal, type PcLike, type SessionDescription } from '@/voice/negotiation';
import { assessQuality, sampleStats } from '@/voice/quality';

function vs(user: string, channel: string | null, extra: Partial<VoiceState> = {}): VoiceState {
  return {
    user_id: user, community_id: 'c1', channel_id: channel, session_id: 's', self_mute: false, self_deaf: false,
    mute: false, deaf: false, self_video: false, self_stream: false, speaking: false, ...extra,
  };
}

describe('voice states', () => {
  it('loads, updates, moves and leaves', () => {
    let s = loadStates({}, 'c1', [vs('2', 'v1'), vs('10', 'v1'), vs('3', 'v2'), vs('4', null)]);
    expect(membersOf(s, 'c1', 'v1').map((v) => v.user_id)).toEqual(['2', '10']);
    expect(membersOf(s, 'c1', 'v2').map((v) => v.user_id)).toEqual(['3']);
    expect(s.c1['4']).toBeUndefined();
    s = applyVoiceState(s, vs('3', 'v1', { speaking: true }));
    expect(membersOf(s, 'c1', 'v1').map((v) => v.user_id)).toEqual(['2', '3', '10']);
    expect(membersOf(s, 'c1', 'v2')).toEqual([]);
    expect(s.c1['3'].speaking).toBe(true);
    s = applyVoiceState(s, vs('2', null));
    expect(membersOf(s, 'c1', 'v1').map((v) => v.user_id)).toEqual(['3', '10']);
  });

  it('returns the same object for no-op updates', () => {
    const s = loadStates({}, 'c1', [vs('2', 'v1')]);
    expect(applyVoiceState(s, vs('2', 'v1'))).toBe(s);
    expect(applyVoiceState(s, vs('9', null))).toBe(s);
  });

  it('a join in another community removes the user from the first', () => {
    let s = loadStates({}, 'c1', [vs('2', 'v1')]);
    s = applyVoiceState(s, { ...vs('2', 'w1'), community_id: 'c2' });
    expect(membersOf(s, 'c1', 'v1')).toEqual([]);
    expect(membersOf(s, 'c2', 'w1').map((v) => v.user_id)).toEqual(['2']);
    expect(forgetCommunity(s, 'c2').c2).toBeUndefined();
  });
});

/** A fake peer connection with the signalling state machine of RFC 8829 (no rollback). */
class FakePc implements PcLike {
  signalingState = 'stable';
  log: string[] = [];
  candidates: unknown[] = [];
  private n = 0;
  async createOffer(): Promise<SessionDescription> {
    return { type: 'offer', sdp: `local-offer-${++this.n}` };
  }
  async createAnswer(): Promise<SessionDescription> {
    if (this.signalingState !== 'have-remote-offer') throw new Error('no remote offer');
    return { type: 'answer', sdp: `local-answer-${++this.n}` };
  }
  async setLocalDescription(d: SessionDescription) {
    this.log.push(`local ${d.type}`);
    if (d.type === 'offer') {
      if (this.signalingState !== 'stable') throw new Error('bad state');
      this.signalingState = 'have-local-offer';
    } else {
      if (this.signalingState !== 'have-remote-offer') throw new Error('bad state');
      this.signalingState = 'stable';
    }
  }
  async setRemoteDescription(d: SessionDescription) {
    this.log.push(`remote ${d.type}`);
    if (d.type === 'offer') {
      if (this.signalingState !== 'stable') throw new Error('glare not handled');
      this.signalingState = 'have-remote-offer';
    } else {
      if (this.signalingState !== 'have-local-offer') throw new Error('bad state');
      this.signalingState = 'stable';
    }
  }
  async addIceCandidate(c: unknown) {
    this.candidates.push(c);
  }
}

function setup() {
  const pc = new FakePc();
  const sent: OutSignal[] = [];
  const errors: unknown[] = [];
  const neg = new Negotiator(pc, (s) => sent.push(s), () => [{ mid: '0', kind: 'audio' }], (e) => errors.push(e));
  return { pc, sent, neg, errors };
}

describe('negotiation', () => {
  it('first offer carries the labels; candidates wait for it', async () => {
    const { sent, neg } = setup();
    neg.localCandidate({ candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 });
    expect(sent).toEqual([]);
    await neg.requestOffer();
    expect(sent[0]).toEqual({ type: 'offer', sdp: 'local-offer-1', tracks: [{ mid: '0', kind: 'audio' }] });
    expect(sent[1]).toMatchObject({ type: 'candidate', sdp_mid: '0', sdp_mline_index: 0, username_fragment: null });
    neg.localCandidate(null);
    neg.localCandidate({ candidate: '' });
    expect(sent).toHaveLength(2);
  });

  it('answers SFU offers when stable', async () => {
    const { pc, sent, neg } = setup();
    await neg.requestOffer();
    await neg.remote({ type: 'answer', sdp: 'sfu-answer' });
    expect(pc.signalingState).toBe('stable');
    await neg.remote({ type: 'offer', sdp: 'sfu-offer' });
    expect(sent.at(-1)).toEqual({ type: 'answer', sdp: 'local-answer-2' });
    expect(pc.signalingState).toBe('stable');
  });

  it('glare: ignores the SFU offer while ours is pending (impolite)', async () => {
    const { pc, sent, neg, errors } = setup();
    await neg.requestOffer();
    await neg.remote({ type: 'offer', sdp: 'sfu-offer' });
    expect(neg.stats.offersIgnored).toBe(1);
    expect(pc.signalingState).toBe('have-local-offer');
    await neg.remote({ type: 'answer', sdp: 'sfu-answer' });
    // …and the SFU's offer after its rollback is answered.
    await neg.remote({ type: 'offer', sdp: 'sfu-offer-again' });
    expect(sent.map((s) => s.type)).toEqual(['offer', 'answer']);
    expect(errors).toEqual([]);
  });

  it('an offer wanted while one is pending goes after the answer', async () => {
    const { pc, sent, neg } = setup();
    await neg.requestOffer();
    await neg.requestOffer();
    expect(sent.filter((s) => s.type === 'offer')).toHaveLength(1);
    await neg.remote({ type: 'answer', sdp: 'sfu-answer' });
    expect(sent.filter((s) => s.type === 'offer')).toHaveLength(2);
    expect(pc.signalingState).toBe('have-local-offer');
  });

  it('interleaved calls never overlap (one queue)', async () => {
    const { pc, neg, errors } = setup();
    const a = neg.requestOffer();
    const b = neg.remote({ type: 'offer', sdp: 'x' });
    const c = neg.remote({ type: 'answer', sdp: 'y' });
    const d = neg.remote({ type: 'offer', sdp: 'z' });
    await Promise.all([a, b, c, d]);
    expect(errors).toEqual([]);
    expect(pc.log).toEqual(['local offer', 'remote answer', 'remote offer', 'local answer']);
    expect(pc.signalingState).toBe('stable');
  });

  it('caps trickled candidates and passes remote ones on', async () => {
    const { pc, sent, neg } = setup();
    await neg.requestOffer();
    for (let i = 0; i < MAX_CANDIDATES + 10; i++) neg.localCandidate({ candidate: `candidate:${i}` });
    expect(sent.filter((s) => s.type === 'candidate')).toHaveLength(MAX_CANDIDATES);
    expect(neg.stats.candidatesDropped).toBe(10);
    await neg.remote({ type: 'candidate', candidate: 'candidate:9 1 udp 1 127.0.0.1 9 typ host', sdp_mid: '0', sdp_mline_index: 0 });
    await neg.remote({ type: 'candidate', candidate: '' });
    expect(pc.candidates).toEqual([{ candidate: 'candidate:9 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0, usernameFragment: null }]);
  });

  it('does nothing once closed', async () => {
    const { sent, neg } = setup();
    neg.close();
    await neg.requestOffer();
    expect(sent).toEqual([]);
  });
});

describe('connection quality', () => {
  it('reads RTT and loss and grades them', () => {
    const a = sampleStats([
      { type: 'candidate-pair', nominated: true, currentRoundTripTime: 0.03 },
      { type: 'inbound-rtp', packetsReceived: 1000, packetsLost: 0 },
      { type: 'inbound-rtp', packetsReceived: 500, packetsLost: 0 },
    ]);
    expect(a).toEqual({ rtt: 0.03, packetsReceived: 1500, packetsLost: 0 });
    expect(assessQuality(null, a)).toEqual({ quality: 'good', rttMs: 30, loss: 0 });
    const b = { rtt: 0.3, packetsReceived: 1600, packetsLost: 5 };
    expect(assessQuality(a, b).quality).toBe('fair');
    const c = { rtt: 0.03, packetsReceived: 1650, packetsLost: 25 };
    expect(assessQuality(b, c).quality).toBe('poor');
    expect(assessQuality(null, { rtt: null, packetsReceived: 0, packetsLost: 0 }).quality).toBe('unknown');
  });
});
