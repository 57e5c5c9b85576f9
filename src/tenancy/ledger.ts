/**
 * @module tenancy/ledger
 * The usage ledger's writer: finished requests are buffered in memory and written in one batch
 * every `ledgerFlushMs` (or sooner when `ledgerMaxBatch` rows wait), off the request path. A kill -9
 * loses at most the rows of one interval; rows are keyed by request id, so a batch that is retried
 * after a failed write is never counted twice. The buffer is bounded: past `ledgerMaxBuffered` rows
 * (the database is down for long) the oldest are dropped and counted, never unbounded memory.
 */
import type { TenancyStore, UsageRow } from './types.js';

export interface LedgerOptions {
  readonly flushMs: number;
  readonly maxBatch: number;
  readonly maxBuffered: number;
  /** Told of a failed write (the rows stay buffered and are retried at the next interval). */
  readonly onError?: (err: unknown) => void;
}

export class UsageLedger {
  private buffer: UsageRow[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  /** Rows dropped because the buffer was full. */
  dropped = 0;
  /** Rows written. */
  written = 0;

  constructor(
    private readonly store: TenancyStore,
    private readonly opts: LedgerOptions,
  ) {
    this.timer = setInterval(() => void this.flush(), opts.flushMs);
    this.timer.unref();
  }

  append(row: UsageRow): void {
    if (this.buffer.length >= this.opts.maxBuffered) {
      this.buffer.shift();
      this.dropped++;
    }
    this.buffer.push(row);
    if (this.buffer.length >= this.opts.maxBatch && this.writing === null) void this.flush();
  }

  /** Rows waiting to be written. */
  get pending(): number {
    return this.buffer.length;
  }

  /** Writes what is buffered now (one batch at a time; resolves when the batch is written or failed). */
  async flush(): Promise<void> {
    if (this.writing !== null) return this.writing;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.writing = this.store
      .insertUsage(batch)
      .then(
        () => {
          this.written += batch.length;
        },
        (err: unknown) => {
          // Back to the front, so order is kept and nothing is lost while the bound allows.
          this.buffer = batch.concat(this.buffer);
          const over = this.buffer.length - this.opts.maxBuffered;
          if (over > 0) {
            this.buffer.splice(0, over);
            this.dropped += over;
          }
          this.opts.onError?.(err);
        },
      )
      .finally(() => {
        this.writing = null;
      });
    return this.writing;
  }

  /** Stops the timer and writes what is left (on shutdown). */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
    if (this.buffer.length > 0) await this.flush();
  }
}
