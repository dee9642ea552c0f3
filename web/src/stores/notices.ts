// Short-lived messages for the user (action failed, permission lost…).
import { createStore } from './store';

export interface Notice {
  id: number;
  text: string;
  kind: 'error' | 'info';
}

export const noticesStore = createStore<readonly Notice[]>([]);
let nextId = 1;

export function notify(text: string, kind: Notice['kind'] = 'error', ms = 6000) {
  const id = nextId++;
  noticesStore.set((s) => [...s.slice(-3), { id, text, kind }]);
  setTimeout(() => dismiss(id), ms);
}

export function dismiss(id: number) {
  noticesStore.set((s) => s.filter((n) => n.id !== id));
}
