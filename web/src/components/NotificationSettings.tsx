'use client';
// Notification settings: the account's (in user settings, with the desktop notifications
// switch), a community's (from its menu) and a channel's or DM's (from its header).
// Every change is saved as it is made; what is in force is said in one line.
import { useEffect, useState } from 'react';
import type { NotificationLevel } from '@/api/types';
import { useRun } from '@/lib/hooks';
import {
  describeMute,
  describeResolved,
  LEVEL_TEXT,
  loadNotificationSettings,
  MUTE_OPTIONS,
  mutedUntilFor,
  resetChannelSettings,
  resetCommunitySettings,
  saveAccountSettings,
  saveChannelSettings,
  saveCommunitySettings,
  type MuteOption,
} from '@/lib/notifications';
import { disablePush, enablePush, pushStatus, type PushStatus } from '@/lib/push';
import { channelLabel, communitiesStore } from '@/stores/communities';
import { notificationSettingsStore, resolve, resolveCommunity } from '@/stores/notificationSettings';
import { sessionStore } from '@/stores/session';
import { useStore } from '@/stores/store';
import { Modal } from './ui';

const LEVELS: NotificationLevel[] = ['all', 'mentions', 'nothing'];

/**
 * The settings are fetched when the app starts; if that failed, a screen that shows them
 * asks again (and says why it cannot show them).
 */
