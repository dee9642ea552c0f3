'use client';
// The far-left rail: DMs home, one icon per community (unread pill, mention badge), and "+".
import { useState } from 'react';
import type { Dialog } from './AppShell';
import { channelIdsOf, useCommunities } from '@/lib/hooks';
import { setQuery } from '@/lib/nav';
import { communitiesStore } from '@/stores/communities';
import { anyUnread, readStatesStore, sumMentions } from '@/stores/readStates';
import { communityMuted, notificationSettingsStore } from '@/stores/notificationSettings';
import { useStore } from '@/stores/store';
import { colorFor } from './ui';
import { isStaff, staffStore } from '@/lib/admin';
import { Icon } from './icons';
import { InboxButton } from './Inbox';

export function CommunityRail({ selected, onDialog }: { selected: string; onDialog: (d: Dialog) => void }) {
  const communities = useCommunities();
  const dmIds = useStore(communitiesStore, (s) => s.dms);
  const dmMentions = useStore(readStatesStore, (s) => sumMentions(s, dmIds));
  const staff = useStore(staffStore, (s) => isStaff(s.me));
  return (
    <nav className="rail" aria-label="Communities">
      <ul role="list">
        <li>
          <RailButton active={selected === '@me'} label="Direct messages" mentions={dmMentions} unread={false} onClick={() => setQuery({ c: '@me', ch: null })}>
            <svg width="26" height="26" viewBox="0 0 24 24" aria-hidden="true">
              <path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z" />
            </svg>
          </RailButton>
        </li>
        <li>
          <InboxButton />
        </li>
        <li className="rail-sep" aria-hidden="true" />
        {communities.map((c) => (
          <li key={c.id}>
            <CommunityIcon id={c.id} name={c.name} active={selected === c.id} />
          </li>
        ))}
        <li>
          <button type="button" className="rail-btn rail-add" aria-label="Create or join a community" title="Create or join a community" onClick={() => onDialog({ kind: 'create-community' })}>
            +
          </button>
        </li>
        {staff && (
          <li>
            <a className="rail-btn rail-admin" href="/admin" aria-label="Instance admin" title="Instance admin">
              <Icon name="shield" size={22} />
            </a>
          </li>
        )}
      </ul>
    </nav>
  );
}

function CommunityIcon({ id, name, active }: { id: string; name: string; active: boolean }) {
  const ids = useStore(communitiesStore, (s) => channelIdsOf(s, id).join(','));
  const list = ids ? ids.split(',') : [];
  const mentions = useStore(readStatesStore, (s) => sumMentions(s, list));
  const unread = useStore(readStatesStore, (s) => anyUnread(s, list));
  const muted = useStore(notificationSettingsStore, (s) => communityMuted(s, id));
  const icon = useStore(communitiesStore, (s) => s.communities[id]?.icon_url ?? null);
  const [broken, setBroken] = useState<string | null>(null);
  const initials = name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 3)
    .map((w) => w[0]!.toUpperCase())
    .join('');
  return (
    <RailButton active={active} label={name} mentions={mentions} unread={unread} muted={muted} onClick={() => setQuery({ c: id, ch: null })} color={colorFor(id)}>
      {icon && broken !== icon ? (
        <img className="rail-icon" src={icon} alt="" width={48} height={48} onError={() => setBroken(icon)} />
      ) : (
        <span className="rail-initials" data-initials={initials || '?'} aria-hidden="true" />
      )}
    </RailButton>
  );
}

function RailButton(props: { active: boolean; label: string; mentions: number; unread: boolean; muted?: boolean; onClick: () => void; color?: string; children: React.ReactNode }) {
  const { active, label, mentions, unread, muted, onClick, color, children } = props;
  const desc = [label, mentions ? `${mentions} mention${mentions === 1 ? '' : 's'}` : unread ? 'unread messages' : '', muted ? 'muted' : ''].filter(Boolean).join(', ');
  return (
    <div className={`rail-item${active ? ' active' : ''}${unread ? ' unread' : ''}${muted ? ' silenced' : ''}`}>
      <span className="rail-pill" aria-hidden="true" />
      <button
        type="button"
        className="rail-btn"
        aria-label={desc}
        aria-current={active ? 'page' : undefined}
        title={label}
        onClick={onClick}
        style={active && color ? { background: color } : undefined}
      >
        {children}
      </button>
      {muted && (
        <span className="rail-muted" aria-hidden="true" title="Notifications muted">
          <Icon name="bellOff" size={14} />
        </span>
      )}
      {mentions > 0 && (
        <span className="badge rail-badge" aria-hidden="true">
          {mentions > 99 ? '99+' : mentions}
        </span>
      )}
    </div>
  );
}
