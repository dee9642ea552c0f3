'use client';
// The app's dialogs: create/join community, invite, create channel, new DM, user settings.
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import type { Channel, Invite, Session, User, UserSummary } from '@/api/types';
import type { Dialog } from './AppShell';
import { api, unwrap } from '@/lib/api';
import { logout, logoutEverywhere } from '@/lib/auth';
import { getClient } from '@/lib/client';
import { useMe, useRun } from '@/lib/hooks';
import { setQuery } from '@/lib/nav';
import { communitiesStore, displayName } from '@/stores/communities';
import { sessionStore } from '@/stores/session';
import { useStore } from '@/stores/store';
import { CommunitySettings } from './CommunitySettings';
import { EmailSettings } from './EmailSettings';
import { LinkedIdentities } from './LinkedIdentities';
import { AccountNotificationSettings, CommunityNotificationsDialog } from './NotificationSettings';
import { Avatar, Modal, formatStamp } from './ui';
import { ImagePicker } from './ImagePicker';
import { clearAvatar, setAvatar } from '@/lib/images';

export function Dialogs({ dialog, onClose, onDialog }: { dialog: Dialog; onClose: () => void; onDialog: (d: Dialog) => void }) {
  if (!dialog) return null;
  switch (dialog.kind) {
    case 'create-community':
      return <CreateCommunityDialog onClose={onClose} />;
    case 'invite':
      return <InviteDialog communityId={dialog.communityId} onClose={onClose} />;
    case 'create-channel':
      return <CreateChannelDialog communityId={dialog.communityId} onClose={onClose} />;
    case 'new-dm':
      return <NewDmDialog onClose={onClose} />;
    case 'user-settings':
      return <UserSettings onClose={onClose} />;
    case 'community-settings':
      return <CommunitySettings communityId={dialog.communityId} onClose={onClose} onDialog={onDialog} initialTab={dialog.tab} />;
    case 'community-notifications':
      return <CommunityNotificationsDialog communityId={dialog.communityId} onClose={onClose} />;
  }
}


/** Accepts a bare code or a full invite link (…/invite?code=abc). */
export function parseInviteCode(input: string): string {
  const s = input.trim();
  try {
    const u = new URL(s);
    return u.searchParams.get('code') ?? u.pathname.split('/').filter(Boolean).pop() ?? '';
  } catch {
    return s.replace(/^.*\//, '');
  }
}

function CreateCommunityDialog({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState('');
  const [invite, setInvite] = useState('');
  const create = useRun();
  const join = useRun();
  return (
    <Modal title="Create or join a community" onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void create.run(async () => {
            const c = await getClient().createCommunity(name.trim());
            setQuery({ c: c.id, ch: null });
            onClose();
          });
        }}
      >
        <h3>Create your own</h3>
        <label htmlFor="community-name">Community name</label>
        <input id="community-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
        {create.error && <p className="form-error" role="alert">{create.error}</p>}
        <button className="btn btn-primary" type="submit" disabled={create.busy || !name.trim()}>
          Create
        </button>
      </form>
      <hr />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void join.run(async () => {
            const c = await getClient().joinInvite(parseInviteCode(invite));
            setQuery({ c: c.id, ch: null });
            onClose();
          });
        }}
      >
        <h3>Join with an invite</h3>
        <label htmlFor="invite-code">Invite link or code</label>
        <input id="invite-code" value={invite} onChange={(e) => setInvite(e.target.value)} placeholder="https://…/invite?code=abc123" required />
        {join.error && <p className="form-error" role="alert">{join.error}</p>}
        <button className="btn btn-secondary" type="submit" disabled={join.busy || !invite.trim()}>
          Join
        </button>
      </form>
    </Modal>
  );
}

export function inviteLink(code: string) {
  return `${window.location.origin}/invite?code=${encodeURIComponent(code)}`;
}