function useSettingsLoaded(): { loaded: boolean; error: string | null } {
  const loaded = useStore(notificationSettingsStore, (s) => s.loaded);
  const load = useRun();
  useEffect(() => {
    if (!loaded) void load.run(loadNotificationSettings);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return { loaded, error: loaded ? null : load.error };
}

function LoadError({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p className="form-error" role="alert">
      Your notification settings could not be loaded: {error}
    </p>
  );
}

/** User settings → Notifications. */
export function AccountNotificationSettings() {
  const { loaded, error } = useSettingsLoaded();
  const account = useStore(notificationSettingsStore, (s) => s.account);
  const save = useRun();
  const [saved, setSaved] = useState(false);
  const change = (patch: Parameters<typeof saveAccountSettings>[0]) => {
    setSaved(false);
    void save.run(async () => {
      await saveAccountSettings(patch);
      setSaved(true);
    });
  };
  return (
    <section aria-labelledby="notif-h">
      <h3 id="notif-h">Notifications</h3>
      <LoadError error={error} />
      <DesktopNotificationsSwitch />
      <label htmlFor="notif-level">In communities, notify me about</label>
      <select id="notif-level" value={account.level} disabled={!loaded || save.busy} onChange={(e) => change({ level: e.target.value as NotificationLevel })}>
        {LEVELS.map((l) => (
          <option key={l} value={l}>
            {LEVEL_TEXT[l]}
          </option>
        ))}
      </select>
      <p className="hint">Communities and channels can override this. Direct messages always notify unless you mute them.</p>
      <label className="switch">
        <input type="checkbox" role="switch" checked={account.suppress_everyone} disabled={!loaded || save.busy} onChange={(e) => change({ suppress_everyone: e.target.checked })} /> Ignore @everyone
      </label>
      <label className="switch">
        <input type="checkbox" role="switch" checked={account.push_previews} disabled={!loaded || save.busy} onChange={(e) => change({ push_previews: e.target.checked })} /> Show message text in desktop notifications
      </label>
      <label className="switch">
        <input type="checkbox" role="switch" checked={account.email_digest} disabled={!loaded || save.busy} onChange={(e) => change({ email_digest: e.target.checked })} /> Email me unread mentions while I’m away
      </label>
      {saved && <span role="status">Saved.</span>}
      {save.error && (
        <p className="form-error" role="alert">
          {save.error}
        </p>
      )}
    </section>
  );
}

const PUSH_HINT: Record<PushStatus, string> = {
  unsupported: 'This browser cannot show notifications from Hearth (it needs service workers and the Push API, over HTTPS).',
  denied: 'Notifications are blocked for this site. Allow them in your browser’s site settings to turn this on.',
  off: 'Get a notification on this device when you are away or idle and someone mentions or messages you.',
  on: 'This device gets a notification when you are away or idle and someone mentions or messages you.',
};

/** Web Push for this browser: permission, service worker, subscription, server registration. */
function DesktopNotificationsSwitch() {
  const [status, setStatus] = useState<PushStatus | null>(null);
  const act = useRun();
  useEffect(() => {
    pushStatus()
      .then(setStatus)
      .catch(() => setStatus('off'));
  }, []);
  const on = status === 'on';
  const toggle = (next: boolean) =>
    act.run(async () => {
      try {
        if (next) await enablePush();
        else await disablePush();
      } finally {
        // Whatever happened, show what is true now (the permission may have changed).
        setStatus(await pushStatus().catch(() => 'off' as const));
      }
    });
  return (
    <div className="push-switch">
      <label className="switch">
        <input
          type="checkbox"
          role="switch"
          checked={on}
          disabled={status === null || status === 'unsupported' || (status === 'denied' && !on) || act.busy}
          onChange={(e) => void toggle(e.target.checked)}
        />{' '}
        Desktop notifications
      </label>
      <p className="hint">{act.busy ? 'Working…' : status ? PUSH_HINT[status] : 'Checking this browser…'}</p>
      {act.error && (
        <p className="form-error" role="alert">
          {act.error}
        </p>
      )}
    </div>
  );
}

/** A level picker whose first choice inherits (and says what it inherits). */
function LevelSelect({ id, value, inherited, disabled, onChange }: { id: string; value: NotificationLevel | null; inherited: string; disabled: boolean; onChange: (l: NotificationLevel | null) => void }) {
  return (
    <select id={id} value={value ?? ''} disabled={disabled} onChange={(e) => onChange((e.target.value || null) as NotificationLevel | null)}>
      <option value="">Default ({inherited})</option>
      {LEVELS.map((l) => (
        <option key={l} value={l}>
          {LEVEL_TEXT[l]}
        </option>
      ))}
    </select>
  );
}

/** Muted: until when, and "Unmute". Not muted: the durations to pick from. */
function MuteControl({ id, what, mutedUntil, disabled, onMute, onUnmute }: { id: string; what: string; mutedUntil: string | null; disabled: boolean; onMute: (o: MuteOption) => void; onUnmute: () => void }) {
  const muted = !!mutedUntil && Date.parse(mutedUntil) > Date.now();
  if (muted) {
    return (
      <div className="mute-row">
        <span className="mute-state" role="status">
          {describeMute(mutedUntil)}
        </span>
        <button type="button" className="btn btn-secondary btn-small" disabled={disabled} onClick={onUnmute}>
          Unmute {what}
        </button>
      </div>
    );
  }
  return (
    <>
      <label htmlFor={id}>Mute {what}</label>
      <select id={id} value="" disabled={disabled} onChange={(e) => e.target.value && onMute(e.target.value as MuteOption)}>
        <option value="">Not muted</option>
        {MUTE_OPTIONS.map((o) => (
          <option key={o.id} value={o.id}>
            {o.label}
          </option>
        ))}
      </select>
    </>
  );
}

/** The community's menu → Notification settings. */
export function CommunityNotificationsDialog({ communityId, onClose }: { communityId: string; onClose: () => void }) {
  const name = useStore(communitiesStore, (s) => s.communities[communityId]?.name ?? 'this community');
  const { loaded, error } = useSettingsLoaded();
  const entry = useStore(notificationSettingsStore, (s) => s.communities[communityId]);
  const account = useStore(notificationSettingsStore, (s) => s.account);
  const resolved = useStore(notificationSettingsStore, (s) => resolveCommunity(s, communityId), sameResolved);
  const act = useRun();
  const busy = !loaded || act.busy;
  return (
    <Modal title={`Notifications: ${name}`} onClose={onClose}>
      <LoadError error={error} />
      <p className="notif-now" data-testid="notif-now">
        Now: {describeResolved(resolved)}
      </p>
      <label htmlFor="co-notif-level">Notify me about</label>
      <LevelSelect id="co-notif-level" value={entry?.level ?? null} inherited={LEVEL_TEXT[account.level]} disabled={busy} onChange={(level) => void act.run(() => saveCommunitySettings(communityId, { level }))} />
      <MuteControl
        id="co-notif-mute"
        what="community"
        mutedUntil={entry?.muted_until ?? null}
        disabled={busy}
        onMute={(o) => void act.run(() => saveCommunitySettings(communityId, { muted_until: mutedUntilFor(o) }))}
        onUnmute={() => void act.run(() => saveCommunitySettings(communityId, { muted_until: null }))}
      />
      <label htmlFor="co-notif-everyone">@everyone</label>
      <select
        id="co-notif-everyone"
        value={entry?.suppress_everyone == null ? '' : entry.suppress_everyone ? 'ignore' : 'notify'}
        disabled={busy}
        onChange={(e) => void act.run(() => saveCommunitySettings(communityId, { suppress_everyone: e.target.value === '' ? null : e.target.value === 'ignore' }))}
      >
        <option value="">Default ({account.suppress_everyone ? 'ignore' : 'notify me'})</option>
        <option value="notify">Notify me</option>
        <option value="ignore">Ignore @everyone</option>
      </select>
      <div className="button-row">
        <button type="button" className="btn btn-secondary" disabled={busy || !entry} onClick={() => void act.run(() => resetCommunitySettings(communityId))}>
          Reset to default
        </button>
      </div>
      {act.error && (
        <p className="form-error" role="alert">
          {act.error}
        </p>
      )}
    </Modal>
  );
}

/** A channel's or DM's header → Notification settings. */
export function ChannelNotificationsDialog({ channelId, onClose }: { channelId: string; onClose: () => void }) {
  const channel = useStore(communitiesStore, (s) => s.channels[channelId]);
  const users = useStore(communitiesStore, (s) => s.users);
  const meId = useStore(sessionStore, (s) => s.user?.id ?? null);
  const communityId = channel?.community_id ?? null;
  const { loaded, error } = useSettingsLoaded();
  const entry = useStore(notificationSettingsStore, (s) => s.channels[channelId]);
  const resolved = useStore(notificationSettingsStore, (s) => resolve(s, { channelId, communityId }), sameResolved);
  // What "Default" means here: the community's level or the account's (DMs: all messages).
  const inherited = useStore(notificationSettingsStore, (s) => resolve({ ...s, channels: {} }, { channelId, communityId }).level);
  const act = useRun();
  if (!channel) return null;
  const isDm = !communityId;
  const label = isDm ? channelLabel(channel, meId, users) : `#${channel.name}`;
  const busy = !loaded || act.busy;
  return (
    <Modal title={`Notifications: ${label}`} onClose={onClose}>
      <LoadError error={error} />
      <p className="notif-now" data-testid="notif-now">
        Now: {describeResolved(resolved)}
      </p>
      <label htmlFor="ch-notif-level">Notify me about</label>
      <LevelSelect id="ch-notif-level" value={entry?.level ?? null} inherited={LEVEL_TEXT[inherited]} disabled={busy} onChange={(level) => void act.run(() => saveChannelSettings(channelId, { level }))} />
      <MuteControl
        id="ch-notif-mute"
        what={isDm ? 'conversation' : 'channel'}
        mutedUntil={entry?.muted_until ?? null}
        disabled={busy}
        onMute={(o) => void act.run(() => saveChannelSettings(channelId, { muted_until: mutedUntilFor(o) }))}
        onUnmute={() => void act.run(() => saveChannelSettings(channelId, { muted_until: null }))}
      />
      {resolved.mutedBy === 'community' && <p className="hint">The whole community is muted, which silences this channel too. Unmute it from the community’s menu.</p>}
      <div className="button-row">
        <button type="button" className="btn btn-secondary" disabled={busy || !entry} onClick={() => void act.run(() => resetChannelSettings(channelId))}>
          Reset to default
        </button>
      </div>
      {act.error && (
        <p className="form-error" role="alert">
          {act.error}
        </p>
      )}
    </Modal>
  );
}

function sameResolved(a: ReturnType<typeof resolve>, b: ReturnType<typeof resolve>): boolean {
  return a.level === b.level && a.from === b.from && a.muted === b.muted && a.mutedBy === b.mutedBy && a.mutedUntil === b.mutedUntil && a.suppressEveryone === b.suppressEveryone;
}
