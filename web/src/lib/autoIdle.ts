// The server pushes notifications only to users none of whose sessions says
// `online` (docs/api.md, Notifications). A tab left in the background is not
// someone reading: after a short while hidden it reports `idle`, so its user
// gets pushes on their other devices; back in view it reports what the user
// chose again. A status the user picked themselves (idle, dnd, invisible) is
// theirs and is never touched.

export type Status = 'online' | 'idle' | 'dnd' | 'invisible';

/** How long a tab stays hidden before it says idle. */
export const AWAY_AFTER_MS = 30_000;

export interface VisibilitySource {
  visibilityState: string;
  addEventListener(type: 'visibilitychange', fn: () => void): void;
  removeEventListener(type: 'visibilitychange', fn: () => void): void;
}

export interface AutoIdle {
  /** The status the user picked (the one to return to). */
  choose(status: Status): void;
  stop(): void;
}

/** Watches `doc`; `send` reports a status to the gateway. */
export function startAutoIdle(
  doc: VisibilitySource,
  send: (s: Status) => void,
  awayAfterMs = AWAY_AFTER_MS,
): AutoIdle {
  let chosen: Status = 'online';
  let away = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const cancel = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  const onChange = () => {
    if (doc.visibilityState === 'hidden') {
      if (timer || away) return;
      timer = setTimeout(() => {
        timer = null;
        if (chosen === 'online' && doc.visibilityState === 'hidden') {
          away = true;
          send('idle');
        }
      }, awayAfterMs);
    } else {
      cancel();
      if (away) {
        away = false;
        send(chosen);
      }
    }
  };
  doc.addEventListener('visibilitychange', onChange);
  return {
    choose(status) {
      chosen = status;
      // A choice made while away is sent by the caller; it ends the auto idle.
      away = false;
    },
    stop() {
      cancel();
      doc.removeEventListener('visibilitychange', onChange);
    },
  };
}
