/**
 * The gateway's debug log explains every routing decision: candidates offered, what each filter
 * removed, each candidate's scores, the pick and its reason.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { pino } from 'pino';
import { validateConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway/server.js';
import type { DecisionRecord } from '../../src/router/router.js';
import { emulatedPool } from '../helpers/gateway.js';

describe('decision records in the debug log', () => {
  const lines: Record<string, unknown>[] = [];
  let gw: Gateway;
  let client: OpenAI;
  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l));
        done();
      },
    });
    const config = validateConfig({
      server: { port: 0, host: '127.0.0.1' },
      health: { intervalMs: 0, scrapeIntervalMs: 0 },
      router: { profile: 'default' },
      pools: { m: emulatedPool('m', ['e0', 'e1', 'e2']) },
    });
    gw = await Gateway.start({ config, logger: pino({ level: 'debug' }, sink), processMetrics: false });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: 'unused', maxRetries: 0 });
  });
  after(() => gw.shutdown(1_000));

  it('logs one `routed` line per decision whose pick is the endpoint that answered', async () => {
    const { response } = await client.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 2 })
      .withResponse();
    const requestId = response.headers.get('x-request-id');
    const routed = lines.filter((l) => l.msg === 'routed' && l.requestId === requestId);
    assert.equal(routed.length, 1);
    const d = routed[0]!.decision as DecisionRecord;
    assert.equal(d.offered, 3);
    assert.deepEqual(d.removed, []);
    assert.deepEqual(d.scorers, ['predicted-ttft-scorer']);
    assert.deepEqual(
      d.scored.map((s) => s.endpoint),
      ['e0', 'e1', 'e2'],
    );
    // An idle fleet: every candidate predicts the same TTFT, so all score 1 and the tie is seeded.
    assert.deepEqual(
      d.scored.map((s) => s.scores),
      [[1], [1], [1]],
    );
    assert.equal(d.chosen, response.headers.get('x-switchyard-endpoint'));
    assert.equal(d.reason, 'least-ttft');
    assert.equal(d.cachedTokens, 0);
  });
});
