/** Cascade checks on a buffered chat answer: empty, refusal, invalid JSON, in the configured order. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CascadeCheck } from '../../src/config/schema.js';
import { failedCheck, wantsJson } from '../../src/tiers/cascade.js';

const ALL: readonly CascadeCheck[] = ['empty', 'refusal', 'invalid-json'];

const answer = (...messages: Record<string, unknown>[]) => ({
  object: 'chat.completion',
  choices: messages.map((message, index) => ({ index, message: { role: 'assistant', ...message } })),
});
const text = (content: string | null) => answer({ content });

describe('cascade checks', () => {
  it('an answer with text passes every check', () => {
    assert.equal(failedCheck(ALL, text('Paris is the capital of France.'), false), null);
  });

  it('empty: no text, blank text, no choices, or not a completion at all', () => {
    assert.equal(failedCheck(ALL, text(''), false), 'empty');
    assert.equal(failedCheck(ALL, text(' \n '), false), 'empty');
    assert.equal(failedCheck(ALL, text(null), false), 'empty');
    assert.equal(failedCheck(ALL, { choices: [] }, false), 'empty');
    assert.equal(failedCheck(ALL, null, false), 'empty');
  });

  it('a tool call without text is an answer, not an empty one', () => {
    const call = answer({
      content: null,
      tool_calls: [{ id: 't', type: 'function', function: { name: 'f' } }],
    });
    assert.equal(failedCheck(ALL, call, true), null);
  });

  it('refusal: the usual openings, and the refusal field', () => {
    for (const refusal of [
      "I can't help with that.",
      'I cannot assist with this request.',
      "I'm sorry, but I can’t provide that information.",
      'Sorry, I am unable to help with that.',
      'As an AI language model, I cannot generate that content.',
      "Unfortunately, we're not able to answer questions about this.",
      'I won’t be able to help with that.',
    ]) {
      assert.equal(failedCheck(ALL, text(refusal), false), 'refusal', refusal);
    }
    assert.equal(failedCheck(ALL, answer({ content: null, refusal: 'No.' }), false), 'refusal');
  });

  it('refusal: not fooled by helpful answers that use the same words', () => {
    for (const fine of [
      "Sure, I can help with that. Here's how.",
      "I can't help but notice the loop never ends; move the increment inside it.",
      `Here is the summary. ${'Detail. '.repeat(40)} I cannot assist further.`,
    ]) {
      assert.equal(failedCheck(ALL, text(fine), false), null, fine);
    }
  });

  it('invalid-json: only when JSON was requested', () => {
    assert.equal(failedCheck(ALL, text('{"city": "Paris"}'), true), null);
    assert.equal(failedCheck(ALL, text('```json\n{"city": "Paris"}\n```'), true), 'invalid-json');
    assert.equal(failedCheck(ALL, text('The city is Paris.'), true), 'invalid-json');
    assert.equal(failedCheck(ALL, text('The city is Paris.'), false), null);
  });

  it('runs only the configured checks, in their order, over every choice', () => {
    assert.equal(failedCheck(['empty'], text("I can't help with that."), false), null);
    assert.equal(failedCheck(['invalid-json', 'empty'], text(''), true), 'invalid-json');
    assert.equal(failedCheck(['empty', 'invalid-json'], text(''), true), 'empty');
    const second = answer({ content: 'Fine.' }, { content: 'I cannot help with that.' });
    assert.equal(failedCheck(ALL, second, false), 'refusal');
  });

  it('wantsJson reads response_format', () => {
    assert.equal(wantsJson({ response_format: { type: 'json_object' } }), true);
    assert.equal(wantsJson({ response_format: { type: 'json_schema', json_schema: {} } }), true);
    assert.equal(wantsJson({ response_format: { type: 'text' } }), false);
    assert.equal(wantsJson({ response_format: null }), false);
    assert.equal(wantsJson({}), false);
  });
});
