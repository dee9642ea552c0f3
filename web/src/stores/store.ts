// A tiny external store: immutable state + subscribe, read in React through
// useSyncExternalStore with a selector. Keeps the bundle free of a state library.
import { useCallback, useRef, useSyncExternalStore } from 'react';

export interface Store<T> {
  get(): T;
  set(next: T | ((prev: T) => T)): void;
  subscribe(fn: () => void): () => void;
}

export function createStore<T>(initial: T): Store<T> {
  let state = initial;
  const listeners = new Set<() => void>();
  return {
    get: () => state,
    set(next) {
      const value = typeof next === 'function' ? (next as (p: T) => T)(state) : next;
      if (Object.is(value, state)) return;
      state = value;
      for (const l of [...listeners]) l();
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/**
 * Subscribes a component to a slice of a store. The selector must return something
 * stable (a stored object, a primitive) or pass `equal` for derived values.
 */
export function useStore<T, U>(store: Store<T>, selector: (s: T) => U, equal: (a: U, b: U) => boolean = Object.is): U {
  const last = useRef<{ value: U } | null>(null);
  const get = useCallback(() => {
    const next = selector(store.get());
    if (last.current && equal(last.current.value, next)) return last.current.value;
    last.current = { value: next };
    return next;
    // The selector is usually an inline arrow; depending on it would resubscribe each render.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [store, selector]);
  return useSyncExternalStore(store.subscribe, get, get);
}

export function shallowEqualArray<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}
