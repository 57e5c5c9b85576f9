/**
 * The `switchyard` command as an operator runs it: help, profiles, and a real `serve` process that
 * reloads on SIGHUP (refusing a broken file without going down) and drains on SIGTERM, exiting 0.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const pool = (name: string) =>
  `  ${name}:\n    endpoints:\n      - { name: ${name}-0, kind: emulated, profile: qwen2.5-1.5b-h100 }\n`;
const config = (...pools: string[]) =>
  `server: { host: 127.0.0.1 }\nlog: { level: info }\npools:\n${pools.map(pool).join('')}`;

/** Collects a child's JSON log lines and resolves when one matches. */
function logWatcher(child: ChildProcess) {
  const lines: Record<string, unknown>[] = [];
  const waiters: {
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  const seen = (match: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const seen = lines.find(match);
      if (seen) return resolve(seen);
      const timer = setTimeout(() => reject(new Error('log line not seen')), timeoutMs);
      waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  return Object.assign(seen, { lines });
}

describe('switchyard CLI', () => {
  it('prints help for each command and lists engine profiles', () => {
    for (const args of [['--help'], ['serve', '--help'], ['engine', '--help'], ['sim', '--help']]) {
      const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, args.join(' '));
      assert.match(r.stdout, /Usage/);
    }
    const list = spawnSync(process.execPath, [MAIN, 'engine', '--list-profiles'], { encoding: 'utf8' });
    for (const name of ['llama3.1-8b-h100', 'qwen2.5-7b-h100', 'qwen2.5-1.5b-h100'])
      assert.match(list.stdout, new RegExp(name));
    const bad = spawnSync(process.execPath, [MAIN, 'serve', '--config', '/nonexistent.yaml'], {
      encoding: 'utf8',
    });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /nonexistent\.yaml/);
  });

  it('sim: replays a trace file and writes summary.json and requests.jsonl', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-sim-'));
    const trace = join(dir, 'trace.jsonl');
    const lines = [0, 100, 200].map((t, i) =>
      JSON.stringify({ timestamp: t, input_length: 1024, output_length: 8, hash_ids: [0, i + 1] }),
    );
    writeFileSync(trace, `${lines.join('\n')}\n`);
    const out = join(dir, 'out');
    const r = spawnSync(
      process.execPath,
      [MAIN, 'sim', '--trace', trace, '--profile', 'qwen2.5-1.5b-h100', '--replicas', '1', '--out', out],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, unknown>;
    for (const key of [
      'requests',
      'completed',
      'rejected',
      'ttft_ms',
      'tpot_ms',
      'e2e_ms',
      'queue_ms',
      'slo_attainment',
    ]) {
      assert.ok(key in summary, `summary.json has ${key}`);
    }
    assert.equal(summary.completed, 3);
    // The three prompts share their first 512-token block: the 2nd and 3rd find it cached.
    const records = readFileSync(join(out, 'requests.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      records.map((x: { cached_tokens: number }) => x.cached_tokens),
      [0, 512, 512],
    );
    const bad = spawnSync(
      process.execPath,
      [MAIN, 'sim', '--trace', trace, '--out', out, '--window', '5:1'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--window/);
  });

  it('serve: SIGHUP reloads (a broken file is refused), SIGTERM drains a stream and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-cli-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, config('a'));
    const child = spawn(process.execPath, [MAIN, 'serve', '--config', file, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const seen = logWatcher(child);
    try {
      const listening = await seen((l) => typeof l.url === 'string');
      const client = new OpenAI({ baseURL: listening.url as string, apiKey: 'unused', maxRetries: 0 });
      const ask = (model: string) =>
        client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 });
      assert.equal((await ask('a')).usage?.completion_tokens, 2);

      writeFileSync(file, config('a', 'b'));
      child.kill('SIGHUP');
      await seen((l) => l.msg === 'configuration reloaded');
      assert.equal((await ask('b')).usage?.completion_tokens, 2);

      writeFileSync(file, 'pools: [this is not a pool map');
      child.kill('SIGHUP');
      await seen((l) => l.msg === 'reload rejected; the running configuration stays');
      // One SIGHUP, one reload, one line (the rejected one logs only its refusal).
      const reloads = seen.lines.filter((l) => l.msg === 'configuration reloaded');
      assert.equal(reloads.length, 1);
      assert.equal(reloads[0]!.pools, 'a, b');
      assert.equal((await ask('a')).usage?.completion_tokens, 2);

      const stream = await client.chat.completions.create({
        model: 'a',
        messages: [{ role: 'user', content: 'x' }],
        max_tokens: 150,
        stream: true,
      });
      let chunks = 0;
      for await (const c of stream) {
        if (c.choices[0]?.delta.content && ++chunks === 1) child.kill('SIGTERM');
      }
      assert.equal(chunks, 150, 'the stream in flight at SIGTERM completes');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
