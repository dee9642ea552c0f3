'use client';
// /admin: the instance's staff area. Stats, user search with suspend/unsuspend and MFA
// reset and account erasure, the communities list with takedown, the instance's reports
// queue, the staff roles and permissions editor, and the instance audit log. What a staff member sees follows GET /admin/@me: sections and
// buttons they lack the permission for are hidden or disabled (the server checks every
// call anyway, and a 403 names the missing permission).
import { useCallback, useEffect, useMemo, useState, type FormEvent } from 'react';
import { useRouter } from 'next/navigation';
import { onSignedOut, restoreSession } from '@/lib/auth';
import { ADMIN_SECTIONS, adminApi, ERASED_MESSAGES_LABEL, eraseGate, isErased, isStaff, loadStaffMe, parsePermission, resetStaff, staffCan, staffStore, STAFF_PERMISSIONS, visibleSections, type AdminSection, type AdminUser, type ErasedMessages, type InstanceStats, type StaffMe, type StaffRole } from '@/lib/admin';
import { describeError } from '@/lib/errors';
import { ADMIN_AUDIT_ACTIONS, parseTime } from '@/lib/moderation';
import { useMe, useRun } from '@/lib/hooks';
import { resetClient } from '@/lib/client';
import { useStore } from '@/stores/store';
import { Communities, EraseDialog } from './AdminDanger';
import { AuditLogView, useNameLookup } from './AuditLog';
import { ReportsQueue } from './Reports';
import { Avatar, formatFull, Notices } from './ui';

export function AdminArea() {
  const router = useRouter();
  const [ready, setReady] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const staff = useStore(staffStore, (s) => s);

  useEffect(() => {
    let live = true;
    void restoreSession().then((ok) => {
      if (!live) return;
      if (!ok) {
        router.replace('/login?next=/admin');
        return;
      }
      setReady(true);
      loadStaffMe(true).catch((e) => live && setError(describeError(e)));
    });
    const off = onSignedOut(() => {
      resetClient();
      resetStaff();
      router.replace('/login');
    });
    return () => {
      live = false;
      off();
    };
  }, [router]);

  if (!ready || !staff.loaded) {
    return (
      <main className="splash" aria-busy="true">
        <div className="spinner" aria-hidden="true" />
        <p>Loading…</p>
      </main>
    );
  }
  if (!isStaff(staff.me)) {
    return (
      <main className="admin-page">
        <div className="admin-denied">
          <h1>Instance admin</h1>
          <p role="alert">{error ?? "You are not on this server's staff, so there is nothing for you here."}</p>
          <a className="btn btn-primary" href="/app">
            Back to Hearth
          </a>
        </div>
      </main>
    );
  }
  return <AdminScreens me={staff.me!} />;
}

function AdminScreens({ me }: { me: StaffMe }) {
  const sections = visibleSections(me);
  const [tab, setTab] = useState<AdminSection | null>(sections[0] ?? null);
  // "Find in Communities" from the erase dialog: open that tab searching for an id.
  const [communityQuery, setCommunityQuery] = useState<{ q: string; n: number }>({ q: '', n: 0 });
  const findCommunity = sections.includes('communities')
    ? (q: string) => {
        setCommunityQuery((c) => ({ q, n: c.n + 1 }));
        setTab('communities');
      }
    : undefined;
  const label = (id: AdminSection) => ADMIN_SECTIONS.find((s) => s.id === id)!.label;
  return (
    <main className="admin-page">
      <header className="admin-header">
        <h1>Instance admin</h1>
        <span className="muted small">{me.is_admin ? 'administrator' : me.roles.join(', ') || 'staff'}</span>
        <a className="btn btn-secondary admin-back" href="/app">
          Back to Hearth
        </a>
      </header>
      {sections.length === 0 ? (
        <p className="muted pad">Your staff roles give no permissions yet.</p>
      ) : (
        <div className="settings admin-body">
          <div className="tabs" role="tablist" aria-label="Admin sections">
            {sections.map((t) => (
              <button
                key={t}
                type="button"
                role="tab"
                id={`admin-tab-${t}`}
                aria-selected={tab === t}
                aria-controls={`admin-panel-${t}`}
                className={tab === t ? 'tab active' : 'tab'}
                onClick={() => {
                  // A plain visit lists every community; "Find in Communities" searches an id.
                  if (t === 'communities' && tab !== t) setCommunityQuery((c) => ({ q: '', n: c.n + 1 }));
                  setTab(t);
                }}
              >
                {label(t)}
              </button>
            ))}
          </div>
          {tab && (
            <section className="tab-panel" role="tabpanel" id={`admin-panel-${tab}`} aria-labelledby={`admin-tab-${tab}`}>
              {tab === 'overview' && <Stats />}
              {tab === 'users' && <Users me={me} onFindCommunity={findCommunity} />}
              {tab === 'communities' && <Communities key={communityQuery.n} me={me} initialQuery={communityQuery.q} />}
              {tab === 'reports' && <ReportsQueue scope="instance" canHandle={staffCan(me, 'reports:handle')} />}
              {tab === 'staff' && <Staff me={me} />}
              {tab === 'audit' && <AuditLogView communityId={null} load={adminApi.auditLog} actions={ADMIN_AUDIT_ACTIONS} />}
            </section>
          )}
        </div>
      )}
      <Notices />
    </main>
  );
}


