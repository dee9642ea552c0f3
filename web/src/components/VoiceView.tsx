'use client';
// A voice channel's main view: who is in it, their cameras and screens (grid or
// spotlight), the call controls and device pickers. Not in the call: a join button.
import { useEffect, useMemo, useRef, useState } from 'react';
import { getClient } from '@/lib/client';
import { has, useMe, usePermissions } from '@/lib/hooks';
import { communitiesStore } from '@/stores/communities';
import { useStore } from '@/stores/store';
import { callStore, voiceCall } from '@/voice/call';
import type { VoiceState } from '@/voice/states';
import { Avatar } from './ui';
import { Icon } from './icons';
import { CallControls, QualityBadge, useUserName, useVoiceMembers } from './VoiceParts';

export function VoiceView({ channelId }: { channelId: string }) {
  const channel = useStore(communitiesStore, (s) => s.channels[channelId]);
  const communityId = channel?.community_id ?? null;
  const perms = usePermissions(communityId, channel);
  const members = useVoiceMembers(communityId, channelId);
  const call = useStore(callStore, (s) => s);
  const inCall = call.channelId === channelId && call.status !== 'idle';
  const [layout, setLayout] = useState<'grid' | 'spotlight'>('grid');
  const [pinned, setPinned] = useState<string | null>(null);
  const me = useMe();

  // Channels don't always arrive with their overwrites: read them so the controls are right.
  useEffect(() => {
    if (communityId) void getClient().loadOverwrites(channelId);
  }, [channelId, communityId]);

  // Tiles: one per member (camera or avatar), plus one per screen share.
  const tiles = useMemo(() => {
    const out: { key: string; userId: string; screen: boolean; v: VoiceState }[] = [];
    for (const v of members) {
      out.push({ key: v.user_id, userId: v.user_id, screen: false, v });
      if (v.self_stream) out.push({ key: `${v.user_id}-screen`, userId: v.user_id, screen: true, v });
    }
    return out;
  }, [members]);

  const spotKey =
    layout === 'spotlight'
      ? (pinned && tiles.some((t) => t.key === pinned) ? pinned : null) ??
        tiles.find((t) => t.screen)?.key ??
        (call.activeSpeaker && call.activeSpeaker !== me?.id ? call.activeSpeaker : null) ??
        tiles.find((t) => t.userId !== me?.id)?.key ??
        tiles[0]?.key ??
        null
      : null;

  // Ask the SFU for the layer each remote video is shown at.
  useEffect(() => {
    if (!inCall) return;
    const vc = voiceCall();
    for (const v of members) {
      if (v.user_id === me?.id) continue;
      // Layers are about the (simulcast) camera: a spotlighted screen leaves the camera a thumbnail.
      const spot = spotKey === v.user_id;
      vc.setLayer(v.user_id, layout === 'spotlight' ? (spot ? 'high' : 'low') : members.length > 4 ? 'low' : 'medium');
    }
  }, [inCall, members, layout, spotKey, me?.id]);

  if (!channel) return <main className="chat" />;
  const canConnect = has(perms, 'CONNECT');
  const join = () => communityId && voiceCall().join(communityId, channelId, { speak: has(perms, 'SPEAK') });

  const spot = tiles.find((t) => t.key === spotKey);
  const rest = tiles.filter((t) => t.key !== spotKey);
  return (
    <main className="chat voice-view" aria-label={`Voice channel ${channel.name}`}>
      <header className="chat-header">
        <span className="channel-hash big" aria-hidden="true">
          <Icon name="speaker" size={22} />
        </span>
        <h1 className="chat-title">{channel.name}</h1>
        {inCall && <QualityBadge />}
        <div className="chat-header-actions">
          <button type="button" className={`icon-btn${layout === 'grid' ? ' active' : ''}`} aria-pressed={layout === 'grid'} aria-label="Grid view" title="Grid view" onClick={() => setLayout('grid')}>
            <Icon name="grid" />
          </button>
          <button type="button" className={`icon-btn${layout === 'spotlight' ? ' active' : ''}`} aria-pressed={layout === 'spotlight'} aria-label="Speaker view" title="Speaker view" onClick={() => setLayout('spotlight')}>
            <Icon name="spotlight" />
          </button>
        </div>
      </header>
      <div className={`voice-stage ${layout}`}>
        {spot && (
          <div className="voice-spotlight">
            <Tile tile={spot} communityId={communityId} meId={me?.id ?? null} big onPick={() => setPinned(null)} />
          </div>
        )}
        {tiles.length === 0 && <p className="muted voice-empty">No one is here yet.</p>}
        <div className={layout === 'spotlight' ? 'voice-strip' : 'voice-grid'} data-count={rest.length}>
          {rest.map((t) => (
            <Tile key={t.key} tile={t} communityId={communityId} meId={me?.id ?? null} onPick={() => (setLayout('spotlight'), setPinned(t.key))} />
          ))}
        </div>
      </div>
      <footer className="voice-footer">
        {inCall ? (
          <>
            <CallControls />
            <DevicePickers />
          </>
        ) : (
          <button type="button" className="btn btn-primary" disabled={!canConnect} title={canConnect ? undefined : 'You do not have permission to connect here'} onClick={join}>
            {canConnect ? 'Join voice' : 'No permission to join'}
          </button>
        )}
      </footer>
    </main>
  );
}

