/** `switchyard sim` with the gateway queue: `--queue`, `--endpoint-concurrency`, bounds and `--batch-share`. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const sim = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'sim', ...args], { encoding: 'utf8' });

/** Three requests at once, in a Mooncake-format file. */
function trace(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-simq-'));
  const file = join(dir, 'trace.jsonl');
  const line = (i: number) =>
    JSON.stringify({ timestamp: 0, input_length: 256, output_length: 4, hash_ids: [i] });
  writeFileSync(file, `${[1, 2, 3].map(line).join('\n')}\n`);
  return { dir, file };
}

const FLEET = ['--profile', 'qwen2.5-1.5b-h100', '--replicas', '1'];

describe('switchyard sim: gateway queue flags', () => {
  it('a serial replica with a one-place queue: one runs, one waits, one is refused', () => {
    const { dir, file } = trace();
    const out = join(dir, 'out');
    const r = sim(
      '--trace',
      file,
      ...FLEET,
      '--endpoint-concurrency',
      '1',
      '--queue',
      'sjf',
      '--max-queue',
      '1',
      '--max-wait-ms',
      '60000',
      '--out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /gateway queue \(sjf\): 1 requests waited, at most 1 at once; dropped: 1 queue_full/,
    );
    const records = readFileSync(join(out, 'requests.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { id: string; status: string; reject_reason: string; gateway_queue_ms: number },
      );
    assert.deepEqual(
      records.map((x) => [x.id, x.status, x.reject_reason]),
      [
        ['r2', 'rejected', 'queue_full'],
        ['r0', 'ok', 'none'],
        ['r1', 'ok', 'none'],
      ],
    );
    assert.equal(records[1]!.gateway_queue_ms, 0);
    assert.ok(records[2]!.gateway_queue_ms > 0, 'r1 waited for r0');
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      scheduling: { order: string; queued: number; dropped_by_reason: Record<string, number> };
      by_class: Record<string, { requests: number }>;
    };
    assert.deepEqual(summary.scheduling, {
      order: 'sjf',
      queued: 1,
      max_waiting: 1,
      dropped_by_reason: { queue_full: 1 },
    });
    assert.deepEqual(Object.keys(summary.by_class), ['normal']);
  });

  it('--config: each pool queues as its scheduling section says, unless --queue overrides it', () => {
    const { dir, file } = trace();
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      [
        'scheduling: { queue: edf, maxQueueLength: 1, defaultPriority: low }',
        'pools:',
        '  m:',
        '    scheduling: { queue: priority }',
        '    endpoints:',
        '      - { name: m-0, kind: emulated, profile: qwen2.5-1.5b-h100, maxConcurrency: 1 }',
        '',
      ].join('\n'),
    );
    const out = join(dir, 'out');
    const read = () =>
      JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
        scheduling: { order: string; dropped_by_reason: Record<string, number> };
        by_class: Record<string, { requests: number }>;
      };
    const r = sim('--trace', file, '--config', config, '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /gateway queue \(priority\)/);
    const fromConfig = read();
    assert.equal(fromConfig.scheduling.order, 'priority', "the pool's own order over the top-level one");
    assert.deepEqual(fromConfig.scheduling.dropped_by_reason, { queue_full: 1 }, 'the top-level bound');
    assert.deepEqual(Object.keys(fromConfig.by_class), ['low'], "the config's default class");
    const flag = sim('--trace', file, '--config', config, '--queue', 'fcfs', '--out', out);
    assert.equal(flag.status, 0, flag.stderr);
    assert.equal(read().scheduling.order, 'fcfs');
    assert.deepEqual(Object.keys(read().by_class), ['normal'], '--queue replaces the whole section');
  });

  it('--batch-share 1 marks every request batch', () => {
    const { dir, file } = trace();
    const out = join(dir, 'out');
    const r = sim('--trace', file, ...FLEET, '--queue', 'priority', '--batch-share', '1', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      by_class: Record<string, { requests: number; completed: number }>;
    };
    assert.deepEqual(Object.keys(summary.by_class), ['batch']);
    assert.equal(summary.by_class.batch!.completed, 3);
  });

  it('refuses bad values with exit code 2, naming the flag', () => {
    const { dir, file } = trace();
    const out = join(dir, 'out');
    for (const [args, message] of [
      [['--queue', 'lifo'], /unknown --queue lifo/],
      [['--max-queue', '5'], /--queue NAME/],
      [['--queue', 'fcfs', '--max-queue', '1.5'], /--max-queue must be a whole number/],
      [['--endpoint-concurrency', '0'], /--endpoint-concurrency must be at least 1/],
      [['--batch-share', '2'], /--batch-share must be in \[0, 1\]/],
    ] as const) {
      const r = sim('--trace', file, ...FLEET, ...args, '--out', out);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, message);
    }
    const help = sim('--help');
    for (const flag of ['--queue', '--endpoint-concurrency', '--max-queue', '--max-wait-ms', '--batch-share'])
      assert.ok(help.stdout.includes(flag), `help names ${flag}`);
  });
});
