/**
 * @module bench/child
 * Runs one measurement in a fresh node process, so its memory and JIT state are its own: the child
 * is this same script started with `--child JSON` and prints one `RESULT {json}` line.
 */
import { spawn } from 'node:child_process';

/** Runs `script --child JSON.stringify(spec)` under node (with `nodeFlags`) and parses its RESULT line. */
export function runChild<R>(script: string, spec: unknown, nodeFlags: readonly string[] = []): Promise<R> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...nodeFlags, script, '--child', JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d: string) => {
      stdout += d;
    });
    proc.once('error', reject);
    proc.once('exit', (code) => {
      const line = stdout
        .trim()
        .split('\n')
        .findLast((l) => l.startsWith('RESULT '));
      if (code !== 0 || line === undefined)
        reject(new Error(`child ${JSON.stringify(spec)} exited with code ${code}`));
      else resolve(JSON.parse(line.slice('RESULT '.length)) as R);
    });
  });
}

/** Runs `tasks` with at most `n` in flight (one child process each), keeping their order in the result. */
export async function runLimited<T>(tasks: readonly (() => Promise<T>)[], n: number): Promise<T[]> {
  const out = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, n) }, worker));
  return out;
}

/**
 * A bench script's entry: started as `script --child JSON` it runs that one job and prints its
 * RESULT line (for {@link runChild}); otherwise it runs `main`.
 */
export async function benchEntry<J>(
  runJob: (job: J) => Promise<unknown>,
  main: () => Promise<void>,
): Promise<void> {
  if (process.argv[2] === '--child') {
    const job = JSON.parse(process.argv[3] ?? '{}') as J;
    process.stdout.write(`RESULT ${JSON.stringify(await runJob(job))}\n`);
  } else {
    await main();
  }
}
