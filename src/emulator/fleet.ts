/**
 * @module emulator/fleet
 * Emulated engines started in-process by a config (the demo). Each one is a real HTTP server on
 * loopback; the gateway reaches it through the ordinary http engine, as it would a vLLM server.
 * On reload an engine with the same name, profile and served model keeps running.
 */
import type { Clock } from '../core/clock.js';
import { getProfile } from '../engine-model/profiles.js';
import { EmulatedEngineServer } from './server.js';

/** What the fleet needs to start one emulated endpoint. */
export interface EmulatedSpec {
  readonly name: string;
  readonly profile: string;
  readonly servedModelName: string;
  readonly port: number;
  /** Start cold, serving after this long (default: warm at once). */
  readonly coldStartMs?: number;
}

interface Running {
  readonly key: string;
  readonly server: EmulatedEngineServer;
  readonly url: string;
}

/** Starts, keeps and stops the emulated engines of the current config. */
export class EmulatorFleet {
  private readonly running = new Map<string, Running>();

  constructor(private readonly clock?: Clock) {}

  /** Returns the base URL of the engine for `spec`, starting it if needed. */
  async ensure(spec: EmulatedSpec): Promise<string> {
    const key = `${spec.profile}|${spec.servedModelName}|${spec.port}|${spec.coldStartMs}`;
    const current = this.running.get(spec.name);
    if (current !== undefined && current.key === key) return current.url;
    if (current !== undefined) await this.stop(spec.name);
    const profile = getProfile(spec.profile);
    const cold = spec.coldStartMs;
    const server = new EmulatedEngineServer({
      profile: cold === undefined ? profile : { ...profile, coldStartMs: cold },
      ...(cold === undefined ? {} : { coldStart: true }),
      servedModelName: spec.servedModelName,
      ...(this.clock ? { clock: this.clock } : {}),
    });
    const url = await server.listen(spec.port);
    this.running.set(spec.name, { key, server, url });
    return url;
  }

  /** The running engine of an endpoint (tests read its engine model). */
  get(name: string): EmulatedEngineServer | undefined {
    return this.running.get(name)?.server;
  }

  /** Every running engine, by endpoint name. */
  servers(): Map<string, EmulatedEngineServer> {
    return new Map([...this.running].map(([name, r]) => [name, r.server]));
  }

  /** Stops every engine whose name is not in `keep`. */
  async retain(keep: ReadonlySet<string>): Promise<void> {
    for (const name of [...this.running.keys()]) if (!keep.has(name)) await this.stop(name);
  }

  async stop(name: string): Promise<void> {
    const r = this.running.get(name);
    if (r === undefined) return;
    this.running.delete(name);
    await r.server.close();
  }

  async closeAll(): Promise<void> {
    await this.retain(new Set());
  }
}