interface TileInfo {
  key: string;
  userId: string;
  screen: boolean;
  v: VoiceState;
}

function Tile({ tile, communityId, meId, big, onPick }: { tile: TileInfo; communityId: string | null; meId: string | null; big?: boolean; onPick: () => void }) {
  const name = useUserName(communityId, tile.userId);
  const isMe = tile.userId === meId;
  const remote = useStore(callStore, (s) => s.remote[tile.screen ? `${tile.userId}-screen` : tile.userId]);
  const local = useStore(callStore, (s) => (isMe ? (tile.screen ? s.localScreen : s.localCamera) : null));
  const showVideo = tile.screen ? true : tile.v.self_video;
  const stream = isMe ? local : remote?.stream ?? null;
  const hasVideo = showVideo && !!stream && stream.getVideoTracks().some((t) => t.readyState === 'live');
  const muted = tile.v.self_mute || tile.v.mute;
  return (
    <button
      type="button"
      className={`voice-tile${big ? ' big' : ''}${tile.v.speaking && !tile.screen ? ' speaking' : ''}`}
      data-tile={tile.key}
      aria-label={`${name}${tile.screen ? ' (screen)' : ''}${isMe ? ' (you)' : ''}${tile.v.speaking ? ', speaking' : ''}${muted ? ', muted' : ''}`}
      onClick={onPick}
    >
      {hasVideo ? <Video stream={stream!} version={remote?.version ?? 0} mirror={isMe && !tile.screen} /> : <Avatar id={tile.userId} name={name} size={big ? 96 : 64} />}
      <span className="voice-tile-name">
        {muted && <Icon name="micOff" size={14} />}
        {name}
        {tile.screen ? ' — screen' : ''}
      </span>
    </button>
  );
}

function Video({ stream, version, mirror }: { stream: MediaStream; version: number; mirror: boolean }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    // Video only: audio plays from RemoteAudio (so deafen and layouts don't touch it).
    const tracks = stream.getVideoTracks();
    const only = new MediaStream(tracks);
    el.srcObject = only;
    void el.play().catch(() => undefined);
  }, [stream, version]);
  return <video ref={ref} autoPlay playsInline muted className={mirror ? 'mirror' : undefined} />;
}

function DevicePickers() {
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  const micId = useStore(callStore, (s) => s.micId);
  const camId = useStore(callStore, (s) => s.camId);
  useEffect(() => {
    const md = typeof navigator !== 'undefined' ? navigator.mediaDevices : undefined;
    if (!md?.enumerateDevices) return;
    const load = () => void md.enumerateDevices().then(setDevices).catch(() => undefined);
    load();
    md.addEventListener?.('devicechange', load);
    return () => md.removeEventListener?.('devicechange', load);
  }, []);
  const mics = devices.filter((d) => d.kind === 'audioinput');
  const cams = devices.filter((d) => d.kind === 'videoinput');
  return (
    <div className="device-pickers">
      <label>
        <span className="muted small">Microphone</span>
        <select value={micId ?? ''} onChange={(e) => void voiceCall().setMic(e.target.value)}>
          <option value="">Default</option>
          {mics.map((d, i) => (
            <option key={d.deviceId || i} value={d.deviceId}>
              {d.label || `Microphone ${i + 1}`}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span className="muted small">Camera</span>
        <select value={camId ?? ''} onChange={(e) => void voiceCall().setCamera(e.target.value)}>
          <option value="">Default</option>
          {cams.map((d, i) => (
            <option key={d.deviceId || i} value={d.deviceId}>
              {d.label || `Camera ${i + 1}`}
            </option>
          ))}
        </select>
      </label>
    </div>
  );
}
