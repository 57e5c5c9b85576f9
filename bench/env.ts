/**
 * @module bench/env
 * What every benchmark shares: knobs from the environment (a bad value stops the bench with its
 * name), the repository root, and the facts about the machine that go next to each result.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/bench/env.js). */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the benches read the shipped traces from: the one place to change if they move. */
export const TRACES_DIR = join(REPO, 'traces');

/** A non-negative number from `process.env[name]`, or `dflt` when unset or empty. */
export function envNum(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
}

/** The machine a result was measured on. */
export interface MachineFacts {
  readonly nproc: string;
  readonly cpu: string;
  readonly node: string;
  readonly kernel: string;
  readonly memGiB: string;
}

export function machineFacts(): MachineFacts {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  return {
    // The machine's CPUs, not this process's affinity mask (the overhead bench pins itself to one).
    nproc: String(os.cpus().length),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU',
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(0),
  };
}

/** One line: `nproc 2, AMD EPYC, 24 GiB RAM, Linux 6.x, node v20.x`. */
export function describeMachine(m: MachineFacts = machineFacts()): string {
  return `nproc ${m.nproc}, ${m.cpu}, ${m.memGiB} GiB RAM, ${m.kernel}, node ${m.node}`;
}
