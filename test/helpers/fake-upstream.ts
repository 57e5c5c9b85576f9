/**
 * A fake OpenAI-compatible upstream for fault tests: a real HTTP server on loopback whose behaviour
 * each test sets (answer, fail with a status, hang, hold until released, stream). It records every
 * request body it gets, in arrival order.
 */
import {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  createServer,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeMode =
  | { kind: 'json'; body: unknown; status?: number }
  | { kind: 'status'; status: number; body?: string }
  | { kind: 'hang' }
  /** Answer `body` (200) only when the test calls {@link FakeUpstream.release}. */
  | { kind: 'held'; body: unknown }
  | { kind: 'stream'; events: string[]; delayMs?: number };

export class FakeUpstream {
  readonly received: Record<string, unknown>[] = [];
  readonly paths: string[] = [];
  readonly headers: IncomingHttpHeaders[] = [];
  mode: FakeMode = { kind: 'status', status: 500 };
  private readonly server: Server;
  private readonly open = new Set<ServerResponse>();
  private readonly holding: (() => void)[] = [];

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  /** Requests held (mode `held`) and not yet released. */
  get held(): number {
    return this.holding.length;
  }

  /** Answers the `n` oldest held requests (all by default); returns how many were answered. */
  release(n = this.holding.length): number {
    const answer = this.holding.splice(0, n);
    for (const send of answer) send();
    return answer.length;
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = '';
    for await (const chunk of req) text += chunk;
    this.paths.push(req.url ?? '');
    this.headers.push(req.headers);
    if (text) this.received.push(JSON.parse(text) as Record<string, unknown>);
    const m = this.mode;
    if (m.kind === 'hang') {
      this.open.add(res);
      return;
    }
    if (m.kind === 'held') {
      this.open.add(res);
      this.holding.push(() => {
        this.open.delete(res);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(m.body));
      });
      return;
    }
    if (m.kind === 'status') {
      res.writeHead(m.status, { 'content-type': 'application/json' });
      res.end(m.body ?? JSON.stringify({ error: { message: `fake ${m.status}`, type: 'server_error' } }));
      return;
    }
    if (m.kind === 'json') {
      res.writeHead(m.status ?? 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(m.body));
      return;
    }
    this.open.add(res);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const e of m.events) {
      res.write(`data: ${e}\n\n`);
      if (m.delayMs) await new Promise((r) => setTimeout(r, m.delayMs));
    }
    res.end();
    this.open.delete(res);
  }
}
