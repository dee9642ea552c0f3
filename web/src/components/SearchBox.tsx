'use client';
// The search box in the channel header: searches the community (or, in a DM, every DM).
// Ctrl/Cmd+K or Ctrl/Cmd+F focuses it, Enter searches, Escape closes the suggestions,
// then the results. Typing a filter (`from:`, `mentions:`, `in:`, `has:`, `before:`…)
// suggests its values: an ARIA 1.2 combobox with a listbox, arrows to move, Enter or Tab
// to take one, the mouse too.
import { useEffect, useId, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { useCommunityChannels, useDms, useMe, useMembers } from '@/lib/hooks';
import { closeSearch, runSearch, setSearchDraft } from '@/lib/search';
import { applySuggestion, filterValue, suggestAt, type Person, type Place, type Suggestion } from '@/lib/searchQuery';
import { channelLabel, communitiesStore, displayName } from '@/stores/communities';
import { searchStore, type SearchScope } from '@/stores/search';
import { useStore } from '@/stores/store';
import { Icon } from './icons';
import { Avatar } from './ui';

/** Who `from:`/`mentions:` can name and where `in:` can point, for this scope. */
function useSources(scope: SearchScope): { people: Person[]; places: Place[] } {
  const communityId = scope === '@me' ? null : scope;
  const members = useMembers(communityId);
  const channels = useCommunityChannels(communityId);
  const dms = useDms();
  const users = useStore(communitiesStore, (s) => s.users);
  const me = useMe();
  return useMemo(() => {
    if (communityId) {
      return {
        people: members.map((m) => ({ id: m.user.id, username: m.user.username, name: displayName(m.user, m) })),
        // The store only holds channels we may see; search reads the text ones.
        places: channels.filter((c) => c.kind === 'text' && c.name).map((c) => ({ id: c.id, name: c.name!, value: filterValue(c.name!, c.id, '#') })),
      };
    }
    const seen = new Map<string, Person>();
    for (const dm of dms) for (const u of dm.recipients ?? []) seen.set(u.id, { id: u.id, username: u.username, name: displayName(users[u.id] ?? u) });
    if (me) seen.set(me.id, { id: me.id, username: me.username, name: displayName(me) });
    // In DMs `in:` takes the conversation's ID.
    return { people: [...seen.values()], places: dms.map((d) => ({ id: d.id, name: channelLabel(d, me?.id ?? null, users), value: d.id })) };
  }, [communityId, members, channels, dms, users, me]);
}

/** The server's message with its `backticked` parts as code. */
export function ErrorText({ message }: { message: string }) {
  const parts = message.split('`');
  return <>{parts.map((p, i) => (i % 2 === 1 ? <code key={i}>{p}</code> : p))}</>;
}

export function SearchBox({ scope, placeName }: { scope: SearchScope; placeName: string }) {
  const draft = useStore(searchStore, (s) => (s.scope === scope ? s.draft : ''));
  const error = useStore(searchStore, (s) => (s.scope === scope && s.status === 'error' ? s.error : null));
  const panelOpen = useStore(searchStore, (s) => s.open && s.scope === scope);
  const sources = useSources(scope);
  const inputRef = useRef<HTMLInputElement>(null);
  const [caret, setCaret] = useState(0);
  const [focused, setFocused] = useState(false);
  // Escape hides the suggestions until the text or the caret moves on.
  const [dismissedAt, setDismissedAt] = useState<string | null>(null);
  const [active, setActive] = useState(-1);
  const uid = useId();
  const listId = `search-suggestions${uid}`;
  const errorId = `search-error${uid}`;

  const sugg = useMemo(() => suggestAt(draft, caret, sources), [draft, caret, sources]);
  const where = `${draft}\u0000${caret}`;
  const showList = focused && dismissedAt !== where && (sugg.items.length > 0 || !!sugg.hint);
  const listKey = sugg.items.map((i) => i.id).join('|') + sugg.token.start;

  // A new list starts on its first entry when it is a list of values (so Enter takes it),
  // on none for the list of filters (so Enter still searches).
  useEffect(() => {
    setActive(sugg.autoSelect && sugg.items.length > 0 ? 0 : -1);
  }, [listKey, sugg.autoSelect, sugg.items.length]);

  // Ctrl/Cmd+K or Ctrl/Cmd+F from anywhere in the app.
  useEffect(() => {
    const onKey = (e: globalThis.KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || e.altKey || e.shiftKey) return;
      if (e.key !== 'k' && e.key !== 'K' && e.key !== 'f' && e.key !== 'F') return;
      // Not from under a dialog.
      if (document.querySelector('[aria-modal="true"]')) return;
      e.preventDefault();
      inputRef.current?.focus();
      inputRef.current?.select();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  const track = () => {
    const el = inputRef.current;
    if (el) setCaret(el.selectionStart ?? el.value.length);
  };

  const accept = (item: Suggestion) => {
    const { text, caret: at } = applySuggestion(draft, sugg.token, item.insert);
    setSearchDraft(scope, text);
    setCaret(at);
    requestAnimationFrame(() => {
      const el = inputRef.current;
      if (!el) return;
      el.focus();
      el.setSelectionRange(at, at);
    });
  };

  const submit = () => {
    setDismissedAt(where);
    void runSearch(scope, draft);
  };

  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.nativeEvent.isComposing) return;
    const items = showList ? sugg.items : [];
    if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && items.length > 0) {
      e.preventDefault();
      const n = items.length;
      setActive((a) => (e.key === 'ArrowDown' ? (a + 1) % n : a <= 0 ? n - 1 : a - 1));
      return;
    }
    if ((e.key === 'Enter' || e.key === 'Tab') && items.length > 0 && active >= 0 && items[active]) {
      e.preventDefault();
      accept(items[active]);
      return;
    }
    if (e.key === 'Enter') {
      e.preventDefault();
      submit();
      return;
    }
    if (e.key === 'Escape') {
      e.preventDefault();
      if (showList) setDismissedAt(where);
      else if (panelOpen || error) closeSearch();
      else if (draft) setSearchDraft(scope, '');
      else inputRef.current?.blur();
    }
  };

  const activeItem = showList && active >= 0 ? sugg.items[active] : undefined;
  const group = sugg.items[0]?.group ?? 'Suggestions';
  return (
    <div className={focused || draft ? 'search-box wide' : 'search-box'} role="search">
      <label htmlFor={`search-input${uid}`} className="sr-only">
        Search {placeName}
      </label>
      <input
        ref={inputRef}
        id={`search-input${uid}`}
        type="text"
        role="combobox"
        aria-expanded={showList}
        aria-controls={listId}
        aria-autocomplete="list"
        aria-activedescendant={activeItem ? `${listId}-${activeItem.id}` : undefined}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? errorId : undefined}
        autoComplete="off"
        spellCheck={false}
        placeholder="Search"
        value={draft}
        onChange={(e) => {
          setSearchDraft(scope, e.target.value);
          setCaret(e.target.selectionStart ?? e.target.value.length);
        }}
        onSelect={track}
        onFocus={() => {
          setFocused(true);
          track();
        }}
        onBlur={() => setFocused(false)}
        onKeyDown={onKeyDown}
      />
      {draft ? (
        <button
          type="button"
          className="search-clear"
          aria-label="Clear search"
          onMouseDown={(e) => e.preventDefault()}
          onClick={() => {
            closeSearch(true);
            inputRef.current?.focus();
          }}
        >
          <Icon name="close" size={14} />
        </button>
      ) : (
        <span className="search-icon" aria-hidden="true">
          <Icon name="search" size={16} />
        </span>
      )}
      <div className="search-drop">
        {error && (
          <p id={errorId} className="search-error" role="alert">
            <ErrorText message={error.message} />
            {error.token && !error.message.includes(`\`${error.token}\``) && (
              <>
                {' '}
                (<code>{error.token}</code>)
              </>
            )}
          </p>
        )}
        <div className="search-popup" hidden={!showList}>
          {showList && sugg.items.length > 0 && (
            <div className="search-popup-title" aria-hidden="true">
              {group}
            </div>
          )}
          <ul id={listId} role="listbox" aria-label={group} className="search-suggestions">
            {showList &&
              sugg.items.map((item, i) => (
                <li
                  key={item.id}
                  id={`${listId}-${item.id}`}
                  role="option"
                  aria-selected={i === active}
                  className={i === active ? 'selected' : ''}
                  onMouseDown={(e) => {
                    e.preventDefault();
                    accept(item);
                  }}
                  onMouseEnter={() => setActive(i)}
                >
                  {item.userId && <Avatar id={item.userId} name={item.label} size={20} />}
                  {item.group === 'Channels' && <span aria-hidden="true">{scope === '@me' ? '@' : '#'}</span>}
                  <span className="search-suggestion-label">{item.label}</span>
                  {item.detail && <span className="muted small">{item.detail}</span>}
                </li>
              ))}
          </ul>
          {showList && sugg.hint && <p className="search-hint muted small">{sugg.hint}</p>}
        </div>
      </div>
    </div>
  );
}
