// Connection quality from two getStats() snapshots: round-trip time of the selected
// candidate pair and the packet loss of inbound RTP since the previous sample.

export type Quality = 'good' | 'fair' | 'poor' | 'unknown';

export interface StatsSample {
  /** Seconds, from the nominated candidate pair. */
  rtt: number | null;
  packetsReceived: number;
  packetsLost: number;
}

export interface QualityReport {
  quality: Quality;
  rttMs: number | null;
  /** 0..1 over the interval. */
  loss: number;
}

type StatLike = Record<string, unknown> & { type: string };

/** Sums what we need from an RTCStatsReport (anything iterable over stats objects). */
export function sampleStats(stats: Iterable<StatLike>): StatsSample {
  let rtt: number | null = null;
  let packetsReceived = 0;
  let packetsLost = 0;
  for (const s of stats) {
    if (s.type === 'candidate-pair' && (s.nominated || s.state === 'succeeded') && typeof s.currentRoundTripTime === 'number') {
      rtt = rtt === null ? s.currentRoundTripTime : Math.min(rtt, s.currentRoundTripTime);
    } else if (s.type === 'inbound-rtp') {
      packetsReceived += Number(s.packetsReceived ?? 0);
      packetsLost += Math.max(0, Number(s.packetsLost ?? 0));
    } else if (s.type === 'remote-inbound-rtp' && rtt === null && typeof s.roundTripTime === 'number') {
      rtt = s.roundTripTime;
    }
  }
  return { rtt, packetsReceived, packetsLost };
}

export function assessQuality(prev: StatsSample | null, cur: StatsSample): QualityReport {
  const received = prev ? cur.packetsReceived - prev.packetsReceived : cur.packetsReceived;
  const lost = prev ? cur.packetsLost - prev.packetsLost : cur.packetsLost;
  const total = Math.max(0, received) + Math.max(0, lost);
  const loss = total > 0 ? Math.max(0, lost) / total : 0;
  const rttMs = cur.rtt === null ? null : Math.round(cur.rtt * 1000);
  let quality: Quality;
  if (rttMs === null && total === 0) quality = 'unknown';
  else if (loss > 0.1 || (rttMs ?? 0) > 500) quality = 'poor';
  else if (loss > 0.02 || (rttMs ?? 0) > 200) quality = 'fair';
  else quality = 'good';
  return { quality, rttMs, loss };
}
