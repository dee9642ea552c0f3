// Message search calls (docs/api.md "Search") and the actions the search box and the
// results panel use. State lives in stores/search.ts.
import { api, unwrap } from './api';
import { getClient } from './client';
import { ApiError, describeError } from './errors';
import { setQuery } from './nav';
import * as S from '@/stores/search';

const PAGE = 25;

/** One page of results in a community, or in the caller's DMs (`@me`). */
export function fetchResults(scope: S.SearchScope, q: string, sort: S.SearchSort, cursor?: string | null): Promise<S.SearchResults> {
  const query = { q, sort, limit: PAGE, ...(cursor ? { cursor } : {}) };
  if (scope === '@me') return unwrap<S.SearchResults>(api.GET('/api/v1/dms/messages/search', { params: { query } }));
  return unwrap<S.SearchResults>(api.GET('/api/v1/communities/{id}/messages/search', { params: { path: { id: scope }, query } }));
}

/**
 * A refusal in words. A 400 reads `q: unknown filter \`foo:bar\``: the field prefix goes
 * (it is always the box) and the token the server named comes along to be shown.
 */
export function searchFailure(e: unknown): S.SearchFailure {
  if (e instanceof ApiError && e.status === 400) {
    const token = typeof e.details.token === 'string' ? e.details.token : null;
    const reason = typeof e.details.reason === 'string' ? e.details.reason : null;
    const bare = e.message.replace(/^(q|sort|cursor|limit): /, '');
    return { message: bare ? bare.charAt(0).toUpperCase() + bare.slice(1) : 'That search is not valid.', token, reason };
  }
  if (e instanceof ApiError && e.status === 503) return { message: 'Search is turned off on this server.', token: null, reason: 'unavailable' };
  if (e instanceof ApiError && e.status === 404) return { message: "You can't search this community any more.", token: null, reason: null };
  return { message: describeError(e), token: null, reason: null };
}

function set(fn: (s: S.SearchState) => S.SearchState) {
  S.searchStore.set(fn);
}

export function setSearchDraft(scope: S.SearchScope, draft: string) {
  set((s) => S.setDraft(s, scope, draft));
}

/** Runs a search (the box's Enter, or a new sort) and opens the panel. */
export async function runSearch(scope: S.SearchScope, q: string, sort: S.SearchSort = S.searchStore.get().sort): Promise<void> {
  const query = q.trim();
  if (!query) return;
  const seq = S.searchStore.get().seq + 1;
  set((s) => S.started(s, scope, query, sort, seq));
  try {
    const page = await fetchResults(scope, query, sort);
    set((s) => S.received(s, seq, page, false));
  } catch (e) {
    set((s) => S.failed(s, seq, searchFailure(e)));
  }
}

/** The same search again, in another order. */
export function setSearchSort(sort: S.SearchSort): Promise<void> {
  const s = S.searchStore.get();
  if (!s.scope || !s.query) {
    set((st) => ({ ...st, sort }));
    return Promise.resolve();
  }
  return runSearch(s.scope, s.query, sort);
}

export async function loadMoreResults(): Promise<void> {
  const s = S.searchStore.get();
  if (!s.scope || !s.nextCursor || s.loadingMore || s.status !== 'done') return;
  const { seq, scope, query, sort, nextCursor } = s;
  set((st) => S.loadingMore(st, seq));
  try {
    const page = await fetchResults(scope, query, sort, nextCursor);
    set((st) => S.received(st, seq, page, true));
  } catch (e) {
    set((st) => S.moreFailed(st, seq, searchFailure(e).message));
  }
}

export function closeSearch(clear = false) {
  set((s) => S.closed(s, clear));
}

/** Opens a result: its channel, scrolled to it with the history around it. */
export function openResult(hit: S.SearchHit): Promise<void> {
  // The jump is registered before the channel opens, so its list starts from this window.
  const done = getClient().jumpTo(hit.channel_id, hit.id);
  setQuery({ c: hit.community_id ?? '@me', ch: hit.channel_id });
  return done;
}
