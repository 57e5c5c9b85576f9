/** A request's cancellation behaves as AbortController/AbortSignal do for the gateway's listeners. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Cancellation } from '../../src/core/abort.js';

describe('Cancellation', () => {
  it('calls each listener once, in order, with onabort first; once-listeners are removed', () => {
    const c = new Cancellation();
    const seen: string[] = [];
    const a = (): void => void seen.push('a');
    c.signal.onabort = () => void seen.push('onabort');
    c.signal.addEventListener('abort', a, { once: true });
    c.signal.addEventListener('abort', a); // a duplicate is ignored, as by EventTarget
    c.signal.addEventListener('abort', { handleEvent: (ev) => void seen.push(`obj:${ev.type}`) });
    const removed = (): void => void seen.push('removed');
    c.signal.addEventListener('abort', removed);
    c.signal.removeEventListener('abort', removed);
    assert.equal(c.signal.aborted, false);
    c.signal.throwIfAborted();
    c.abort();
    c.abort(); // the second call is a no-op
    assert.deepEqual(seen, ['onabort', 'a', 'obj:abort']);
    assert.equal(c.signal.aborted, true);
    assert.equal((c.signal.reason as DOMException).name, 'AbortError');
    assert.throws(() => c.signal.throwIfAborted(), { name: 'AbortError' });
  });

  it('keeps the reason given; a listener added after the abort is never called', () => {
    const c = new Cancellation();
    c.abort('gone');
    assert.equal(c.signal.reason, 'gone');
    let called = false;
    c.signal.addEventListener('abort', () => {
      called = true;
    });
    c.abort();
    assert.equal(called, false);
  });

  it('skips a listener removed by an earlier one during the dispatch', () => {
    const c = new Cancellation();
    const seen: string[] = [];
    const second = (): void => void seen.push('second');
    c.signal.addEventListener('abort', () => {
      seen.push('first');
      c.signal.removeEventListener('abort', second);
      c.signal.addEventListener('abort', () => void seen.push('added late'));
    });
    c.signal.addEventListener('abort', second, { once: true });
    c.abort();
    assert.deepEqual(seen, ['first']);
  });

  it('cancels an undici request in flight', async () => {
    const server = createServer(() => {}); // never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const agent = new Agent();
    try {
      const c = new Cancellation();
      const port = (server.address() as AddressInfo).port;
      const pending = request(`http://127.0.0.1:${port}/`, { dispatcher: agent, signal: c.signal });
      setTimeout(() => c.abort(), 50);
      await assert.rejects(pending, { name: 'AbortError' });
    } finally {
      await agent.close().catch(() => {});
      server.closeAllConnections();
      server.close();
    }
  });
});