const STAT_LABELS: [keyof InstanceStats, string][] = [
  ['users', 'Users'],
  ['suspended_users', 'Suspended users'],
  ['communities', 'Communities'],
  ['channels', 'Channels'],
  ['messages', 'Messages'],
  ['live_sessions', 'Live sessions (30 days)'],
  ['gateway_sessions_here', 'Gateway sessions on this node'],
  ['node_id', 'Node id'],
];

function Stats() {
  const [stats, setStats] = useState<InstanceStats | null>(null);
  const r = useRun();
  const load = useCallback(() => r.run(async () => setStats(await adminApi.stats())), []); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    void load();
  }, [load]);
  return (
    <div>
      {r.error && (
        <p className="form-error" role="alert">
          {r.error}
        </p>
      )}
      {stats && (
        <dl className="stats-grid">
          {STAT_LABELS.map(([k, l]) => (
            <div key={k} className="stat">
              <dt>{l}</dt>
              <dd data-stat={k}>{Number(stats[k]).toLocaleString()}</dd>
            </div>
          ))}
        </dl>
      )}
      <button type="button" className="btn btn-secondary" onClick={() => void load()} disabled={r.busy}>
        Refresh
      </button>
    </div>
  );
}

const USER_PAGE = 50;

function Users({ me, onFindCommunity }: { me: StaffMe; onFindCommunity?: (id: string) => void }) {
  const [q, setQ] = useState('');
  const [list, setList] = useState<AdminUser[] | null>(null);
  const [more, setMore] = useState(false);
  const [selected, setSelected] = useState<AdminUser | null>(null);
  const r = useRun();
  const search = (e?: FormEvent) => {
    e?.preventDefault();
    void r.run(async () => {
      const page = await adminApi.users({ q: q.trim() || undefined, limit: USER_PAGE });
      setList(page);
      setMore(page.length >= USER_PAGE);
    });
  };
  useEffect(() => {
    search();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  const loadMore = () =>
    r.run(async () => {
      const last = list?.[list.length - 1];
      const page = await adminApi.users({ q: q.trim() || undefined, after: last?.user.id, limit: USER_PAGE });
      setList((l) => [...(l ?? []), ...page]);
      setMore(page.length >= USER_PAGE);
    });
  const replace = (u: AdminUser) => {
    setSelected(u);
    setList((l) => (l ?? []).map((x) => (x.user.id === u.user.id ? u : x)));
  };
  return (
    <div className="split admin-users">
      <div className="split-list">
        <form onSubmit={search}>
          <label htmlFor="admin-user-q">Find users</label>
          <input id="admin-user-q" type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="username prefix or exact email" />
          <button className="btn btn-secondary btn-block" type="submit" disabled={r.busy}>
            Search
          </button>
        </form>
        {r.error && (
          <p className="form-error" role="alert">
            {r.error}
          </p>
        )}
        {list && list.length === 0 && <p className="muted">Nobody found.</p>}
        <ul role="listbox" aria-label="Users" className="admin-user-list">
          {(list ?? []).map((u) => (
            <li key={u.user.id} role="option" aria-selected={selected?.user.id === u.user.id} tabIndex={0} className={selected?.user.id === u.user.id ? 'selected' : ''} onClick={() => setSelected(u)} onKeyDown={(e) => (e.key === 'Enter' || e.key === ' ') && setSelected(u)}>
              <Avatar id={u.user.id} name={u.user.display_name || u.user.username} size={24} />
              <span className="grow">@{u.user.username}</span>
              {isErased(u) ? <span className="tag tag-muted">erased</span> : u.suspended && <span className="tag tag-danger">suspended</span>}
              {(u.is_admin || u.staff_roles.length > 0) && <span className="tag">staff</span>}
            </li>
          ))}
        </ul>
        {more && (
          <button type="button" className="btn btn-secondary btn-block" onClick={() => void loadMore()} disabled={r.busy}>
            Load more
          </button>
        )}
      </div>
      <div className="split-main">{selected ? <UserDetail key={selected.user.id} user={selected} me={me} onChanged={replace} onFindCommunity={onFindCommunity} /> : <p className="muted">Pick a user.</p>}</div>
    </div>
  );
}

function UserDetail({ user: u, me, onChanged, onFindCommunity }: { user: AdminUser; me: StaffMe; onChanged: (u: AdminUser) => void; onFindCommunity?: (id: string) => void }) {
  const self = useMe();
  const [reason, setReason] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const [erasing, setErasing] = useState(false);
  const r = useRun();
  const isSelf = self?.id === u.user.id;
  const erased = isErased(u);
  const erase = eraseGate(me, u, self?.id);
  const names = useNameLookup(null, [u.suspended?.suspended_by, u.erased?.erased_by].filter((x): x is string => !!x));
  const byName = (id: string) => (names.user(id) ? `@${names.user(id)}` : `user ${id}`);
  const erasedAt = parseTime(u.erased?.erased_at);
  const refresh = async (msg: string) => {
    const fresh = await adminApi.user(u.user.id).catch(() => null);
    if (fresh) onChanged(fresh);
    setDone(msg);
  };
  const suspendedAt = parseTime(u.suspended?.suspended_at);
  const created = parseTime(u.user.created_at);
  return (
    <article className="admin-user" aria-label={`User @${u.user.username}`}>
      <h2>
        {u.user.display_name || u.user.username} <span className="muted small">@{u.user.username}</span>
      </h2>
      <dl className="facts">
        <dt>User id</dt>
        <dd>{u.user.id}</dd>
        <dt>Email</dt>
        <dd>{u.email ?? '—'}</dd>
        <dt>Joined</dt>
        <dd>{created ? formatFull(created) : '—'}</dd>
        <dt>Two-factor sign-in</dt>
        <dd>{u.mfa_enabled ? 'on' : 'off'}</dd>
        <dt>Staff</dt>
        <dd>{u.is_admin ? 'administrator' : u.staff_roles.join(', ') || 'no'}</dd>
        <dt>Status</dt>
        <dd>
          {erased ? (
            <>
              <strong className="tag tag-muted erased-badge">Erased</strong>
              {erasedAt && <> on {formatFull(erasedAt)}</>}
              {u.erased?.erased_by && <> by {byName(u.erased.erased_by)}</>}
              {u.erased?.messages && <> · {ERASED_MESSAGES_LABEL[u.erased.messages as ErasedMessages] ?? `messages: ${u.erased.messages}`}</>}
            </>
          ) : u.suspended ? (
            <>
              <strong className="danger-text">Suspended</strong>
              {suspendedAt && <> since {formatFull(suspendedAt)}</>}
              {u.suspended.suspended_by && <> by {byName(u.suspended.suspended_by)}</>}
              {u.suspended.reason && <> · reason: {u.suspended.reason}</>}
            </>
          ) : (
            'Active'
          )}
        </dd>
      </dl>
      {erased && <p className="hint">This account is erased for good: there is nothing more to do with it.</p>}
      {isSelf && <p className="hint">This is your own account: staff can't act on themselves.</p>}
      {r.error && (
        <p className="form-error" role="alert">
          {r.error}
        </p>
      )}
      {done && <p role="status">{done}</p>}
      {!erased && !u.suspended && staffCan(me, 'users:suspend') && (
        <form
          className="suspend-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (!window.confirm(`Suspend @${u.user.username}? They are signed out everywhere at once and can't sign in until unsuspended.`)) return;
            setDone(null);
            void r.run(async () => {
              await adminApi.suspend(u.user.id, reason);
              setReason('');
              await refresh(`@${u.user.username} is suspended and signed out everywhere.`);
            });
          }}
        >
          <label htmlFor="suspend-reason">Suspension reason</label>
          <input id="suspend-reason" value={reason} onChange={(e) => setReason(e.target.value)} maxLength={512} placeholder="Shown to staff and kept in the audit log" disabled={isSelf} />
          <button className="btn btn-danger" type="submit" disabled={r.busy || isSelf}>
            Suspend
          </button>
        </form>
      )}
      {!erased && (
        <div className="button-row">
          {u.suspended && staffCan(me, 'users:unsuspend') && (
            <button
              type="button"
              className="btn btn-primary"
              disabled={r.busy || isSelf}
              onClick={() => {
                setDone(null);
                void r.run(async () => {
                  await adminApi.unsuspend(u.user.id);
                  await refresh(`@${u.user.username} can sign in again.`);
                });
              }}
            >
              Lift suspension
            </button>
          )}
          {staffCan(me, 'users:reset_mfa') && (
            <button
              type="button"
              className="btn btn-secondary"
              disabled={r.busy || isSelf || !u.mfa_enabled}
              title={u.mfa_enabled ? undefined : 'Two-factor sign-in is off'}
              onClick={() => {
                if (!window.confirm(`Turn off two-factor sign-in for @${u.user.username}? Only do this after checking who is asking.`)) return;
                setDone(null);
                void r.run(async () => {
                  await adminApi.resetMfa(u.user.id);
                  await refresh(`Two-factor sign-in is off for @${u.user.username}.`);
                });
              }}
            >
              Reset two-factor
            </button>
          )}
          {erase.show && (
            <button type="button" className="btn btn-danger" disabled={r.busy || !!erase.blocked} title={erase.blocked ?? undefined} onClick={() => setErasing(true)}>
              Erase account…
            </button>
          )}
        </div>
      )}
      {erase.show && erase.blocked && <p className="hint">{erase.blocked}</p>}
      {erasing && (
        <EraseDialog
          user={u}
          me={me}
          onClose={() => setErasing(false)}
          onFindCommunity={
            onFindCommunity &&
            ((id) => {
              setErasing(false);
              onFindCommunity(id);
            })
          }
          onErased={(msg) => {
            setErasing(false);
            void refresh(msg);
          }}
        />
      )}
    </article>
  );
}

function Staff({ me }: { me: StaffMe }) {
  const [roles, setRoles] = useState<StaffRole[] | null>(null);
  const r = useRun();
  const canEdit = staffCan(me, 'policy:edit');
  const load = useCallback(async () => setRoles(await adminApi.staff()), []);
  useEffect(() => {
    void r.run(load);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [load]);
  const ids = useMemo(() => (roles ?? []).flatMap((x) => x.members), [roles]);
  const names = useNameLookup(null, ids);
  const [newRole, setNewRole] = useState('');
  const [newPerm, setNewPerm] = useState('users:read');
  const act = (fn: () => Promise<void>) => void r.run(async () => {
    await fn();
    await load();
  });
  return (
    <div className="staff">
      {r.error && (
        <p className="form-error" role="alert">
          {r.error}
        </p>
      )}
      {!canEdit && <p className="hint">You can read the staff policy; editing it needs policy:edit.</p>}
      {roles === null && !r.error && <p className="muted">Loading…</p>}
      {(roles ?? []).map((role) => (
        <StaffRoleCard key={role.role} role={role} canEdit={canEdit} busy={r.busy} names={names} act={act} />
      ))}
      {canEdit && (
        <form
          className="inline-form new-role"
          onSubmit={(e) => {
            e.preventDefault();
            const name = newRole.trim().toLowerCase();
            const perm = parsePermission(newPerm);
            if (!name || !perm) return r.setError('Give the role a name and a first permission (object:action).');
            act(async () => {
              await adminApi.allow(name, perm);
              setNewRole('');
            });
          }}
        >
          <div>
            <label htmlFor="new-role-name">New role</label>
            <input id="new-role-name" value={newRole} onChange={(e) => setNewRole(e.target.value)} pattern="[a-zA-Z0-9_\-]+" placeholder="e.g. moderators" />
          </div>
          <div>
            <label htmlFor="new-role-perm">First permission</label>
            <select id="new-role-perm" value={newPerm} onChange={(e) => setNewPerm(e.target.value)}>
              {STAFF_PERMISSIONS.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </div>
          <button className="btn btn-primary" type="submit" disabled={r.busy || !newRole.trim()}>
            Create role
          </button>
        </form>
      )}
    </div>
  );
}

function StaffRoleCard({ role, canEdit, busy, names, act }: { role: StaffRole; canEdit: boolean; busy: boolean; names: ReturnType<typeof useNameLookup>; act: (fn: () => Promise<void>) => void }) {
  const [who, setWho] = useState('');
  const [findError, setFindError] = useState<string | null>(null);
  const builtIn = role.role === 'admin';
  const perms = [...new Set([...STAFF_PERMISSIONS, ...role.permissions])];
  const granted = (p: string) => role.permissions.includes(p);
  return (
    <section className="staff-role" aria-label={`Staff role ${role.role}`}>
      <h3>
        {role.role} {builtIn && <span className="muted small">(built in: every permission)</span>}
      </h3>
      <fieldset className="perm-grid" disabled={!canEdit || builtIn || busy}>
        <legend>Permissions</legend>
        {perms.map((p) => (
          <label key={p} className="switch">
            <input type="checkbox" checked={builtIn || granted(p) || role.permissions.includes('*:*')} onChange={() => act(() => (granted(p) ? adminApi.deny(role.role, p) : adminApi.allow(role.role, p)))} />
            <code>{p}</code>
          </label>
        ))}
      </fieldset>
      <h4>Members</h4>
      {role.members.length === 0 && <p className="muted small">Nobody has this role.</p>}
      <ul role="list" className="staff-members">
        {role.members.map((id) => (
          <li key={id}>
            <span>{names.user(id) ? `@${names.user(id)}` : `user ${id}`}</span>
            {canEdit && (
              <button type="button" className="btn btn-secondary btn-small" disabled={busy} onClick={() => window.confirm(`Take ${role.role} from ${names.user(id) ?? id}?`) && act(() => adminApi.revoke(role.role, id))}>
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      {canEdit && (
        <form
          className="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            setFindError(null);
            const name = who.trim().replace(/^@/, '');
            if (!name) return;
            act(async () => {
              // Exact username (or email) → id through the user search.
              const found = (await adminApi.users({ q: name, limit: 10 })).find((u) => u.user.username.toLowerCase() === name.toLowerCase() || u.email?.toLowerCase() === name.toLowerCase());
              if (!found) {
                setFindError(`No user named ${name}.`);
                return;
              }
              await adminApi.grant(role.role, found.user.id);
              setWho('');
            });
          }}
        >
          <div>
            <label htmlFor={`grant-${role.role}`}>Add a member to {role.role}</label>
            <input id={`grant-${role.role}`} value={who} onChange={(e) => setWho(e.target.value)} placeholder="username or email" />
          </div>
          <button className="btn btn-secondary" type="submit" disabled={busy || !who.trim()}>
            Add
          </button>
          {findError && (
            <p className="form-error" role="alert">
              {findError}
            </p>
          )}
        </form>
      )}
    </section>
  );
}