export function InviteCreator({ communityId }: { communityId: string }) {
  const [maxUses, setMaxUses] = useState('0');
  const [maxAge, setMaxAge] = useState('604800');
  const [invites, setInvites] = useState<Invite[]>([]);
  const [copied, setCopied] = useState<string | null>(null);
  const a = useRun();
  const create = (e: FormEvent) => {
    e.preventDefault();
    void a.run(async () => {
      const body: { max_uses?: number; max_age_seconds?: number } = {};
      if (Number(maxUses) > 0) body.max_uses = Number(maxUses);
      if (Number(maxAge) > 0) body.max_age_seconds = Number(maxAge);
      const inv = await unwrap<Invite>(api.POST('/api/v1/communities/{id}/invites', { params: { path: { id: communityId } }, body }));
      setInvites((l) => [inv, ...l]);
    });
  };
  return (
    <div>
      <form onSubmit={create} className="inline-form">
        <div>
          <label htmlFor="inv-age">Expire after</label>
          <select id="inv-age" value={maxAge} onChange={(e) => setMaxAge(e.target.value)}>
            <option value="1800">30 minutes</option>
            <option value="3600">1 hour</option>
            <option value="86400">1 day</option>
            <option value="604800">7 days</option>
            <option value="0">Never</option>
          </select>
        </div>
        <div>
          <label htmlFor="inv-uses">Max uses</label>
          <select id="inv-uses" value={maxUses} onChange={(e) => setMaxUses(e.target.value)}>
            <option value="0">No limit</option>
            <option value="1">1 use</option>
            <option value="5">5 uses</option>
            <option value="25">25 uses</option>
            <option value="100">100 uses</option>
          </select>
        </div>
        <button className="btn btn-primary" type="submit" disabled={a.busy}>
          Create invite link
        </button>
      </form>
      {a.error && <p className="form-error" role="alert">{a.error}</p>}
      <ul role="list" className="invite-list">
        {invites.map((inv) => (
          <li key={inv.code}>
            <label className="sr-only" htmlFor={`inv-${inv.code}`}>
              Invite link
            </label>
            <input id={`inv-${inv.code}`} className="invite-link" readOnly value={inviteLink(inv.code)} onFocus={(e) => e.target.select()} data-invite-code={inv.code} />
            <button
              type="button"
              className="btn btn-secondary"
              onClick={() => {
                void navigator.clipboard?.writeText(inviteLink(inv.code)).then(() => setCopied(inv.code), () => undefined);
              }}
            >
              {copied === inv.code ? 'Copied' : 'Copy'}
            </button>
            <span className="muted small">
              {inv.max_uses ? `${inv.uses}/${inv.max_uses} uses` : `${inv.uses} uses`}
              {inv.expires_at ? ` · expires ${formatStamp(new Date(inv.expires_at))}` : ' · never expires'}
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}

function InviteDialog({ communityId, onClose }: { communityId: string; onClose: () => void }) {
  const community = useStore(communitiesStore, (s) => s.communities[communityId]);
  return (
    <Modal title={`Invite people to ${community?.name ?? 'this community'}`} onClose={onClose}>
      <p className="muted">Share a link. Anyone with it can join until it expires or runs out of uses.</p>
      <InviteCreator communityId={communityId} />
    </Modal>
  );
}

function CreateChannelDialog({ communityId, onClose }: { communityId: string; onClose: () => void }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'text' | 'voice'>('text');
  const [topic, setTopic] = useState('');
  const a = useRun();
  return (
    <Modal title="Create channel" onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void a.run(async () => {
            const body: { name: string; kind: 'text' | 'voice'; topic?: string } = { name: name.trim().toLowerCase().replace(/\s+/g, '-'), kind };
            if (topic.trim()) body.topic = topic.trim();
            const ch = await unwrap<Channel>(api.POST('/api/v1/communities/{id}/channels', { params: { path: { id: communityId } }, body }));
            communitiesStore.set((s) => ({ ...s, channels: { ...s.channels, [ch.id]: ch } }));
            setQuery({ c: communityId, ch: ch.id });
            onClose();
          });
        }}
      >
        <fieldset className="radio-row">
          <legend>Channel type</legend>
          <label>
            <input type="radio" name="kind" checked={kind === 'text'} onChange={() => setKind('text')} /> # Text
          </label>
          <label>
            <input type="radio" name="kind" checked={kind === 'voice'} onChange={() => setKind('voice')} /> 🔊 Voice
          </label>
        </fieldset>
        <label htmlFor="channel-name">Channel name</label>
        <input id="channel-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
        <label htmlFor="channel-topic">Topic (optional)</label>
        <input id="channel-topic" value={topic} onChange={(e) => setTopic(e.target.value)} maxLength={1024} />
        {a.error && <p className="form-error" role="alert">{a.error}</p>}
        <button className="btn btn-primary" type="submit" disabled={a.busy || !name.trim()}>
          Create channel
        </button>
      </form>
    </Modal>
  );
}

function NewDmDialog({ onClose }: { onClose: () => void }) {
  const me = useMe();
  const users = useStore(communitiesStore, (s) => s.users);
  const [filter, setFilter] = useState('');
  const [picked, setPicked] = useState<string[]>([]);
  const a = useRun();
  const list = useMemo(
    () =>
      Object.values(users)
        .filter((u: UserSummary) => u.id !== me?.id)
        .filter((u) => !filter || u.username.includes(filter.toLowerCase()) || displayName(u).toLowerCase().includes(filter.toLowerCase()))
        .sort((x, y) => displayName(x).localeCompare(displayName(y)))
        .slice(0, 50),
    [users, me, filter],
  );
  return (
    <Modal title="New message" onClose={onClose}>
      <p className="muted">Pick one person for a direct message, or up to 9 for a group.</p>
      <label htmlFor="dm-filter">Find people</label>
      <input id="dm-filter" value={filter} onChange={(e) => setFilter(e.target.value)} />
      <ul role="list" className="pick-list">
        {list.map((u) => (
          <li key={u.id}>
            <label>
              <input
                type="checkbox"
                checked={picked.includes(u.id)}
                disabled={!picked.includes(u.id) && picked.length >= 9}
                onChange={(e) => setPicked((p) => (e.target.checked ? [...p, u.id] : p.filter((x) => x !== u.id)))}
              />
              <Avatar id={u.id} name={displayName(u)} size={24} /> {displayName(u)} <span className="muted small">@{u.username}</span>
            </label>
          </li>
        ))}
        {list.length === 0 && <li className="muted">Nobody found. People from your communities show up here.</li>}
      </ul>
      {a.error && <p className="form-error" role="alert">{a.error}</p>}
      <button
        type="button"
        className="btn btn-primary"
        disabled={a.busy || picked.length === 0}
        onClick={() =>
          void a.run(async () => {
            const dm = await getClient().openDm(picked);
            setQuery({ c: '@me', ch: dm.id });
            onClose();
          })
        }
      >
        {picked.length > 1 ? 'Create group' : 'Open conversation'}
      </button>
    </Modal>
  );
}

/** The avatar: upload one (cropped square in the browser) or remove it. */
function AvatarEditor() {
  const me = useMe();
  const r = useRun();
  const [done, setDone] = useState<string | null>(null);
  if (!me) return null;
  return (
    <div className="avatar-editor" role="group" aria-label="Avatar">
      <Avatar id={me.id} name={me.display_name || me.username} size={80} />
      <ImagePicker
        label={me.avatar_url ? 'Change avatar' : 'Upload avatar'}
        title="Crop your avatar"
        round
        onCropped={async (image, filename) => {
          setDone(null);
          await setAvatar(image, filename);
          setDone('Avatar updated.');
        }}
      />
      {me.avatar_url && (
        <button
          type="button"
          className="btn btn-secondary"
          disabled={r.busy}
          onClick={() =>
            void r.run(async () => {
              setDone(null);
              await clearAvatar();
              setDone('Avatar removed.');
            })
          }
        >
          Remove avatar
        </button>
      )}
      {done && <span role="status">{done}</span>}
      {r.error && <p className="form-error" role="alert">{r.error}</p>}
    </div>
  );
}

function UserSettings({ onClose }: { onClose: () => void }) {
  const me = useMe();
  const [displayNameValue, setDisplayName] = useState(me?.display_name ?? '');
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const save = useRun();
  const sess = useRun();
  const [saved, setSaved] = useState(false);
  const load = () =>
    sess.run(async () => {
      setSessions(await unwrap<Session[]>(api.GET('/api/v1/auth/sessions')));
    });
  useEffect(() => {
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  if (!me) return null;
  return (
    <Modal title="User settings" onClose={onClose} wide>
      <section aria-labelledby="profile-h">
        <h3 id="profile-h">Profile</h3>
        <AvatarEditor />
        <form
          className="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            setSaved(false);
            void save.run(async () => {
              const u = await unwrap<User>(api.PATCH('/api/v1/users/@me', { body: { display_name: displayNameValue.trim() || null } }));
              sessionStore.set((s) => ({ ...s, user: u }));
              communitiesStore.set((s) => ({ ...s, users: { ...s.users, [u.id]: { id: u.id, username: u.username, display_name: u.display_name, avatar_url: u.avatar_url } } }));
              setSaved(true);
            });
          }}
        >
          <div>
            <label htmlFor="settings-display">Display name</label>
            <input id="settings-display" value={displayNameValue} onChange={(e) => setDisplayName(e.target.value)} maxLength={64} placeholder={me.username} />
          </div>
          <button className="btn btn-primary" type="submit" disabled={save.busy}>
            Save
          </button>
          {saved && <span role="status">Saved.</span>}
        </form>
        {save.error && <p className="form-error" role="alert">{save.error}</p>}
        <p className="muted small">
          Username @{me.username} · plan {me.plan} · member since {new Date(me.created_at).toLocaleDateString()}
        </p>
      </section>
      <EmailSettings />
      <LinkedIdentities />
      <AccountNotificationSettings />
      <PrivacySettings />
      <section aria-labelledby="status-h">
        <h3 id="status-h">Status</h3>
        <label htmlFor="presence-select">Show me as</label>
        <select
          id="presence-select"
          defaultValue="online"
          onChange={(e) => getClient().setPresence(e.target.value as 'online' | 'idle' | 'dnd' | 'invisible')}
        >
          <option value="online">Online</option>
          <option value="idle">Idle</option>
          <option value="dnd">Do not disturb</option>
          <option value="invisible">Invisible</option>
        </select>
      </section>
      <section aria-labelledby="sessions-h">
        <h3 id="sessions-h">Sessions</h3>
        {sess.error && <p className="form-error" role="alert">{sess.error}</p>}
        {sessions === null && !sess.error && <p className="muted">Loading…</p>}
        <ul role="list" className="session-list">
          {(sessions ?? []).map((s) => (
            <li key={s.id}>
              <div>
                <strong>{s.user_agent || 'Unknown device'}</strong> {s.current && <span className="tag">This device</span>}
                <div className="muted small">
                  Signed in {formatStamp(new Date(s.created_at))} · last seen {formatStamp(new Date(s.last_seen_at))}
                </div>
              </div>
              {!s.current && (
                <button
                  type="button"
                  className="btn btn-secondary"
                  onClick={() =>
                    void sess.run(async () => {
                      await unwrap(api.DELETE('/api/v1/auth/sessions/{id}', { params: { path: { id: s.id } } }));
                      setSessions((l) => (l ?? []).filter((x) => x.id !== s.id));
                    })
                  }
                >
                  Sign out
                </button>
              )}
            </li>
          ))}
        </ul>
        <div className="button-row">
          <button type="button" className="btn btn-secondary" onClick={() => void logout()}>
            Sign out
          </button>
          <button
            type="button"
            className="btn btn-danger"
            onClick={() => {
              if (!window.confirm('Sign out of every device, including this one?')) return;
              void logoutEverywhere();
            }}
          >
            Sign out everywhere
          </button>
        </div>
      </section>
    </Modal>
  );
}

type DmPolicy = 'community_members' | 'nobody';

/** Who may DM you, and the people you blocked (contract v1.1 "DMs"). */
function PrivacySettings() {
  const [policy, setPolicy] = useState<DmPolicy | null>(null);
  const [blocked, setBlocked] = useState<User[] | null>(null);
  const act = useRun();
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    void act.run(async () => {
      const me = await unwrap<{ allow_dms_from: DmPolicy }>(api.GET('/api/v1/users/@me'));
      setPolicy(me.allow_dms_from);
      setBlocked(await unwrap<User[]>(api.GET('/api/v1/users/@me/blocks')));
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <section aria-labelledby="privacy-h">
      <h3 id="privacy-h">Privacy</h3>
      <label htmlFor="dm-policy">Who can send you direct messages</label>
      <select
        id="dm-policy"
        value={policy ?? 'community_members'}
        disabled={policy === null || act.busy}
        onChange={(e) => {
          const next = e.target.value as DmPolicy;
          setSaved(false);
          void act.run(async () => {
            const me = await unwrap<{ allow_dms_from: DmPolicy }>(api.PATCH('/api/v1/users/@me', { body: { allow_dms_from: next } }));
            setPolicy(me.allow_dms_from);
            setSaved(true);
          });
        }}
      >
        <option value="community_members">Members of communities we share</option>
        <option value="nobody">Nobody</option>
      </select>
      {saved && <span role="status"> Saved.</span>}
      <h4 id="blocked-h">Blocked users</h4>
      {blocked !== null && blocked.length === 0 && <p className="muted small">You have not blocked anyone.</p>}
      <ul role="list" aria-labelledby="blocked-h" className="session-list">
        {(blocked ?? []).map((u) => (
          <li key={u.id}>
            <div>
              <strong>{u.display_name ?? u.username}</strong> <span className="muted small">@{u.username}</span>
            </div>
            <button
              type="button"
              className="btn btn-secondary"
              onClick={() =>
                void act.run(async () => {
                  await unwrap(api.DELETE('/api/v1/users/@me/blocks/{user_id}', { params: { path: { user_id: u.id } } }));
                  setBlocked((l) => (l ?? []).filter((x) => x.id !== u.id));
                })
              }
            >
              Unblock {u.display_name ?? u.username}
            </button>
          </li>
        ))}
      </ul>
      {act.error && <p className="form-error" role="alert">{act.error}</p>}
    </section>
  );
}
