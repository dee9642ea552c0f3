'use client';
// The admin area's irreversible actions: the Communities tab (search, paging, take down)
// and the account erasure dialog. Both sit behind a confirmation that says there is no
// undo and is enabled only once the exact name is typed (lib/admin.ts confirmMatches).
import { useRun } from '@/lib/hooks';
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import {
  adminApi,
  canTakeDown,
  confirmMatches,
  erasureSummary,
  mergeCommunities,
  ownedCommunities,
  ownsCommunitiesMessage,
  staffCan,
  takedownSummary,
  type AdminCommunity,
  type AdminUser,
  type ErasedMessages,
  type StaffMe,
} from '@/lib/admin';
import { ApiError } from '@/lib/errors';
import { parseTime } from '@/lib/moderation';
import { communitiesStore } from '@/stores/communities';
import { useStore } from '@/stores/store';
import { useNameLookup } from './AuditLog';
import { formatFull, Modal } from './ui';


const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const PAGE = 50;

// ---- Communities tab ---------------------------------------------------------------------

export function Communities({ me, initialQuery = '' }: { me: StaffMe; initialQuery?: string }) {
  const [q, setQ] = useState(initialQuery);
  const [query, setQuery] = useState(initialQuery);
  const [list, setList] = useState<AdminCommunity[] | null>(null);
  const [more, setMore] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [target, setTarget] = useState<AdminCommunity | null>(null);
  const r = useRun();
  const mayTakeDown = canTakeDown(me);

  const search = (text: string) =>
    r.run(async () => {
      const page = await adminApi.communities({ q: text.trim() || undefined, limit: PAGE });
      setQuery(text);
      setList(page);
      setMore(page.length >= PAGE);
    });
  useEffect(() => {
    void search(initialQuery);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  const loadMore = () =>
    r.run(async () => {
      const last = list?.[list.length - 1];
      const page = await adminApi.communities({ q: query.trim() || undefined, after: last?.community.id, limit: PAGE });
      setList((l) => mergeCommunities(l ?? [], page));
      setMore(page.length >= PAGE);
    });

  const ownerIds = useMemo(() => (list ?? []).map((c) => c.community.owner_id), [list]);
  useNameLookup(null, ownerIds);
  const users = useStore(communitiesStore, (s) => s.users);
  const owner = (id: string) => {
    const u = users[id];
    if (!u) return `user ${id}`;
    return u.display_name && u.display_name !== u.username ? `@${u.username} (${u.display_name})` : `@${u.username}`;
  };
  const drop = (id: string) => setList((l) => (l ?? []).filter((c) => c.community.id !== id));

  return (
    <div className="admin-communities">
      <form
        className="inline-form"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          setNotice(null);
          void search(q);
        }}
      >
        <div className="grow">
          <label htmlFor="admin-community-q">Find communities</label>
          <input id="admin-community-q" type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="name prefix or exact id" maxLength={100} />
        </div>
        <button className="btn btn-secondary" type="submit" disabled={r.busy}>
          Search
        </button>
      </form>
      {notice && (
        <p role="status" className="admin-notice">
          {notice}
        </p>
      )}
      {r.error && (
        <p className="form-error" role="alert">
          {r.error}
        </p>
      )}
      {list && list.length === 0 && <p className="muted">No community found.</p>}
      {list && list.length > 0 && (
        <table className="admin-table" aria-label="Communities">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Id</th>
              <th scope="col">Owner</th>
              <th scope="col">Members</th>
              <th scope="col">Channels</th>
              <th scope="col">Created</th>
              {mayTakeDown && (
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {list.map((c) => {
              const created = parseTime(c.community.created_at);
              return (
                <tr key={c.community.id} data-community-id={c.community.id}>
                  <th scope="row">{c.community.name}</th>
                  <td className="mono">{c.community.id}</td>
                  <td data-owner-id={c.community.owner_id}>{owner(c.community.owner_id)}</td>
                  <td data-count="members">{c.members.toLocaleString()}</td>
                  <td data-count="channels">{c.channels.toLocaleString()}</td>
                  <td>{created ? <time dateTime={created.toISOString()} title={formatFull(created)}>{DATE.format(created)}</time> : '—'}</td>
                  {mayTakeDown && (
                    <td>
                      <button type="button" className="btn btn-danger btn-small" aria-label={`Take down ${c.community.name}…`} onClick={() => setTarget(c)} disabled={r.busy}>
                        Take down…
                      </button>
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {more && (
        <button type="button" className="btn btn-secondary" onClick={() => void loadMore()} disabled={r.busy}>
          Load more
        </button>
      )}
      {target && (
        <TakedownDialog
          target={target}
          ownerLabel={owner(target.community.owner_id)}
          onClose={() => setTarget(null)}
          onDone={(msg, gone) => {
            if (gone) drop(target.community.id);
            setNotice(msg);
            setTarget(null);
          }}
        />
      )}
    </div>
  );
}

function TakedownDialog({ target, ownerLabel, onClose, onDone }: { target: AdminCommunity; ownerLabel: string; onClose: () => void; onDone: (notice: string, gone: boolean) => void }) {
  const c = target.community;
  const [reason, setReason] = useState('');
  const [typed, setTyped] = useState('');
  const r = useRun();
  const ok = confirmMatches(typed, c.name);
  return (
    <Modal title={`Take down “${c.name}”`} onClose={onClose}>
      <form
        className="danger-confirm"
        onSubmit={(e) => {
          e.preventDefault();
          if (!ok) return;
          void r.run(async () => {
            try {
              await adminApi.takedown(c.id, reason);
              onDone(takedownSummary(c), true);
            } catch (err) {
              // Someone else took it down (or its owner deleted it) meanwhile.
              if (err instanceof ApiError && err.status === 404) return onDone(`“${c.name}” (${c.id}) no longer exists: it was already taken down or deleted.`, true);
              throw err;
            }
          });
        }}
      >
        <p className="danger-text">
          <strong>This cannot be undone.</strong> The community is deleted with everything in it — its {target.channels.toLocaleString()} channel{target.channels === 1 ? '' : 's'}, every message, role and
          invite — whoever owns it, and its {target.members.toLocaleString()} member{target.members === 1 ? '' : 's'} lose it at once.
        </p>
        <p className="muted small">
          Owner: {ownerLabel} · id {c.id}. The instance audit log keeps its name, owner and member count; reports keep their evidence.
        </p>
        <label htmlFor="takedown-reason">Reason (kept in the audit log)</label>
        <input id="takedown-reason" value={reason} onChange={(e) => setReason(e.target.value)} maxLength={512} placeholder="e.g. spam operation" />
        <label htmlFor="takedown-confirm">
          Type the community name <strong className="mono">{c.name}</strong> to confirm
        </label>
        <input id="takedown-confirm" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false} aria-describedby="takedown-confirm-hint" />
        <p id="takedown-confirm-hint" className="hint">
          Exactly as shown, same capitals.
        </p>
        {r.error && (
          <p className="form-error" role="alert">
            {r.error}
          </p>
        )}
        <div className="button-row">
          <button type="button" className="btn btn-secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-danger" disabled={!ok || r.busy}>
            Take down community
          </button>
        </div>
      </form>
    </Modal>
  );
}

// ---- account erasure -----------------------------------------------------------------------

interface Owned {
  ids: string[];
  names: Record<string, string>;
}

export function EraseDialog({
  user: u,
  me,
  onClose,
  onErased,
  onFindCommunity,
}: {
  user: AdminUser;
  me: StaffMe;
  onClose: () => void;
  onErased: (notice: string) => void;
  /** Opens the Communities tab on that id (absent without communities:read). */
  onFindCommunity?: (id: string) => void;
}) {
  const name = u.user.username;
  const [messages, setMessages] = useState<ErasedMessages>('keep');
  const [reason, setReason] = useState('');
  const [typed, setTyped] = useState('');
  const [owned, setOwned] = useState<Owned | null>(null);
  const r = useRun();
  const ok = confirmMatches(typed, name);
  const known = useStore(communitiesStore, (s) => s.communities);

  const explainOwned = async (ids: string[]) => {
    const names: Record<string, string> = {};
    for (const id of ids) if (known[id]) names[id] = known[id].name;
    setOwned({ ids, names: { ...names } });
    if (!staffCan(me, 'communities:read')) return;
    await Promise.all(
      ids
        .filter((id) => !names[id])
        .map(async (id) => {
          const found = await adminApi.communities({ q: id, limit: 1 }).catch(() => []);
          const c = found.find((x) => x.community.id === id);
          if (c) names[id] = c.community.name;
        }),
    );
    setOwned({ ids, names: { ...names } });
  };

  return (
    <Modal title={`Erase @${name} for good`} onClose={onClose}>
      <form
        className="danger-confirm"
        onSubmit={(e) => {
          e.preventDefault();
          if (!ok) return;
          setOwned(null);
          void r.run(async () => {
            try {
              const res = await adminApi.erase(u.user.id, { messages, reason });
              onErased(erasureSummary(name, res, messages));
            } catch (err) {
              const ids = ownedCommunities(err);
              if (ids) return void (await explainOwned(ids));
              if (err instanceof ApiError && err.status === 404) return onErased(`@${name} was already erased (or no longer exists).`);
              throw err;
            }
          });
        }}
      >
        <p className="danger-text">
          <strong>This cannot be undone.</strong> @{name} is signed out everywhere, leaves every community, loses their staff roles, and their email, display name, avatar,
          password and two-factor sign-in are deleted. Only the id stays, as <span className="mono">deleted-{u.user.id}</span>; signing in as them fails and the username is
          free again.
        </p>
        <fieldset>
          <legend>Their messages</legend>
          <div className="radio-col">
            <label>
              <input type="radio" name="erase-messages" value="keep" checked={messages === 'keep'} onChange={() => setMessages('keep')} />
              Keep them, shown as from a deleted user
            </label>
            <label>
              <input type="radio" name="erase-messages" value="remove" checked={messages === 'remove'} onChange={() => setMessages('remove')} />
              Remove them everywhere (communities and direct messages)
            </label>
          </div>
        </fieldset>
        <label htmlFor="erase-reason">Reason (kept in the audit log)</label>
        <input id="erase-reason" value={reason} onChange={(e) => setReason(e.target.value)} maxLength={512} placeholder="e.g. asked to be forgotten" />
        <label htmlFor="erase-confirm">
          Type the username <strong className="mono">{name}</strong> to confirm
        </label>
        <input id="erase-confirm" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false} aria-describedby="erase-confirm-hint" />
        <p id="erase-confirm-hint" className="hint">
          Exactly as shown, without the @.
        </p>
        {owned && (
          <div className="form-error owned-communities" role="alert">
            <p>{ownsCommunitiesMessage(name, owned.ids.map((id) => ({ id, name: owned.names[id] ?? null })))}</p>
            <ul aria-label="Communities they own">
              {owned.ids.map((id) => (
                <li key={id}>
                  <span>{owned.names[id] ? `“${owned.names[id]}”` : `community ${id}`}</span> <span className="mono muted small">{id}</span>{' '}
                  {onFindCommunity && (
                    <button type="button" className="btn btn-secondary btn-small" onClick={() => onFindCommunity(id)}>
                      Find in Communities
                    </button>
                  )}
                </li>
              ))}
            </ul>
          </div>
        )}
        {r.error && (
          <p className="form-error" role="alert">
            {r.error}
          </p>
        )}
        <div className="button-row">
          <button type="button" className="btn btn-secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-danger" disabled={!ok || r.busy}>
            Erase account
          </button>
        </div>
      </form>
    </Modal>
  );
}
