// Messages typed while offline (or whose POST failed in transit) wait here with their
// nonce and go out in order once the gateway is ready again. Resending is safe: the
// server answers a repeated nonce with the first message (200), never a duplicate.
import type { Message } from '@/api/types';
import type { UploadedFile } from './uploader';
import { ApiError, networkError } from './errors';

export interface OutboxItem {
  nonce: string;
  channelId: string;
  content: string;
  replyToId: string | null;
  /** Uploaded files sent with it (`attachment_ids`); kept whole so a failed send can put them back. */
  attachments?: UploadedFile[];
}

export interface OutboxOptions {
  send(item: OutboxItem): Promise<Message>;
  /** True while the gateway is ready: otherwise we don't even try. */
  isOnline(): boolean;
  onSending?(item: OutboxItem): void;
  onSent?(item: OutboxItem, message: Message): void;
  /** Still queued: offline, or a transient error (retry later). */
  onQueued?(item: OutboxItem, error: ApiError | null): void;
  /** Rejected for good (400, 403, 413…): the app puts the text back in the composer. */
  onFailed?(item: OutboxItem, error: ApiError): void;
  /**
   * A 429 that should not be retried by itself (a channel's slowmode: the person
   * waits and sends again): the item fails through onFailed instead of waiting.
   */
  failOn429?(item: OutboxItem, error: ApiError): boolean;
  /** Schedules a retry after a 429 (injected for tests). */
  setTimer?(fn: () => void, ms: number): void;
}

export class Outbox {
  private queue: OutboxItem[] = [];
  private flushing: Promise<void> | null = null;
  private again = false;
  private retryScheduled = false;
  private transientFailures = 0;

  constructor(private readonly opts: OutboxOptions) {}

  get size() {
    return this.queue.length;
  }

  items(): readonly OutboxItem[] {
    return this.queue;
  }

  enqueue(item: OutboxItem) {
    if (this.queue.some((q) => q.nonce === item.nonce)) return;
    this.queue.push(item);
    if (this.opts.isOnline()) void this.flush();
    else this.opts.onQueued?.(item, null);
  }

  /** Drops an item the user discarded. */
  remove(nonce: string) {
    this.queue = this.queue.filter((q) => q.nonce !== nonce);
  }

  /**
   * Sends everything queued, one at a time and in order. Concurrent calls share the
   * running flush (which loops once more if called meanwhile), so a nonce is never in
   * flight twice.
   */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      let ok: boolean;
      do {
        this.again = false;
        ok = await this.drain();
        // After a failure, wait for the next trigger (ready, online, 429 timer) instead of spinning.
      } while (ok && this.again && this.queue.length > 0 && this.opts.isOnline());
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private scheduleRetry(ms: number) {
    if (this.retryScheduled) return;
    this.retryScheduled = true;
    (this.opts.setTimer ?? ((fn, delay) => setTimeout(fn, delay)))(() => {
      this.retryScheduled = false;
      if (this.queue.length) void this.flush();
    }, ms);
  }

  /** Returns false when it stopped on an error or offline. */
  private async drain(): Promise<boolean> {
    while (this.queue.length > 0) {
      if (!this.opts.isOnline()) {
        for (const q of this.queue) this.opts.onQueued?.(q, null);
        return false;
      }
      const item = this.queue[0];
      this.opts.onSending?.(item);
      try {
        const message = await this.opts.send(item);
        this.transientFailures = 0;
        this.queue = this.queue.filter((q) => q.nonce !== item.nonce);
        this.opts.onSent?.(item, message);
      } catch (e) {
        const err = e instanceof ApiError ? e : networkError(e);
        if (err.transient) {
          // Maybe the server got it and the answer was lost: the same nonce is resent
          // later (on reconnect, or by the backoff timer), and the server dedupes it.
          for (const q of this.queue) this.opts.onQueued?.(q, err);
          this.transientFailures++;
          this.scheduleRetry(Math.min(30_000, 1000 * 2 ** Math.min(this.transientFailures, 5)));
          return false;
        }
        if (err.status === 429 && !this.opts.failOn429?.(item, err)) {
          for (const q of this.queue) this.opts.onQueued?.(q, err);
          this.scheduleRetry(err.retryAfterMs ?? 1000);
          return false;
        }
        this.queue = this.queue.filter((q) => q.nonce !== item.nonce);
        this.opts.onFailed?.(item, err);
      }
    }
    return true;
  }
}
