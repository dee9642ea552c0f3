'use client';
// Community settings: overview (name, delete), roles with permission toggles, channel
// settings (slowmode, lock) and permission overwrites, invites, members (roles, kick,
// ban, timeout), and for moderators: the audit log, the reports queue and automod.
import { useEffect, useMemo, useState } from 'react';
import type { Channel, Community, Member, Overwrite, Permission, Role } from '@/api/types';
import type { Dialog } from './AppShell';
import { api, unwrap } from '@/lib/api';
import { getClient } from '@/lib/client';
import { has, useCommunityChannels, useMe, useMembers, usePermissions, useRun } from '@/lib/hooks';
import { setQuery } from '@/lib/nav';
import { ALL_PERMISSIONS, PERMISSION_LABELS } from '@/lib/permissions';
import { communitiesStore, displayName, upsertChannel, upsertCommunity, upsertMember, upsertRole, removeRole } from '@/stores/communities';
import { useStore } from '@/stores/store';
import { InviteCreator } from './Dialogs';
import { AuditLogView } from './AuditLog';
import { AutomodSettings } from './Automod';
import { ReportsQueue } from './Reports';
import { COMMUNITY_AUDIT_ACTIONS, getAuditLog, slowmodeChoices } from '@/lib/moderation';
import type { PermSet } from '@/lib/permissions';
import { Avatar, Modal } from './ui';
import { ImagePicker } from './ImagePicker';
import { clearCommunityIcon, setCommunityIcon } from '@/lib/images';

const TABS = ['Overview', 'Roles', 'Channels', 'Invites', 'Members', 'Audit log', 'Reports', 'Automod'] as const;
type Tab = (typeof TABS)[number];

/** Moderators handle the community's reports (docs/api.md "Reports"). */
export function isCommunityModerator(perms: PermSet): boolean {
  return ['MANAGE_MESSAGES', 'KICK_MEMBERS', 'BAN_MEMBERS', 'MODERATE_MEMBERS'].some((p) => has(perms, p));
}

/** The settings tabs a member with these permissions sees. */
export function visibleTabs(perms: PermSet): Tab[] {
  return TABS.filter((t) => {
    if (t === 'Audit log') return has(perms, 'VIEW_AUDIT_LOG');
    if (t === 'Reports') return isCommunityModerator(perms);
    if (t === 'Automod') return has(perms, 'MANAGE_COMMUNITY');
    return true;
  });
}

export function CommunitySettings({ communityId, onClose, initialTab }: { communityId: string; onClose: () => void; onDialog: (d: Dialog) => void; initialTab?: string }) {
  const community = useStore(communitiesStore, (s) => s.communities[communityId]);
  const perms = usePermissions(communityId);
  const tabs = visibleTabs(perms);
  const [tab, setTab] = useState<Tab>(() => (TABS as readonly string[]).includes(initialTab ?? '') ? (initialTab as Tab) : 'Overview');
  if (!community) return null;
  return (
    <Modal title={`${community.name} settings`} onClose={onClose} wide>
      <div className="settings">
        <div className="tabs" role="tablist" aria-label="Settings sections">
          {tabs.map((t) => (
            <button key={t} type="button" role="tab" id={`tab-${t}`} aria-selected={tab === t} aria-controls={`panel-${t}`} className={tab === t ? 'tab active' : 'tab'} onClick={() => setTab(t)}>
              {t}
            </button>
          ))}
        </div>
        <div className="tab-panel" role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
          {tab === 'Overview' && <Overview community={community} onClose={onClose} />}
          {tab === 'Roles' && <Roles communityId={communityId} />}
          {tab === 'Channels' && <Channels community={community} />}
          {tab === 'Invites' && <InviteCreator communityId={communityId} />}
          {tab === 'Members' && <Members community={community} />}
          {tab === 'Audit log' && tabs.includes(tab) && <CommunityAuditLog community={community} />}
          {tab === 'Reports' && tabs.includes(tab) && <ReportsQueue scope={{ communityId }} canHandle />}
          {tab === 'Automod' && tabs.includes(tab) && <AutomodSettings communityId={communityId} />}
        </div>
      </div>
    </Modal>
  );
}


