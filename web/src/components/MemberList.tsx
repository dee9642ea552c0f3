'use client';
// Right column: members grouped by online/offline (or DM recipients), with presence
// dots. Clicking a member opens a small card with "Message" (DM).
import { useMemo, useState } from 'react';
import type { Member, UserSummary } from '@/api/types';
import { api, unwrap } from '@/lib/api';
import { getClient } from '@/lib/client';
import { describeError } from '@/lib/errors';
import { useMe, useMembers } from '@/lib/hooks';
import { setQuery } from '@/lib/nav';
import { communitiesStore, displayName } from '@/stores/communities';
import { notify } from '@/stores/notices';
import { presenceStore } from '@/stores/presence';
import { useStore } from '@/stores/store';
import { Avatar, colorFor } from './ui';
import { openReport } from './ReportDialog';

export function MemberList({ communityId, channelId }: { communityId: string | null; channelId: string }) {
  const members = useMembers(communityId);
  const channel = useStore(communitiesStore, (s) => s.channels[channelId]);
  const roles = useStore(communitiesStore, (s) => (communityId ? s.roles[communityId] : undefined));
  const presence = useStore(presenceStore, (s) => s);
  const users = useStore(communitiesStore, (s) => s.users);
  const people = useMemo(() => {
    if (communityId) return members.map((m) => ({ user: m.user as UserSummary, member: m as Member | undefined }));
    return (channel?.recipients ?? []).map((u) => ({ user: users[u.id] ?? u, member: undefined }));
  }, [communityId, members, channel, users]);
  const online = people.filter((p) => (presence[p.user.id] ?? 'offline') !== 'offline' && presence[p.user.id] !== 'invisible');
  const offline = people.filter((p) => !online.includes(p));
  const sortByName = (a: { user: UserSummary; member?: Member }, b: { user: UserSummary; member?: Member }) =>
    displayName(a.user, a.member).localeCompare(displayName(b.user, b.member));
  const roleColor = (m?: Member) => {
    const r = roles?.filter((x) => m?.roles.includes(x.id) && x.color).sort((a, b) => b.position - a.position)[0];
    return r?.color ? `#${r.color.toString(16).padStart(6, '0')}` : undefined;
  };
  return (
    <aside className="members" aria-label="Members">
      {[
        ['Online', online],
        ['Offline', offline],
      ].map(([title, list]) =>
        (list as typeof people).length ? (
          <section key={title as string} aria-label={`${title} members`}>
            <h2 className="category">
              {title as string} — {(list as typeof people).length}
            </h2>
            <ul role="list">
              {(list as typeof people).sort(sortByName).map((p) => (
                <MemberRow key={p.user.id} user={p.user} member={p.member} color={roleColor(p.member)} dim={title === 'Offline'} communityId={communityId} />
              ))}
            </ul>
          </section>
        ) : null,
      )}
    </aside>
  );
}

function MemberRow({ user, member, color, dim, communityId }: { user: UserSummary; member?: Member; color?: string; dim: boolean; communityId: string | null }) {
  const me = useMe();
  const [open, setOpen] = useState(false);
  const name = displayName(user, member);
  const timedOut = member?.timed_out_until && Date.parse(member.timed_out_until) > Date.now();
  return (
    <li className={dim ? 'member dim' : 'member'}>
      <button type="button" className="member-btn" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
        <Avatar id={user.id} name={name} size={32} presence />
        <span className="member-name" style={color ? { color } : undefined}>
          {name}
        </span>
        {timedOut && (
          <span className="tag" title="Timed out">
            ⏳
          </span>
        )}
      </button>
      {open && (
        <div className="member-card" role="group" aria-label={`${name} profile`}>
          <div className="member-card-banner" style={{ background: colorFor(user.id) }} />
          <strong>{name}</strong>
          <span className="muted small">@{user.username}</span>
          {user.id !== me?.id && (
            <button
              type="button"
              className="btn btn-primary"
              onClick={async () => {
                try {
                  const dm = await getClient().openDm([user.id]);
                  setOpen(false);
                  setQuery({ c: '@me', ch: dm.id });
                } catch (e) {
                  notify(describeError(e));
                }
              }}
            >
              Message
            </button>
          )}
          {user.id !== me?.id && (
            <button
              type="button"
              className="btn btn-secondary"
              onClick={async () => {
                if (!window.confirm(`Block ${name}? They will no longer be able to send you direct messages.`)) return;
                try {
                  await unwrap(api.PUT('/api/v1/users/@me/blocks/{user_id}', { params: { path: { user_id: user.id } } }));
                  setOpen(false);
                  notify(`${name} is blocked.`, 'info');
                } catch (e) {
                  notify(describeError(e));
                }
              }}
            >
              Block
            </button>
          )}
          {user.id !== me?.id && (
            <button
              type="button"
              className="btn btn-secondary"
              onClick={() => {
                setOpen(false);
                openReport({ kind: 'user', userId: user.id, communityId, name });
              }}
            >
              Report
            </button>
          )}
        </div>
      )}
    </li>
  );
}
