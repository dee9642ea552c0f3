'use client';
// The audit log, for a community (settings tab) or the instance (admin area): newest
// first, filtered by actor, action and target, with "Load older" paging. Each entry says
// who did what to whom, why, and what changed (before → after).
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { UserSummary } from '@/api/types';
import { requestJson } from '@/lib/api';
import { describeError } from '@/lib/errors';
import { describeEntry, type AuditEntry, type AuditFilter, type NameLookup } from '@/lib/moderation';
import { communitiesStore, displayName, rememberUser } from '@/stores/communities';
import { useStore } from '@/stores/store';
import { formatFull, formatStamp } from './ui';

const PAGE = 50;
const OTHER = '__other';

/** Names for ids in a community (members, roles, channels), fetching unknown users once. */
export function useNameLookup(communityId: string | null, userIds: readonly string[]): NameLookup {
  const users = useStore(communitiesStore, (s) => s.users);
  const members = useStore(communitiesStore, (s) => (communityId ? s.members[communityId] : undefined));
  const roles = useStore(communitiesStore, (s) => (communityId ? s.roles[communityId] : undefined));
  const channels = useStore(communitiesStore, (s) => s.channels);
  const asked = useRef(new Set<string>());
  const key = [...new Set(userIds)].join(',');
  useEffect(() => {
    for (const id of key ? key.split(',') : []) {
      if (!id || communitiesStore.get().users[id] || asked.current.has(id)) continue;
      asked.current.add(id);
      requestJson<UserSummary>('GET', `/api/v1/users/${id}`)
        .then((u) => u && communitiesStore.set((s) => rememberUser(s, u)))
        .catch(() => undefined);
    }
  }, [key]);
  return useMemo(
    () => ({
      user: (id: string) => (users[id] ? displayName(users[id], members?.[id]) : null),
      role: (id: string) => roles?.find((r) => r.id === id)?.name ?? null,
      channel: (id: string) => channels[id]?.name ?? null,
    }),
    [users, members, roles, channels],
  );
}

export interface Choice {
  id: string;
  label: string;
}

interface Props {
  load: (filter: AuditFilter) => Promise<AuditEntry[]>;
  /** Action names → words, for the action filter. */
  actions: Readonly<Record<string, string>>;
  communityId: string | null;
  /** Pickable actors (members); an id can always be typed. */
  actors?: readonly Choice[];
  /** Pickable targets, grouped (Members, Channels, Roles). */
  targets?: readonly { group: string; choices: readonly Choice[] }[];
}

