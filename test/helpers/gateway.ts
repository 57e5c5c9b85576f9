/**
 * Test harness: a real gateway on an ephemeral loopback port, built from a config object, with the
 * official `openai` client pointed at it.
 */
import OpenAI from 'openai';
import { validateConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway/server.js';
import { createLogger } from '../../src/obs/logger.js';

export interface TestGateway {
  gw: Gateway;
  client: OpenAI;
  /** Base URL without `/v1`. */
  origin: string;
  close(): Promise<void>;
}

/** Starts a gateway from a raw config object (defaults filled by the schema; port forced to 0). */
export async function startGateway(raw: Record<string, unknown>, apiKey = 'unused'): Promise<TestGateway> {
  const server = { ...(raw.server as Record<string, unknown> | undefined), port: 0, host: '127.0.0.1' };
  const health = {
    intervalMs: 0,
    scrapeIntervalMs: 0,
    ...(raw.health as Record<string, unknown> | undefined),
  };
  const config = validateConfig({ ...raw, server, health });
  const gw = await Gateway.start({ config, logger: createLogger('silent'), processMetrics: false });
  const client = new OpenAI({ baseURL: gw.baseUrl, apiKey, maxRetries: 0, timeout: 20_000 });
  return {
    gw,
    client,
    origin: `http://127.0.0.1:${gw.port}`,
    close: async () => {
      await gw.shutdown(1_000);
    },
  };
}

/** A one-pool config with emulated endpoints of a profile. */
export function emulatedPool(
  _model: string,
  names: string[],
  profile = 'qwen2.5-1.5b-h100',
): Record<string, unknown> {
  return { endpoints: names.map((name) => ({ name, kind: 'emulated', profile })) };
}

/** Polls `cond` every 5 ms until true or `timeoutMs` passes; returns whether it became true. */
export async function eventually(cond: () => boolean, timeoutMs = 3_000): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return cond();
}
