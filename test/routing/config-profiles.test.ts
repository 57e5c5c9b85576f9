/**
 * Routing profiles from the config: a pool's own `routing`, named `router.profiles`, and a clear
 * error for an unknown policy name.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway/server.js';
import { createLogger } from '../../src/obs/logger.js';
import { type TestGateway, emulatedPool, startGateway } from '../helpers/gateway.js';

describe('routing profiles in the config', () => {
  let t: TestGateway;
  before(async () => {
    t = await startGateway({
      router: {
        profile: 'least-outstanding',
        profiles: { rotate: { filters: ['healthy-filter'], picker: 'round-robin-picker' } },
      },
      pools: {
        a: { ...emulatedPool('a', ['a0', 'a1', 'a2']), routing: 'rotate' },
        b: { ...emulatedPool('b', ['b0', 'b1']), routing: 'session' },
        c: emulatedPool('c', ['c0']),
      },
    });
  });
  after(() => t.close());

  const endpointOf = async (model: string, headers: Record<string, string> = {}): Promise<string | null> => {
    const { response } = await t.client.chat.completions
      .create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }, { headers })
      .withResponse();
    return response.headers.get('x-switchyard-endpoint');
  };

  it('each pool routes with its own profile: a named one, a built-in one, the global default', async () => {
    const rotation: (string | null)[] = [];
    for (let i = 0; i < 6; i++) rotation.push(await endpointOf('a'));
    assert.deepEqual(rotation, ['a0', 'a1', 'a2', 'a0', 'a1', 'a2']);
    const rt = t.gw.current;
    const reasons = (pool: string): string => rt.pools.find((p) => p.name === pool)!.router.lastReason;
    assert.equal(reasons('a'), 'round-robin-picker');
    await endpointOf('b', { 'x-switchyard-session': 's1' });
    assert.equal(reasons('b'), 'new-session');
    await endpointOf('c');
    assert.equal(reasons('c'), 'only-candidate');
  });

  it('an unknown policy name fails at start, naming the known ones', async () => {
    const config = validateConfig({
      server: { port: 0, host: '127.0.0.1' },
      health: { intervalMs: 0, scrapeIntervalMs: 0 },
      pools: { a: { ...emulatedPool('a', ['x0']), routing: 'fastest' } },
    });
    await assert.rejects(
      Gateway.start({ config, logger: createLogger('silent'), processMetrics: false }),
      /unknown routing policy "fastest"; known: .*predicted-ttft/,
    );
  });
});