export function AuditLogView({ load, actions, communityId, actors = [], targets = [] }: Props) {
  const [actor, setActor] = useState('');
  const [actorId, setActorId] = useState('');
  const [action, setAction] = useState('');
  const [target, setTarget] = useState('');
  const [targetId, setTargetId] = useState('');
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [more, setMore] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const filter = useMemo<AuditFilter>(
    () => ({
      actor_id: (actor === OTHER ? actorId : actor).trim() || undefined,
      action: action || undefined,
      target_id: (target === OTHER ? targetId : target).trim() || undefined,
    }),
    [actor, actorId, action, target, targetId],
  );
  const loadRef = useRef(load);
  loadRef.current = load;

  const fetchFirst = useCallback(async (f: AuditFilter) => {
    setBusy(true);
    setError(null);
    try {
      const page = await loadRef.current({ ...f, limit: PAGE });
      setEntries(page);
      setMore(page.length >= PAGE);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }, []);

  // Load on open and whenever a picker changes (typed ids apply with the button).
  const pickKey = `${actor}|${action}|${target}`;
  useEffect(() => {
    if (actor === OTHER || target === OTHER) return;
    void fetchFirst(filter);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [pickKey]);

  const older = async () => {
    const last = entries?.[entries.length - 1];
    if (!last) return;
    setBusy(true);
    setError(null);
    try {
      const page = await load({ ...filter, before: last.id, limit: PAGE });
      setEntries((l) => [...(l ?? []), ...page.filter((e) => !l?.some((x) => x.id === e.id))]);
      setMore(page.length >= PAGE);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  const ids = useMemo(() => {
    const out: string[] = [];
    for (const e of entries ?? []) {
      if (e.actor_id) out.push(e.actor_id);
      if (e.target_kind === 'user' && e.target_id) out.push(e.target_id);
      for (const c of e.changes) if ((c.key === 'author_id' || c.key === 'owner_id') && typeof (c.before ?? c.after) === 'string') out.push(String(c.before ?? c.after));
    }
    return out;
  }, [entries]);
  const names = useNameLookup(communityId, ids);

  return (
    <div className="audit">
      <form
        className="inline-form audit-filters"
        onSubmit={(e) => {
          e.preventDefault();
          void fetchFirst(filter);
        }}
      >
        <div>
          <label htmlFor="audit-actor">Who</label>
          <select id="audit-actor" value={actor} onChange={(e) => setActor(e.target.value)}>
            <option value="">Anyone</option>
            {actors.map((a) => (
              <option key={a.id} value={a.id}>
                {a.label}
              </option>
            ))}
            <option value={OTHER}>A user id…</option>
          </select>
          {actor === OTHER && <input aria-label="Actor user id" value={actorId} onChange={(e) => setActorId(e.target.value)} inputMode="numeric" placeholder="user id" />}
        </div>
        <div>
          <label htmlFor="audit-action">Action</label>
          <select id="audit-action" value={action} onChange={(e) => setAction(e.target.value)}>
            <option value="">Any action</option>
            {Object.entries(actions).map(([k, v]) => (
              <option key={k} value={k}>
                {k.replace(/_/g, ' ')} ({v})
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="audit-target">Target</label>
          <select id="audit-target" value={target} onChange={(e) => setTarget(e.target.value)}>
            <option value="">Anything</option>
            {targets.map((g) => (
              <optgroup key={g.group} label={g.group}>
                {g.choices.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.label}
                  </option>
                ))}
              </optgroup>
            ))}
            <option value={OTHER}>An id…</option>
          </select>
          {target === OTHER && <input aria-label="Target id" value={targetId} onChange={(e) => setTargetId(e.target.value)} inputMode="numeric" placeholder="user, channel, role or message id" />}
        </div>
        <button className="btn btn-secondary" type="submit" disabled={busy}>
          {actor === OTHER || target === OTHER ? 'Apply' : 'Refresh'}
        </button>
      </form>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {entries === null && !error && <p className="muted">Loading…</p>}
      {entries && entries.length === 0 && <p className="muted">No entries{filter.actor_id || filter.action || filter.target_id ? ' match these filters' : ' yet'}.</p>}
      <ol className="audit-list" aria-label="Audit log entries">
        {(entries ?? []).map((e) => (
          <AuditItem key={e.id} entry={e} names={names} />
        ))}
      </ol>
      {more && (
        <button type="button" className="btn btn-secondary" onClick={() => void older()} disabled={busy}>
          Load older
        </button>
      )}
    </div>
  );
}

function AuditItem({ entry, names }: { entry: AuditEntry; names: NameLookup }) {
  const v = describeEntry(entry, names);
  return (
    <li className="audit-entry" data-action={entry.action}>
      <div className="audit-line">
        <strong>{v.actor}</strong> <span>{v.action}</span> {v.target && <strong>{v.target}</strong>}
        {v.when && (
          <time className="muted small" dateTime={v.when.toISOString()} title={formatFull(v.when)}>
            {formatStamp(v.when)}
          </time>
        )}
      </div>
      {v.reason && <div className="audit-reason">Reason: {v.reason}</div>}
      {v.changes.length > 0 && (
        <table className="audit-changes">
          <caption className="sr-only">Changes</caption>
          <tbody>
            {v.changes.map((c) => (
              <tr key={c.key}>
                <th scope="row">{c.key}</th>
                <td className="before">{c.before}</td>
                <td aria-hidden="true">→</td>
                <td className="after">{c.after}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </li>
  );
}
