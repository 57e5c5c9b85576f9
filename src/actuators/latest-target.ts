/**
 * @module actuators/latest-target
 * Serialises an actuator's `apply` calls: one reconcile runs at a time, and a call made while one
 * runs only replaces the queued target, so after a burst of decisions just the latest is carried
 * out. Each call's promise settles when the run that took its target (or a later one) ends.
 */
export class LatestTarget<T> {
  private queued: T | undefined;
  private running: Promise<void> | undefined;

  /** `reconcile` applies one target; `stopped` ends the loop early (the actuator closed). */
  constructor(
    private readonly reconcile: (target: T) => Promise<void>,
    private readonly stopped: () => boolean,
  ) {}

  submit(target: T): Promise<void> {
    this.queued = target;
    this.running ??= this.run();
    return this.running;
  }

  /** Drops a queued target and waits for the run under way, ignoring its failure (closing). */
  async settle(): Promise<void> {
    this.queued = undefined;
    await this.running?.catch(() => {});
  }

  private async run(): Promise<void> {
    let failure: unknown;
    try {
      for (let t = this.queued; t !== undefined && !this.stopped(); t = this.queued) {
        this.queued = undefined;
        try {
          await this.reconcile(t);
        } catch (err) {
          failure = err;
        }
      }
    } finally {
      this.running = undefined; // synchronous with the last check of `queued`: no call is lost
    }
    if (failure !== undefined) throw failure;
  }
}
