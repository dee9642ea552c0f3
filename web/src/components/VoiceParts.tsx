'use client';
// Voice pieces shared by the sidebar and the call view: member rows under a voice
// channel, the call controls, names.
import { useEffect, useMemo, useRef } from 'react';
import { has, usePermissions } from '@/lib/hooks';
import { communitiesStore, displayName } from '@/stores/communities';
import { useStore } from '@/stores/store';
import { callStore, voiceCall, type RemoteStream } from '@/voice/call';
import { membersOf, voiceStatesStore, type VoiceState } from '@/voice/states';
import { Avatar } from './ui';
import { Icon } from './icons';

export function useVoiceMembers(communityId: string | null, channelId: string | null): VoiceState[] {
  const byUser = useStore(voiceStatesStore, (s) => (communityId ? s[communityId] : undefined));
  return useMemo(
    () => (communityId && channelId && byUser ? membersOf({ [communityId]: byUser }, communityId, channelId) : []),
    [byUser, communityId, channelId],
  );
}

export function useUserName(communityId: string | null, userId: string): string {
  const user = useStore(communitiesStore, (s) => s.users[userId]);
  const member = useStore(communitiesStore, (s) => (communityId ? s.members[communityId]?.[userId] : undefined));
  return user || member ? displayName(user ?? member?.user, member) : `User ${userId.slice(-4)}`;
}

/** Voice members listed under a voice channel in the sidebar. */
export function VoiceMembers({ communityId, channelId }: { communityId: string; channelId: string }) {
  const members = useVoiceMembers(communityId, channelId);
  if (!members.length) return null;
  return (
    <ul className="voice-members" aria-label="In this voice channel">
      {members.map((v) => (
        <VoiceMemberRow key={v.user_id} v={v} communityId={communityId} />
      ))}
    </ul>
  );
}

function VoiceMemberRow({ v, communityId }: { v: VoiceState; communityId: string }) {
  const name = useUserName(communityId, v.user_id);
  const muted = v.self_mute || v.mute;
  const deaf = v.self_deaf || v.deaf;
  const flags = [v.speaking ? 'speaking' : '', muted ? 'muted' : '', deaf ? 'deafened' : '', v.self_video ? 'camera on' : '', v.self_stream ? 'sharing screen' : '']
    .filter(Boolean)
    .join(', ');
  return (
    <li className="voice-member" data-voice-user={v.user_id} data-speaking={v.speaking ? 'true' : 'false'} aria-label={flags ? `${name}, ${flags}` : name}>
      <span className={`speak-ring${v.speaking ? ' on' : ''}`}>
        <Avatar id={v.user_id} name={name} size={22} />
      </span>
      <span className="voice-member-name">{name}</span>
      {v.self_stream && <span className="live-badge">LIVE</span>}
      {v.self_video && <Icon name="camera" size={14} />}
      {muted && (
        <span className={v.mute ? 'server-flag' : ''} title={v.mute ? 'Server muted' : 'Muted'}>
          <Icon name="micOff" size={14} />
        </span>
      )}
      {deaf && (
        <span className={v.deaf ? 'server-flag' : ''} title={v.deaf ? 'Server deafened' : 'Deafened'}>
          <Icon name="headphonesOff" size={14} />
        </span>
      )}
    </li>
  );
}

export function QualityBadge() {
  const q = useStore(callStore, (s) => s.quality);
  const status = useStore(callStore, (s) => s.status);
  const label =
    status !== 'connected'
      ? status === 'joining' || status === 'connecting'
        ? 'Connecting…'
        : status === 'reconnecting'
          ? 'Reconnecting…'
          : status === 'failed'
            ? 'Connection failed'
            : ''
      : !q || q.quality === 'unknown'
        ? 'Voice connected'
        : `Voice connected, ${q.quality} connection${q.rttMs !== null ? `, ${q.rttMs} ms` : ''}${q.loss > 0 ? `, ${(q.loss * 100).toFixed(1)}% loss` : ''}`;
  const cls = status === 'connected' ? (q?.quality ?? 'unknown') : status === 'failed' ? 'poor' : 'pending';
  return (
    <span className={`quality quality-${cls}`} role="status" data-quality={q?.quality ?? 'unknown'}>
      <span className="quality-bars" aria-hidden="true">
        <i />
        <i />
        <i />
      </span>
      {label}
    </span>
  );
}

