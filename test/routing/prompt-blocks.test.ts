/**
 * The live prefix signal: the canonical prompt text of a request, and its chained hashes of full
 * 1024-character blocks (two prompts share hash k exactly when their first k+1 blocks are equal).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  PROMPT_BLOCK_CHARS,
  PROMPT_BLOCK_TOKENS,
  promptBlockHashes,
  renderPrompt,
} from '../../src/router/prompt-blocks.js';

const FIELD = '\u0000';
const RECORD = '\u0001';

/** A block of 1024 copies of one character. */
const block = (ch: string): string => ch.repeat(PROMPT_BLOCK_CHARS);

/** How many leading entries two hash lists share. */
function sharedLead(a: readonly number[], b: readonly number[]): number {
  let k = 0;
  while (k < a.length && k < b.length && a[k] === b[k]) k++;
  return k;
}

describe('renderPrompt', () => {
  it('renders chat messages as role, field separator, content, record separator', () => {
    const body = {
      model: 'm',
      temperature: 0.3,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
    };
    assert.equal(renderPrompt(body), `system${FIELD}Be brief.${RECORD}user${FIELD}Hi${RECORD}`);
    // Sampling parameters and the model name are not part of the prompt.
    assert.equal(
      renderPrompt({ ...body, model: 'other', temperature: 1, max_tokens: 9 }),
      renderPrompt(body),
    );
    assert.equal(renderPrompt(structuredClone(body)), renderPrompt(body));
  });

  it('puts tools first, as chat templates put them in the system prompt', () => {
    const tools = [{ type: 'function', function: { name: 'f', parameters: {} } }];
    const text = renderPrompt({ tools, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(text, `${JSON.stringify(tools)}${RECORD}user${FIELD}x${RECORD}`);
    assert.notEqual(text, renderPrompt({ messages: [{ role: 'user', content: 'x' }] }));
  });

  it('joins text parts as plain text and keeps other parts as JSON', () => {
    const image = { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } };
    const parts = [{ type: 'text', text: 'What is ' }, { type: 'text', text: 'this?' }, image];
    assert.equal(
      renderPrompt({ messages: [{ role: 'user', content: parts }] }),
      `user${FIELD}What is this?${JSON.stringify(image)}${RECORD}`,
    );
    // The same text as one string renders the same; a different image does not.
    assert.equal(
      renderPrompt({ messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }] }] }),
      renderPrompt({ messages: [{ role: 'user', content: 'What is this?' }] }),
    );
    const other = { type: 'image_url', image_url: { url: 'data:image/png;base64,BBBB' } };
    assert.notEqual(
      renderPrompt({ messages: [{ role: 'user', content: [parts[0], parts[1], other] }] }),
      renderPrompt({ messages: [{ role: 'user', content: parts }] }),
    );
  });

  it('renders an assistant turn without content (tool calls) by role alone', () => {
    assert.equal(
      renderPrompt({
        messages: [
          { role: 'assistant', content: null },
          { role: 'tool', content: 'ok' },
        ],
      }),
      `assistant${FIELD}${RECORD}tool${FIELD}ok${RECORD}`,
    );
  });

  it('takes a completions prompt string as it is, and joins a prompt array', () => {
    assert.equal(renderPrompt({ prompt: 'Once upon a time' }), 'Once upon a time');
    assert.equal(renderPrompt({ prompt: ['a', 'b'] }), `a${RECORD}b`);
    assert.equal(renderPrompt({ prompt: [1, 2, 3] }), `1${RECORD}2${RECORD}3`);
    assert.equal(renderPrompt({}), '');
  });
});

describe('promptBlockHashes', () => {
  it('gives one hash per full block of 1024 characters (256 tokens at 4 per token)', () => {
    assert.equal(PROMPT_BLOCK_CHARS, 1024);
    assert.equal(PROMPT_BLOCK_TOKENS, 256);
    const text = 'x'.repeat(5000);
    for (const [chars, blocks] of [
      [0, 0],
      [1023, 0],
      [1024, 1],
      [2047, 1],
      [2048, 2],
      [5000, 4],
    ] as const) {
      assert.equal(promptBlockHashes(text.slice(0, chars)).length, blocks, `${chars} chars`);
    }
    // A partial tail block adds no hash and changes none.
    const four = block('a') + block('b') + block('c') + block('d');
    assert.deepEqual(promptBlockHashes(`${four}tail`), promptBlockHashes(four));
    for (const h of promptBlockHashes(four)) assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
  });

  it('chains: prompts sharing their first k blocks share exactly k leading hashes', () => {
    const blocks = ['a', 'b', 'c', 'd', 'e'].map(block);
    const base = promptBlockHashes(blocks.join(''));
    assert.equal(base.length, 5);
    assert.equal(new Set(base).size, 5);
    for (let k = 0; k < 5; k++) {
      // Same blocks, but block k replaced: every later block is equal text, yet only k hashes match.
      const changed = [...blocks];
      changed[k] = block('z');
      const hashes = promptBlockHashes(changed.join(''));
      assert.equal(sharedLead(base, hashes), k, `divergence at block ${k}`);
      for (let j = k; j < 5; j++) assert.notEqual(hashes[j], base[j], `block ${j} after a change at ${k}`);
    }
    // One character, the last of block 1, is enough.
    const text = blocks.join('');
    const at = 2 * PROMPT_BLOCK_CHARS - 1;
    const oneChar = promptBlockHashes(`${text.slice(0, at)}!${text.slice(at + 1)}`);
    assert.equal(sharedLead(base, oneChar), 1);
  });

  it('a block is identified by its position in the chain, not by its text alone', () => {
    const h = promptBlockHashes(block('a') + block('a') + block('a'));
    assert.equal(new Set(h).size, 3);
    assert.deepEqual(promptBlockHashes(block('a')), h.slice(0, 1));
  });

  it('a conversation extended by a turn keeps every full block hash of the previous turn', () => {
    const system = 'You are a careful assistant. '.repeat(80); // 2320 characters
    const turn1 = {
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: 'First question?' },
      ],
    };
    const turn2 = {
      messages: [
        ...turn1.messages,
        { role: 'assistant', content: 'A long answer. '.repeat(100) },
        { role: 'user', content: 'Second question?' },
      ],
    };
    const h1 = promptBlockHashes(renderPrompt(turn1));
    const h2 = promptBlockHashes(renderPrompt(turn2));
    assert.equal(h1.length, 2);
    assert.ok(h2.length > h1.length);
    assert.deepEqual(h2.slice(0, h1.length), h1);
  });
});
