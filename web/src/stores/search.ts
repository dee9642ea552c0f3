// Message search: what is typed in the box, the search that ran and its results, for the
// box in the channel header and the results panel beside the messages. One search at a
// time; `seq` drops the answer of a search that was replaced while it ran.
import type { components } from '@/api/schema';
import { createStore } from './store';

export type SearchHit = components['schemas']['SearchHit'];
export type SearchResults = components['schemas']['SearchResults'];
export type SearchSort = 'relevance' | 'newest' | 'oldest';

/** A community id, or `@me` for direct messages (the app's `?c=`). */
export type SearchScope = string;

export interface SearchFailure {
  /** In words, from the server's 400 (its `q: ` prefix dropped) or describeError. */
  message: string;
  /** The part of the query the server objected to (`details.token`). */
  token: string | null;
  /** `details.reason`: unknown_filter, bad_date, unresolved_name… */
  reason: string | null;
}

export interface SearchState {
  /** Where the box searches and what is typed in it (kept across channel switches). */
  scope: SearchScope | null;
  draft: string;
  /** The results panel is showing. */
  open: boolean;
  /** What ran. */
  query: string;
  sort: SearchSort;
  status: 'idle' | 'loading' | 'done' | 'error';
  hits: readonly SearchHit[];
  total: number;
  nextCursor: string | null;
  loadingMore: boolean;
  moreError: string | null;
  error: SearchFailure | null;
  seq: number;
}

export const EMPTY_SEARCH: SearchState = {
  scope: null,
  draft: '',
  open: false,
  query: '',
  sort: 'relevance',
  status: 'idle',
  hits: [],
  total: 0,
  nextCursor: null,
  loadingMore: false,
  moreError: null,
  error: null,
  seq: 0,
};

export const searchStore = createStore<SearchState>(EMPTY_SEARCH);

export function setDraft(s: SearchState, scope: SearchScope, draft: string): SearchState {
  if (s.scope === scope && s.draft === draft) return s;
  // Typing in another place's box starts over there.
  if (s.scope !== scope) return { ...EMPTY_SEARCH, scope, draft, sort: s.sort, seq: s.seq };
  return { ...s, draft };
}

export function started(s: SearchState, scope: SearchScope, query: string, sort: SearchSort, seq: number): SearchState {
  return { ...s, scope, query, sort, seq, open: true, status: 'loading', hits: [], total: 0, nextCursor: null, loadingMore: false, moreError: null, error: null };
}

/** A page arrived: the first replaces, later ones append (an id already listed is not listed twice). */
export function received(s: SearchState, seq: number, page: SearchResults, append: boolean): SearchState {
  if (seq !== s.seq) return s;
  let hits = page.messages;
  if (append) {
    const seen = new Set(s.hits.map((h) => h.id));
    hits = [...s.hits, ...page.messages.filter((h) => !seen.has(h.id))];
  }
  return { ...s, status: 'done', hits, total: page.total, nextCursor: page.next_cursor ?? null, loadingMore: false, moreError: null, error: null };
}

export function failed(s: SearchState, seq: number, error: SearchFailure): SearchState {
  if (seq !== s.seq) return s;
  return { ...s, status: 'error', error, loadingMore: false };
}

export function loadingMore(s: SearchState, seq: number): SearchState {
  if (seq !== s.seq) return s;
  return { ...s, loadingMore: true, moreError: null };
}

export function moreFailed(s: SearchState, seq: number, message: string): SearchState {
  if (seq !== s.seq) return s;
  return { ...s, loadingMore: false, moreError: message };
}

/** Closes the panel; an answer still on its way is dropped. `clear` also empties the box. */
export function closed(s: SearchState, clear = false): SearchState {
  return { ...s, open: false, status: 'idle', hits: [], total: 0, nextCursor: null, error: null, loadingMore: false, moreError: null, seq: s.seq + 1, draft: clear ? '' : s.draft };
}

/** Results listed under one channel heading: consecutive hits in the same channel. */
export interface HitGroup {
  key: string;
  channelId: string;
  hits: SearchHit[];
}

/**
 * Groups consecutive hits of one channel under one heading, keeping the server's order
 * (by relevance a channel may come back further down, under a heading of its own).
 */
export function groupByChannel(hits: readonly SearchHit[]): HitGroup[] {
  const groups: HitGroup[] = [];
  for (const h of hits) {
    const last = groups[groups.length - 1];
    if (last && last.channelId === h.channel_id) last.hits.push(h);
    else groups.push({ key: `${h.channel_id}:${h.id}`, channelId: h.channel_id, hits: [h] });
  }
  return groups;
}

/** "1 result", "1,234 results", "No results". */
export function resultCount(total: number): string {
  if (total === 0) return 'No results';
  return `${total.toLocaleString('en-US')} ${total === 1 ? 'result' : 'results'}`;
}