/** Mute / deafen / camera / screen / leave, permission-aware. */
export function CallControls({ compact = false }: { compact?: boolean }) {
  const s = useStore(callStore, (x) => x);
  const channel = useStore(communitiesStore, (x) => (s.channelId ? x.channels[s.channelId] : undefined));
  const perms = usePermissions(channel?.community_id ?? null, channel);
  const canSpeak = has(perms, 'SPEAK');
  const canVideo = has(perms, 'VIDEO');
  const call = voiceCall();
  return (
    <div className={`call-controls${compact ? ' compact' : ''}`} role="group" aria-label="Call controls">
      <button
        type="button"
        className={`call-btn${s.selfMute ? ' off' : ''}`}
        aria-pressed={s.selfMute}
        aria-label={s.selfMute ? 'Unmute' : 'Mute'}
        title={canSpeak ? (s.selfMute ? 'Unmute' : 'Mute') : 'You do not have permission to speak here'}
        disabled={!canSpeak}
        onClick={() => call.toggleMute()}
      >
        <Icon name={s.selfMute || !canSpeak ? 'micOff' : 'mic'} />
      </button>
      <button
        type="button"
        className={`call-btn${s.selfDeaf ? ' off' : ''}`}
        aria-pressed={s.selfDeaf}
        aria-label={s.selfDeaf ? 'Undeafen' : 'Deafen'}
        title={s.selfDeaf ? 'Undeafen' : 'Deafen'}
        onClick={() => call.toggleDeaf()}
      >
        <Icon name={s.selfDeaf ? 'headphonesOff' : 'headphones'} />
      </button>
      {!compact && canVideo && (
        <>
          <button type="button" className={`call-btn${s.camera ? ' on' : ''}`} aria-pressed={s.camera} aria-label={s.camera ? 'Turn camera off' : 'Turn camera on'} title="Camera" onClick={() => void call.toggleCamera()}>
            <Icon name="camera" />
          </button>
          <button type="button" className={`call-btn${s.screen ? ' on' : ''}`} aria-pressed={s.screen} aria-label={s.screen ? 'Stop sharing your screen' : 'Share your screen'} title="Screen share" onClick={() => void call.toggleScreen()}>
            <Icon name="screen" />
          </button>
        </>
      )}
      <button type="button" className="call-btn hangup" aria-label="Leave call" title="Leave call" onClick={() => call.leave()}>
        <Icon name="hangup" />
      </button>
    </div>
  );
}

/** The bar above the user panel while in a call. */
export function CallPanel() {
  const status = useStore(callStore, (s) => s.status);
  const channelId = useStore(callStore, (s) => s.channelId);
  const channel = useStore(communitiesStore, (s) => (channelId ? s.channels[channelId] : undefined));
  if (status === 'idle' || !channelId) return null;
  return (
    <section className="call-panel" aria-label="Voice call">
      <div className="call-panel-info">
        <QualityBadge />
        <span className="muted small">{channel?.name ?? 'voice'}</span>
      </div>
      <CallControls compact />
      <RemoteAudio />
    </section>
  );
}

/** One <audio> per remote stream with audio; muted while deafened. */
function RemoteAudio() {
  const remote = useStore(callStore, (s) => s.remote);
  const deaf = useStore(callStore, (s) => s.selfDeaf);
  return (
    <div hidden>
      {Object.values(remote)
        .filter((r) => !r.screen)
        .map((r) => (
          <Audio key={r.id} r={r} muted={deaf} />
        ))}
    </div>
  );
}

function Audio({ r, muted }: { r: RemoteStream; muted: boolean }) {
  const ref = useRef<HTMLAudioElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (el.srcObject !== r.stream) el.srcObject = r.stream;
    void el.play().catch(() => undefined);
  }, [r.stream, r.version]);
  return <audio ref={ref} autoPlay muted={muted} data-participant={r.participant} />;
}