function Overview({ community, onClose }: { community: Community; onClose: () => void }) {
  const me = useMe();
  const perms = usePermissions(community.id);
  const [name, setName] = useState(community.name);
  const r = useRun();
  const [saved, setSaved] = useState(false);
  const canManage = has(perms, 'MANAGE_COMMUNITY');
  const icon = useRun();
  const [iconDone, setIconDone] = useState<string | null>(null);
  return (
    <div>
      <div className="avatar-editor" role="group" aria-label="Community icon">
        <span className="rail-btn" aria-hidden="true">
          {community.icon_url ? <img className="rail-icon" src={community.icon_url} alt="" width={48} height={48} /> : community.name.slice(0, 1).toUpperCase()}
        </span>
        {/* Only MANAGE_COMMUNITY sets the icon (the server says 403 to anyone else): no control for others. */}
        {canManage && (
          <ImagePicker
            label={community.icon_url ? 'Change icon' : 'Upload icon'}
            title="Crop the community icon"
            round={false}
            onCropped={async (image, filename) => {
              setIconDone(null);
              await setCommunityIcon(community.id, image, filename);
              setIconDone('Icon updated.');
            }}
          />
        )}
        {community.icon_url && canManage && (
          <button
            type="button"
            className="btn btn-secondary"
            disabled={icon.busy}
            onClick={() =>
              void icon.run(async () => {
                setIconDone(null);
                await clearCommunityIcon(community.id);
                setIconDone('Icon removed.');
              })
            }
          >
            Remove icon
          </button>
        )}
        {iconDone && <span role="status">{iconDone}</span>}
        {icon.error && <p className="form-error" role="alert">{icon.error}</p>}
      </div>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setSaved(false);
          void r.run(async () => {
            const c = await unwrap<Community>(api.PATCH('/api/v1/communities/{id}', { params: { path: { id: community.id } }, body: { name: name.trim() } }));
            communitiesStore.set((s) => upsertCommunity(s, c));
            setSaved(true);
          });
        }}
      >
        <label htmlFor="cs-name">Community name</label>
        <input id="cs-name" value={name} onChange={(e) => setName(e.target.value)} disabled={!has(perms, 'MANAGE_COMMUNITY')} maxLength={100} />
        <button className="btn btn-primary" type="submit" disabled={r.busy || !has(perms, 'MANAGE_COMMUNITY') || !name.trim()}>
          Save
        </button>
        {saved && <span role="status"> Saved.</span>}
      </form>
      {r.error && <p className="form-error" role="alert">{r.error}</p>}
      {community.owner_id === me?.id && (
        <section className="danger-zone" aria-label="Danger zone">
          <h3>Delete community</h3>
          <p className="muted">This deletes every channel and message. It cannot be undone.</p>
          <button
            type="button"
            className="btn btn-danger"
            onClick={() => {
              if (window.prompt(`Type the community name (${community.name}) to delete it.`) !== community.name) return;
              void r.run(async () => {
                await unwrap(api.DELETE('/api/v1/communities/{id}', { params: { path: { id: community.id } } }));
                getClient().forgetCommunity(community.id);
                setQuery({ c: null, ch: null });
                onClose();
              });
            }}
          >
            Delete community
          </button>
        </section>
      )}
    </div>
  );
}

function intToHex(c: number | null | undefined) {
  return c ? `#${c.toString(16).padStart(6, '0')}` : '#99aab5';
}

