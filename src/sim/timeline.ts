/**
 * @module sim/timeline
 * Per-interval aggregates of a run for the report's charts, in bounded memory: buckets start one
 * second wide and, whenever there would be more than `maxBuckets`, neighbours merge and the width
 * doubles. A week-long replay therefore keeps the same number of points as a minute-long one.
 */

/** The quantities kept per bucket (sums; means are taken at read time). */
export interface BucketSums {
  arrivals: number;
  completions: number;
  rejections: number;
  ttftSum: number;
  promptTokens: number;
  cachedTokens: number;
  /** Samples of the fleet's state taken in this bucket, and their sums. */
  samples: number;
  waitingSum: number;
  runningSum: number;
  replicasSum: number;
  /** Per replica: sum over samples of running + waiting. */
  perReplicaSum: number[];
}

export interface TimelinePoint {
  readonly tS: number;
  readonly arrivalsPerS: number;
  readonly completionsPerS: number;
  readonly rejectionsPerS: number;
  readonly meanTtftMs: number;
  readonly hitRate: number;
  readonly waiting: number;
  readonly running: number;
  readonly replicas: number;
  readonly perReplica: readonly number[];
}

export class Timeline {
  private widthMs: number;
  private buckets: BucketSums[] = [];

  constructor(
    private readonly replicas: number,
    private readonly maxBuckets = 600,
    initialWidthMs = 1000,
  ) {
    this.widthMs = initialWidthMs;
  }

  /** The bucket holding time `tMs` (ms from the start of the run). */
  at(tMs: number): BucketSums {
    let i = Math.floor(Math.max(0, tMs) / this.widthMs);
    while (i >= this.maxBuckets) {
      this.coarsen();
      i = Math.floor(Math.max(0, tMs) / this.widthMs);
    }
    while (this.buckets.length <= i) this.buckets.push(empty(this.replicas));
    return this.buckets[i]!;
  }

  points(): TimelinePoint[] {
    const w = this.widthMs / 1000;
    return this.buckets.map((b, i) => {
      const n = b.samples || 1;
      return {
        tS: i * w,
        arrivalsPerS: b.arrivals / w,
        completionsPerS: b.completions / w,
        rejectionsPerS: b.rejections / w,
        meanTtftMs: b.completions > 0 ? b.ttftSum / b.completions : Number.NaN,
        hitRate: b.promptTokens > 0 ? b.cachedTokens / b.promptTokens : Number.NaN,
        waiting: b.waitingSum / n,
        running: b.runningSum / n,
        replicas: b.replicasSum / n,
        perReplica: b.perReplicaSum.map((x) => x / n),
      };
    });
  }

  private coarsen(): void {
    const merged: BucketSums[] = [];
    for (let i = 0; i < this.buckets.length; i += 2) {
      const a = this.buckets[i]!;
      const b = this.buckets[i + 1];
      if (b !== undefined) {
        a.arrivals += b.arrivals;
        a.completions += b.completions;
        a.rejections += b.rejections;
        a.ttftSum += b.ttftSum;
        a.promptTokens += b.promptTokens;
        a.cachedTokens += b.cachedTokens;
        a.samples += b.samples;
        a.waitingSum += b.waitingSum;
        a.runningSum += b.runningSum;
        a.replicasSum += b.replicasSum;
        for (let r = 0; r < a.perReplicaSum.length; r++) a.perReplicaSum[r]! += b.perReplicaSum[r]!;
      }
      merged.push(a);
    }
    this.buckets = merged;
    this.widthMs *= 2;
  }
}

function empty(replicas: number): BucketSums {
  return {
    arrivals: 0,
    completions: 0,
    rejections: 0,
    ttftSum: 0,
    promptTokens: 0,
    cachedTokens: 0,
    samples: 0,
    waitingSum: 0,
    runningSum: 0,
    replicasSum: 0,
    perReplicaSum: new Array<number>(replicas).fill(0),
  };
}
