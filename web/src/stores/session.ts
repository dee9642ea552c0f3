// Who is signed in, and the live connection's state (shown as "reconnecting").
import type { User } from '@/api/types';
import { createStore } from './store';
import type { GatewayState } from '@/lib/gateway';

export type AuthStatus = 'unknown' | 'signed_in' | 'signed_out';

export interface SessionState {
  status: AuthStatus;
  user: User | null;
  gateway: GatewayState;
  /** Communities and channels are loaded (from READY, or REST while the gateway connects). */
  loaded: boolean;
  /** Why the user was signed out (e.g. "signed out everywhere"), shown on /login. */
  signedOutReason: string | null;
}

export const sessionStore = createStore<SessionState>({
  status: 'unknown',
  user: null,
  gateway: 'idle',
  loaded: false,
  signedOutReason: null,
});

export function setUser(user: User | null) {
  sessionStore.set((s) => ({ ...s, user, status: user ? 'signed_in' : s.status }));
}