function Roles({ communityId }: { communityId: string }) {
  const roles = useStore(communitiesStore, (s) => s.roles[communityId]) ?? [];
  const sorted = useMemo(() => [...roles].sort((a, b) => b.position - a.position), [roles]);
  const [selected, setSelected] = useState<string | null>(sorted[0]?.id ?? null);
  const role = roles.find((r) => r.id === selected) ?? null;
  const r = useRun();
  const create = () =>
    r.run(async () => {
      const created = await unwrap<Role>(api.POST('/api/v1/communities/{id}/roles', { params: { path: { id: communityId } }, body: { name: 'new role', permissions: [] } }));
      communitiesStore.set((s) => upsertRole(s, created));
      setSelected(created.id);
    });
  return (
    <div className="split">
      <div className="split-list">
        <ul role="listbox" aria-label="Roles">
          {sorted.map((x) => (
            <li key={x.id} role="option" aria-selected={x.id === selected} tabIndex={0} className={x.id === selected ? 'selected' : ''} onClick={() => setSelected(x.id)} onKeyDown={(e) => (e.key === 'Enter' || e.key === ' ') && setSelected(x.id)}>
              <span className="role-dot" style={{ background: intToHex(x.color) }} aria-hidden="true" />
              {x.name}
            </li>
          ))}
        </ul>
        <button type="button" className="btn btn-secondary btn-block" onClick={() => void create()} disabled={r.busy}>
          Create role
        </button>
        {r.error && <p className="form-error" role="alert">{r.error}</p>}
      </div>
      <div className="split-main">{role ? <RoleEditor key={role.id} role={role} communityId={communityId} onDeleted={() => setSelected(null)} /> : <p className="muted">Pick a role.</p>}</div>
    </div>
  );
}

function RoleEditor({ role, communityId, onDeleted }: { role: Role; communityId: string; onDeleted: () => void }) {
  const [name, setName] = useState(role.name);
  const [color, setColor] = useState(intToHex(role.color));
  const [perms, setPerms] = useState<Permission[]>(role.permissions);
  const r = useRun();
  const [saved, setSaved] = useState(false);
  const isEveryone = role.id === communityId;
  const toggle = (p: Permission) => setPerms((l) => (l.includes(p) ? l.filter((x) => x !== p) : [...l, p]));
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        setSaved(false);
        void r.run(async () => {
          const body: { name?: string; permissions: Permission[]; color?: number } = { permissions: perms };
          if (!isEveryone) {
            body.name = name.trim();
            body.color = parseInt(color.slice(1), 16);
          }
          const updated = await unwrap<Role>(api.PATCH('/api/v1/communities/{id}/roles/{role_id}', { params: { path: { id: communityId, role_id: role.id } }, body }));
          communitiesStore.set((s) => upsertRole(s, updated));
          setSaved(true);
        });
      }}
    >
      <div className="inline-form">
        <div>
          <label htmlFor="role-name">Role name</label>
          <input id="role-name" value={name} onChange={(e) => setName(e.target.value)} disabled={isEveryone} maxLength={100} />
        </div>
        <div>
          <label htmlFor="role-color">Color</label>
          <input id="role-color" type="color" value={color} onChange={(e) => setColor(e.target.value)} disabled={isEveryone} />
        </div>
      </div>
      <fieldset className="perm-grid">
        <legend>Permissions</legend>
        {ALL_PERMISSIONS.map((p) => (
          <label key={p} className="switch">
            <input type="checkbox" role="switch" checked={perms.includes(p)} onChange={() => toggle(p)} aria-describedby={`perm-${p}`} />
            <span>{PERMISSION_LABELS[p]}</span>
            <code id={`perm-${p}`} className="small muted">
              {p}
            </code>
          </label>
        ))}
      </fieldset>
      {r.error && <p className="form-error" role="alert">{r.error}</p>}
      <div className="button-row">
        <button className="btn btn-primary" type="submit" disabled={r.busy}>
          Save role
        </button>
        {saved && <span role="status">Saved.</span>}
        {!isEveryone && (
          <button
            type="button"
            className="btn btn-danger"
            onClick={() => {
              if (!window.confirm(`Delete role ${role.name}?`)) return;
              void r.run(async () => {
                await unwrap(api.DELETE('/api/v1/communities/{id}/roles/{role_id}', { params: { path: { id: communityId, role_id: role.id } } }));
                communitiesStore.set((s) => removeRole(s, communityId, role.id));
                onDeleted();
              });
            }}
          >
            Delete role
          </button>
        )}
      </div>
    </form>
  );
}

