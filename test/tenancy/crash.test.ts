/**
 * The usage ledger across a kill -9, as docs/tenancy.md promises it: a `switchyard serve` process
 * (the built CLI) on a SQLite file is killed with SIGKILL while requests' rows may still be
 * buffered, and restarted on the same file. Every request that finished more than one flush
 * interval (plus a margin) before the kill is counted, nothing that was never sent is, and a client
 * that replays the same requests (same `x-request-id`) after the restart gets each one counted
 * exactly once, because rows are keyed by request id.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { FakeUpstream } from '../helpers/fake-upstream.js';

/** The built CLI (this file runs as dist/test/tenancy/crash.test.js). */
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const ADMIN_KEY = `sk-admin-${randomBytes(12).toString('hex')}`;
const FLUSH_MS = 1_000;
/** Slack for a row appended after the client saw its answer and for a slow write on a busy machine. */
const MARGIN_MS = 750;
const N = 40;
const GAP_MS = 75;
const ANSWER = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 0,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 },
};

interface Serve {
  readonly proc: ChildProcess;
  readonly origin: string;
}

/** `switchyard serve --config FILE --port 0`; resolves with its origin once it logs that it listens. */
async function serve(config: string): Promise<Serve> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', config, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SWY_TEST_ADMIN_KEY: ADMIN_KEY },
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start within 10 s: ${stderr}`)), 10_000);
    proc.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    let buf = '';
    // Drained for the process's whole life, so a full pipe never blocks its logging.
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let rec: { msg?: string; url?: string } = {};
        try {
          rec = JSON.parse(line);
        } catch {
          continue;
        }
        const port = rec.msg?.startsWith('switchyard listening') ? /:(\d+)\/v1$/.exec(rec.url ?? '') : null;
        if (port !== null) {
          clearTimeout(timer);
          resolve(Number(port[1]));
        }
      }
    });
  });
  return { proc, origin: `http://127.0.0.1:${port}` };
}

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

// biome-ignore lint/suspicious/noExplicitAny: admin API answers, read loosely
async function admin(s: Serve, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(s.origin + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = await res.json();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Requests the ledger holds for `tenant`, by the admin usage API. */
async function usageRequests(s: Serve, tenant: string): Promise<number> {
  const u = await admin(s, 'GET', `/admin/v1/usage?tenant=${tenant}`);
  return u.data.reduce((a: number, b: { requests: number }) => a + b.requests, 0);
}

/** The request ids of `tenant`'s rows, read from the file itself. */
function storedIds(file: string, tenant: string): string[] {
  const db = new Database(file, { fileMustExist: true });
  try {
    return (
      db.prepare('SELECT request_id FROM usage WHERE tenant = ?').all(tenant) as { request_id: string }[]
    )
      .map((r) => r.request_id)
      .sort();
  } finally {
    db.close();
  }
}

describe('tenancy: the usage ledger survives a kill -9', () => {
  const fake = new FakeUpstream();
  let dir = '';
  let config = '';
  let dbFile = '';
  const running: ChildProcess[] = [];

  before(async () => {
    fake.mode = { kind: 'json', body: ANSWER };
    const upstream = await fake.listen();
    dir = mkdtempSync(join(os.tmpdir(), 'switchyard-crash-'));
    dbFile = join(dir, 'switchyard.db');
    config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      [
        'server: { host: 127.0.0.1 }',
        'health: { intervalMs: 0, scrapeIntervalMs: 0 }',
        'auth:',
        '  keys:',
        // The key reaches the gateway through its environment.
        `    - { name: root, key: "\${SWY_TEST_ADMIN_KEY}", roles: [admin] }`,
        `database: { url: "sqlite:${dbFile}", ledgerFlushMs: ${FLUSH_MS} }`,
        'pools:',
        `  m: { endpoints: [{ name: m-0, kind: http, url: "${upstream}" }] }`,
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(running.map(exited));
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every row older than one flush interval, and counts a replayed request id once', async () => {
    const first = await serve(config);
    running.push(first.proc);
    await admin(first, 'POST', '/admin/v1/tenants', { id: 'acme' });
    const key = (await admin(first, 'POST', '/admin/v1/keys', { tenant: 'acme', name: 'app' })).key as string;
    const client = new OpenAI({ baseURL: `${first.origin}/v1`, apiKey: key, maxRetries: 0, timeout: 5_000 });

    const run = randomBytes(4).toString('hex');
    const ids = Array.from({ length: N }, (_, i) => `crash-${run}-${i}`);
    const finishedMs: number[] = [];
    const send = async (c: OpenAI, id: string) => {
      const r = await c.chat.completions
        .create(
          { model: 'm', messages: [{ role: 'user', content: 'hello' }] },
          { headers: { 'x-request-id': id } },
        )
        .withResponse();
      assert.equal(r.response.headers.get('x-request-id'), id, 'the gateway kept the request id');
    };
    for (const id of ids) {
      await send(client, id);
      finishedMs.push(Date.now());
      await new Promise((r) => setTimeout(r, GAP_MS));
    }
    first.proc.kill('SIGKILL');
    const killMs = Date.now();
    await exited(first.proc);
    assert.equal(first.proc.signalCode, 'SIGKILL');

    const second = await serve(config);
    running.push(second.proc);
    const survived = storedIds(dbFile, 'acme');
    const mustHave = ids.filter((_, i) => finishedMs[i]! < killMs - FLUSH_MS - MARGIN_MS);
    assert.ok(mustHave.length >= 10, `only ${mustHave.length} requests finished early enough to check`);
    for (const id of mustHave)
      assert.ok(survived.includes(id), `${id} finished before the last interval but was lost`);
    assert.ok(survived.length <= N, `${survived.length} rows for ${N} requests`);
    for (const id of survived) assert.ok(ids.includes(id), `a row for ${id}, never sent`);
    // The admin API's count is the file's: nothing counted twice on the way.
    assert.equal(await usageRequests(second, 'acme'), survived.length);

    // A client replays every request after the crash with the same ids: each is counted once.
    const again = new OpenAI({ baseURL: `${second.origin}/v1`, apiKey: key, maxRetries: 0, timeout: 5_000 });
    for (const id of ids) await send(again, id);
    second.proc.kill('SIGTERM'); // a graceful stop writes the last batch
    await exited(second.proc);
    assert.equal(second.proc.exitCode, 0);
    assert.deepEqual(storedIds(dbFile, 'acme'), [...ids].sort());
  });
});
