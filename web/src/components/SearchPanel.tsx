'use client';
// Search results beside the messages (where the member list goes): the count, the order
// (most relevant, newest, oldest), results under their channel's name, "Load more". A
// result opens its channel at that message (lib/search.ts openResult); the panel stays
// so the next result is one click away.
import { useEffect, useMemo, useRef, useState } from 'react';
import { describeError } from '@/lib/errors';
import { useMe } from '@/lib/hooks';
import { closeSearch, loadMoreResults, openResult, setSearchSort } from '@/lib/search';
import { channelLabel, communitiesStore, displayName } from '@/stores/communities';
import { notify } from '@/stores/notices';
import { groupByChannel, resultCount, searchStore, type HitGroup, type SearchHit, type SearchSort } from '@/stores/search';
import { useStore } from '@/stores/store';
import { Icon } from './icons';
import { ErrorText } from './SearchBox';
import { Avatar, formatFull, formatStamp } from './ui';

const SORTS: { value: SearchSort; label: string }[] = [
  { value: 'relevance', label: 'Most relevant' },
  { value: 'newest', label: 'Newest' },
  { value: 'oldest', label: 'Oldest' },
];

function focusSearchBox() {
  document.querySelector<HTMLInputElement>('.search-box input')?.focus();
}

export function SearchPanel() {
  const status = useStore(searchStore, (s) => s.status);
  const query = useStore(searchStore, (s) => s.query);
  const sort = useStore(searchStore, (s) => s.sort);
  const hits = useStore(searchStore, (s) => s.hits);
  const total = useStore(searchStore, (s) => s.total);
  const nextCursor = useStore(searchStore, (s) => s.nextCursor);
  const error = useStore(searchStore, (s) => s.error);
  const more = useStore(searchStore, (s) => s.loadingMore);
  const moreError = useStore(searchStore, (s) => s.moreError);
  const groups = useMemo(() => groupByChannel(hits), [hits]);
  const [openedId, setOpenedId] = useState<string | null>(null);
  const ref = useRef<HTMLElement>(null);

  // Escape in the panel closes it and goes back to the box.
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      e.preventDefault();
      closeSearch();
      focusSearchBox();
    };
    el.addEventListener('keydown', onKey);
    return () => el.removeEventListener('keydown', onKey);
  }, []);

  const open = (h: SearchHit) => {
    setOpenedId(h.id);
    openResult(h).catch((e) => notify(describeError(e)));
  };

  const loading = status === 'loading';
  return (
    <aside ref={ref} className="search-panel" aria-labelledby="search-results-h" aria-busy={loading}>
      <header className="search-panel-header">
        <h2 id="search-results-h">Search results</h2>
        <button
          type="button"
          className="icon-btn"
          aria-label="Close search results"
          onClick={() => {
            closeSearch();
            focusSearchBox();
          }}
        >
          <Icon name="close" size={16} />
        </button>
      </header>
      <div className="search-panel-bar">
        <p className="search-count" role="status">
          {loading ? 'Searching…' : status === 'error' ? 'Search failed' : status === 'done' ? resultCount(total) : ''}
        </p>
        <div className="sort-toggle" role="group" aria-label="Sort results">
          {SORTS.map((o) => (
            <button key={o.value} type="button" aria-pressed={sort === o.value} className={sort === o.value ? 'on' : ''} onClick={() => void setSearchSort(o.value)}>
              {o.label}
            </button>
          ))}
        </div>
      </div>
      {query && (
        <p className="search-query muted small">
          for <q>{query}</q>
        </p>
      )}
      {status === 'error' && error && (
        <div className="search-failed" role="alert">
          <p className="form-error">
            <ErrorText message={error.message} />
          </p>
          {error.reason === 'unknown_filter' && <p className="muted small">Filters: from:, mentions:, in:, has:, before:, after:, during:, pinned:</p>}
          {error.reason === 'bad_date' && <p className="muted small">Dates are written YYYY-MM-DD, e.g. before:2025-06-01.</p>}
          {error.reason === 'unresolved_name' && <p className="muted small">Pick a name from the suggestions after from:, mentions: or in:.</p>}
        </div>
      )}
      {loading && (
        <div className="search-loading" aria-hidden="true">
          <div className="spinner" />
        </div>
      )}
      {status === 'done' && hits.length === 0 && (
        <div className="search-empty">
          <p>No messages match your search.</p>
          <p className="muted small">Check the spelling, use fewer words, or end a word with * to match its beginning.</p>
        </div>
      )}
      <div className="search-results">
        {groups.map((g) => (
          <ResultGroup key={g.key} group={g} openedId={openedId} onOpen={open} />
        ))}
      </div>
      {status === 'done' && nextCursor && (
        <div className="center pad">
          <button type="button" className="btn btn-secondary" disabled={more} onClick={() => void loadMoreResults()}>
            {more ? 'Loading…' : 'Load more'}
          </button>
          {moreError && (
            <p className="form-error" role="alert">
              {moreError}
            </p>
          )}
        </div>
      )}
    </aside>
  );
}

function ResultGroup({ group, openedId, onOpen }: { group: HitGroup; openedId: string | null; onOpen: (h: SearchHit) => void }) {
  const channel = useStore(communitiesStore, (s) => s.channels[group.channelId]);
  const users = useStore(communitiesStore, (s) => s.users);
  const me = useMe();
  const isDm = channel?.kind === 'dm' || channel?.kind === 'group_dm';
  const name = channel ? channelLabel(channel, me?.id ?? null, users) : 'unknown channel';
  const label = isDm ? `@${name}` : `#${name}`;
  return (
    <section className="search-group" aria-label={label}>
      <h3 className="search-group-title">
        <span aria-hidden="true">{isDm ? '@' : '#'}</span>
        {name}
      </h3>
      <ul role="list">
        {group.hits.map((h) => (
          <Result key={h.id} hit={h} opened={h.id === openedId} onOpen={onOpen} />
        ))}
      </ul>
    </section>
  );
}

function Result({ hit, opened, onOpen }: { hit: SearchHit; opened: boolean; onOpen: (h: SearchHit) => void }) {
  const cached = useStore(communitiesStore, (s) => s.users[hit.author.id]);
  const member = useStore(communitiesStore, (s) => (hit.community_id ? s.members[hit.community_id]?.[hit.author.id] : undefined));
  const name = displayName(cached ?? hit.author, member);
  const created = new Date(hit.created_at);
  const files = hit.attachments?.length ?? 0;
  return (
    <li className="search-hit" data-message-id={hit.id}>
      <button type="button" className="search-hit-btn" aria-current={opened ? 'true' : undefined} onClick={() => onOpen(hit)}>
        <Avatar id={hit.author.id} name={name} size={32} />
        <span className="search-hit-text">
          <span className="message-meta">
            <span className="author">{name}</span>
            <time dateTime={hit.created_at} title={formatFull(created)}>
              {formatStamp(created)}
            </time>
          </span>
          {hit.highlight ? (
            // The server's snippet: HTML-escaped text with <mark> around the matches (docs/api.md).
            <span className="search-snippet" dangerouslySetInnerHTML={{ __html: hit.highlight }} />
          ) : (
            <span className="search-snippet muted">{files > 0 ? `${files} ${files === 1 ? 'attachment' : 'attachments'}` : '(no text)'}</span>
          )}
        </span>
      </button>
    </li>
  );
}