type Tri = 'allow' | 'deny' | 'inherit';

function Channels({ community }: { community: Community }) {
  const channels = useCommunityChannels(community.id).filter((c) => c.kind === 'text' || c.kind === 'voice');
  const [selected, setSelected] = useState<string | null>(channels[0]?.id ?? null);
  const channel = channels.find((c) => c.id === selected) ?? null;
  return (
    <div className="split">
      <div className="split-list">
        <ul role="listbox" aria-label="Channels">
          {channels.map((c) => (
            <li key={c.id} role="option" aria-selected={c.id === selected} tabIndex={0} className={c.id === selected ? 'selected' : ''} onClick={() => setSelected(c.id)} onKeyDown={(e) => (e.key === 'Enter' || e.key === ' ') && setSelected(c.id)}>
              {c.kind === 'voice' ? '🔊' : '#'} {c.name}
            </li>
          ))}
        </ul>
      </div>
      <div className="split-main">{channel ? <ChannelEditor key={channel.id} channel={channel} community={community} /> : <p className="muted">Pick a channel.</p>}</div>
    </div>
  );
}

function ChannelEditor({ channel, community }: { channel: Channel; community: Community }) {
  const roles = useStore(communitiesStore, (s) => s.roles[community.id]) ?? [];
  const members = useMembers(community.id);
  const [name, setName] = useState(channel.name ?? '');
  const [topic, setTopic] = useState(channel.topic ?? '');
  const [slowmode, setSlowmode] = useState<number>(channel.slowmode_secs ?? 0);
  const [locked, setLocked] = useState<boolean>(!!channel.locked);
  const [channelSaved, setChannelSaved] = useState(false);
  const r = useRun();
  const [overwrites, setOverwrites] = useState<Overwrite[]>(channel.overwrites ?? []);
  const [target, setTarget] = useState<string>(community.id);
  const existing = overwrites.find((o) => o.target_id === target);
  const targetType: 'role' | 'member' = roles.some((x) => x.id === target) ? 'role' : 'member';
  const [state, setState] = useState<Record<string, Tri>>(() => triState(existing));
  const [savedMsg, setSavedMsg] = useState<string | null>(null);

  // Channels don't carry their overwrites in every server version: read them.
  useEffect(() => {
    let live = true;
    unwrap<Overwrite[]>(api.GET('/api/v1/channels/{id}/overwrites', { params: { path: { id: channel.id } } }))
      .then((list) => {
        if (!live) return;
        setOverwrites(list);
        setState(triState(list.find((o) => o.target_id === community.id)));
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [channel.id, community.id]);

  const pickTarget = (id: string) => {
    setTarget(id);
    setState(triState(overwrites.find((o) => o.target_id === id)));
    setSavedMsg(null);
  };

  const saveOverwrite = () =>
    r.run(async () => {
      const allow = ALL_PERMISSIONS.filter((p) => state[p] === 'allow');
      const deny = ALL_PERMISSIONS.filter((p) => state[p] === 'deny');
      await unwrap(api.PUT('/api/v1/channels/{id}/overwrites/{target_id}', { params: { path: { id: channel.id, target_id: target } }, body: { target_type: targetType, allow, deny } }));
      const ow: Overwrite = { target_id: target, target_type: targetType, allow, deny };
      const next = [...overwrites.filter((o) => o.target_id !== target), ow];
      setOverwrites(next);
      communitiesStore.set((s) => upsertChannel(s, { ...channel, overwrites: next }));
      setSavedMsg('Permissions saved.');
    });

  const removeOverwrite = () =>
    r.run(async () => {
      await unwrap(api.DELETE('/api/v1/channels/{id}/overwrites/{target_id}', { params: { path: { id: channel.id, target_id: target } } }));
      const next = overwrites.filter((o) => o.target_id !== target);
      setOverwrites(next);
      communitiesStore.set((s) => upsertChannel(s, { ...channel, overwrites: next }));
      setState({});
      setSavedMsg('Overwrite removed.');
    });

  return (
    <div>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          setChannelSaved(false);
          void r.run(async () => {
            const body: { name: string; topic: string | null; slowmode_secs?: number; locked?: boolean } = { name: name.trim(), topic: topic.trim() || null };
            if (channel.kind === 'text') {
              body.slowmode_secs = slowmode;
              body.locked = locked;
            }
            const updated = await unwrap<Channel>(api.PATCH('/api/v1/channels/{id}', { params: { path: { id: channel.id } }, body }));
            communitiesStore.set((s) => upsertChannel(s, updated));
            setChannelSaved(true);
          });
        }}
      >
        <div>
          <label htmlFor="ch-name">Name</label>
          <input id="ch-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} />
        </div>
        <div>
          <label htmlFor="ch-topic">Topic</label>
          <input id="ch-topic" value={topic} onChange={(e) => setTopic(e.target.value)} maxLength={1024} />
        </div>
        {channel.kind === 'text' && (
          <>
            <div>
              <label htmlFor="ch-slowmode">Slowmode</label>
              <select id="ch-slowmode" value={slowmode} onChange={(e) => setSlowmode(Number(e.target.value))}>
                {slowmodeChoices(slowmode).map(([v, l]) => (
                  <option key={v} value={v}>
                    {l}
                  </option>
                ))}
              </select>
            </div>
            <label className="switch">
              <input type="checkbox" role="switch" checked={locked} onChange={(e) => setLocked(e.target.checked)} /> Locked (only moderators can post)
            </label>
          </>
        )}
        <button className="btn btn-primary" type="submit" disabled={r.busy}>
          Save
        </button>
        <button
          type="button"
          className="btn btn-danger"
          onClick={() => {
            if (!window.confirm(`Delete #${channel.name}? Its messages are lost.`)) return;
            void r.run(async () => {
              await unwrap(api.DELETE('/api/v1/channels/{id}', { params: { path: { id: channel.id } } }));
              getClient().forgetChannel(channel.id);
            });
          }}
        >
          Delete channel
        </button>
        {channelSaved && <span role="status">Channel saved.</span>}
      </form>
      <h3>Permission overwrites</h3>
      <label htmlFor="ow-target">Role or member</label>
      <select id="ow-target" value={target} onChange={(e) => pickTarget(e.target.value)}>
        <optgroup label="Roles">
          {roles.map((x) => (
            <option key={x.id} value={x.id}>
              {x.name}
              {overwrites.some((o) => o.target_id === x.id) ? ' •' : ''}
            </option>
          ))}
        </optgroup>
        <optgroup label="Members">
          {members.map((m) => (
            <option key={m.user.id} value={m.user.id}>
              {displayName(m.user, m)}
              {overwrites.some((o) => o.target_id === m.user.id) ? ' •' : ''}
            </option>
          ))}
        </optgroup>
      </select>
      <table className="ow-table">
        <caption className="sr-only">Allow, inherit or deny each permission</caption>
        <thead>
          <tr>
            <th scope="col">Permission</th>
            <th scope="col">Deny</th>
            <th scope="col">Inherit</th>
            <th scope="col">Allow</th>
          </tr>
        </thead>
        <tbody>
          {ALL_PERMISSIONS.filter((p) => p !== 'ADMINISTRATOR' && p !== 'MANAGE_COMMUNITY' && p !== 'BAN_MEMBERS' && p !== 'KICK_MEMBERS').map((p) => (
            <tr key={p} data-permission={p}>
              <th scope="row">{PERMISSION_LABELS[p]}</th>
              {(['deny', 'inherit', 'allow'] as Tri[]).map((v) => (
                <td key={v}>
                  <input
                    type="radio"
                    name={`ow-${p}`}
                    aria-label={`${v} ${PERMISSION_LABELS[p]}`}
                    value={v}
                    checked={(state[p] ?? 'inherit') === v}
                    onChange={() => setState((s) => ({ ...s, [p]: v }))}
                  />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {r.error && <p className="form-error" role="alert">{r.error}</p>}
      {savedMsg && <p role="status">{savedMsg}</p>}
      <div className="button-row">
        <button type="button" className="btn btn-primary" onClick={() => void saveOverwrite()} disabled={r.busy}>
          Save overwrite
        </button>
        {existing && (
          <button type="button" className="btn btn-secondary" onClick={() => void removeOverwrite()} disabled={r.busy}>
            Remove overwrite
          </button>
        )}
      </div>
    </div>
  );
}

function triState(o: Overwrite | undefined): Record<string, Tri> {
  const s: Record<string, Tri> = {};
  for (const p of o?.allow ?? []) s[p] = 'allow';
  for (const p of o?.deny ?? []) s[p] = 'deny';
  return s;
}

function Members({ community }: { community: Community }) {
  const members = useMembers(community.id);
  const roles = useStore(communitiesStore, (s) => s.roles[community.id]) ?? [];
  const perms = usePermissions(community.id);
  const me = useMe();
  const [filter, setFilter] = useState('');
  const r = useRun();
  const list = members
    .filter((m) => !filter || m.user.username.includes(filter.toLowerCase()) || displayName(m.user, m).toLowerCase().includes(filter.toLowerCase()))
    .sort((a, b) => displayName(a.user, a).localeCompare(displayName(b.user, b)));
  const assignable = roles.filter((x) => x.id !== community.id);

  const act = (fn: () => Promise<unknown>) => void r.run(async () => void (await fn()));
  const path = (m: Member) => ({ params: { path: { id: community.id, user_id: m.user.id } } });
  const timeout = (m: Member, minutes: number | null) =>
    act(async () => {
      const until = minutes ? new Date(Date.now() + minutes * 60_000).toISOString() : null;
      const updated = await unwrap<Member>(api.PATCH('/api/v1/communities/{id}/members/{user_id}', { ...path(m), body: { timed_out_until: until } }));
      communitiesStore.set((s) => upsertMember(s, community.id, updated ?? { ...m, timed_out_until: until }));
    });

  return (
    <div>
      <label htmlFor="mem-filter">Search members</label>
      <input id="mem-filter" value={filter} onChange={(e) => setFilter(e.target.value)} />
      {r.error && <p className="form-error" role="alert">{r.error}</p>}
      <ul role="list" className="member-admin">
        {list.map((m) => {
          const isOwner = m.user.id === community.owner_id;
          const self = m.user.id === me?.id;
          const name = displayName(m.user, m);
          const timedOut = m.timed_out_until && Date.parse(m.timed_out_until) > Date.now();
          return (
            <li key={m.user.id}>
              <div className="member-admin-head">
                <Avatar id={m.user.id} name={name} size={28} />
                <strong>{name}</strong> <span className="muted small">@{m.user.username}</span>
                {isOwner && <span className="tag">Owner</span>}
                {timedOut && <span className="tag">Timed out</span>}
              </div>
              {has(perms, 'MANAGE_ROLES') && assignable.length > 0 && (
                <fieldset className="role-chips">
                  <legend className="sr-only">Roles of {name}</legend>
                  {assignable.map((role) => {
                    const on = m.roles.includes(role.id);
                    return (
                      <label key={role.id} className={on ? 'chip on' : 'chip'}>
                        <input
                          type="checkbox"
                          checked={on}
                          onChange={() =>
                            act(async () => {
                              const opts = { params: { path: { id: community.id, user_id: m.user.id, role_id: role.id } } };
                              await unwrap(on ? api.DELETE('/api/v1/communities/{id}/members/{user_id}/roles/{role_id}', opts) : api.PUT('/api/v1/communities/{id}/members/{user_id}/roles/{role_id}', opts));
                              communitiesStore.set((s) => upsertMember(s, community.id, { ...m, roles: on ? m.roles.filter((x) => x !== role.id) : [...m.roles, role.id] }));
                            })
                          }
                        />
                        {role.name}
                      </label>
                    );
                  })}
                </fieldset>
              )}
              {!isOwner && !self && (
                <div className="button-row">
                  {has(perms, 'MODERATE_MEMBERS') &&
                    (timedOut ? (
                      <button type="button" className="btn btn-secondary" onClick={() => timeout(m, null)}>
                        Remove timeout
                      </button>
                    ) : (
                      <>
                        <label className="sr-only" htmlFor={`to-${m.user.id}`}>
                          Time out {name}
                        </label>
                        <select
                          id={`to-${m.user.id}`}
                          value=""
                          onChange={(e) => {
                            if (e.target.value) timeout(m, Number(e.target.value));
                          }}
                        >
                          <option value="">Time out…</option>
                          <option value="1">1 minute</option>
                          <option value="10">10 minutes</option>
                          <option value="60">1 hour</option>
                          <option value="1440">1 day</option>
                          <option value="10080">1 week</option>
                        </select>
                      </>
                    ))}
                  {has(perms, 'KICK_MEMBERS') && (
                    <button
                      type="button"
                      className="btn btn-secondary"
                      onClick={() => {
                        if (!window.confirm(`Kick ${name}?`)) return;
                        act(async () => {
                          await unwrap(api.DELETE('/api/v1/communities/{id}/members/{user_id}', path(m)));
                          communitiesStore.set((s) => {
                            const map = { ...(s.members[community.id] ?? {}) };
                            delete map[m.user.id];
                            return { ...s, members: { ...s.members, [community.id]: map } };
                          });
                        });
                      }}
                    >
                      Kick
                    </button>
                  )}
                  {has(perms, 'BAN_MEMBERS') && (
                    <button
                      type="button"
                      className="btn btn-danger"
                      onClick={() => {
                        const reason = window.prompt(`Ban ${name}? Optional reason:`, '');
                        if (reason === null) return;
                        act(async () => {
                          await unwrap(api.PUT('/api/v1/communities/{id}/bans/{user_id}', { ...path(m), body: reason.trim() ? { reason: reason.trim() } : {} }));
                          communitiesStore.set((s) => {
                            const map = { ...(s.members[community.id] ?? {}) };
                            delete map[m.user.id];
                            return { ...s, members: { ...s.members, [community.id]: map } };
                          });
                        });
                      }}
                    >
                      Ban
                    </button>
                  )}
                </div>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}

function CommunityAuditLog({ community }: { community: Community }) {
  const members = useMembers(community.id);
  const roles = useStore(communitiesStore, (s) => s.roles[community.id]) ?? [];
  const channels = useCommunityChannels(community.id);
  const actors = useMemo(
    () => members.map((m) => ({ id: m.user.id, label: `${displayName(m.user, m)} (@${m.user.username})` })).sort((a, b) => a.label.localeCompare(b.label)),
    [members],
  );
  const targets = useMemo(
    () => [
      { group: 'Members', choices: actors },
      { group: 'Channels', choices: channels.map((c) => ({ id: c.id, label: `#${c.name}` })) },
      { group: 'Roles', choices: roles.map((r) => ({ id: r.id, label: r.name })) },
    ],
    [actors, channels, roles],
  );
  return <AuditLogView communityId={community.id} load={(f) => getAuditLog(community.id, f)} actions={COMMUNITY_AUDIT_ACTIONS} actors={actors} targets={targets} />;
}
