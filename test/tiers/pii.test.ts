/** The PII detector: what it catches, what it must not flag, checksums, and linear time on hostile input. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type PiiKind, detectPii, ibanValid, luhnValid } from '../../src/tiers/pii.js';

const POSITIVES: readonly (readonly [string, PiiKind])[] = [
  ['write to jane.doe+tag@example.co.uk please', 'email'],
  ['Mail: OPS@Example.ORG.', 'email'],
  ['call +44 20 7946 0958 tomorrow', 'phone'],
  ['+1 (555) 123-4567', 'phone'],
  ['my number is +4915112345678', 'phone'],
  ['office: (555) 123-4567', 'phone'],
  ['cell 555-123-4567, evenings', 'phone'],
  ['555.123.4567', 'phone'],
  ['card 4111 1111 1111 1111 exp 12/27', 'card'],
  ['4111-1111-1111-1111', 'card'],
  ['5555555555554444', 'card'],
  ['amex 3782 822463 10005', 'card'],
  ['4111 1111 1111 1111 12 27', 'card'],
  ['ref 12 4111 1111 1111 1111', 'card'],
  ['IBAN DE89 3704 0044 0532 0130 00 thanks', 'iban'],
  ['GB82WEST12345698765432', 'iban'],
  ['de89370400440532013000', 'iban'],
  ['SSN 123-45-6789', 'ssn'],
  ['ssn 123 45 6789', 'ssn'],
  ['the box is at 192.168.1.20', 'ipv4'],
  ['resolver 8.8.8.8.', 'ipv4'],
];

const NEGATIVES: readonly string[] = [
  'Summarise the plot of Hamlet in three sentences.',
  'There are 42 apples and 7 pears; Python 3.10 was released in 2021.',
  'card 4111 1111 1111 1112', // fails Luhn
  '1111111111111117', // passes Luhn, but no card network starts with 1
  '3 5 2 6 4 1 7 8 9 0 2 4 6 8 1 3', // small numbers never form a card window
  'DE88 3704 0044 0532 0130 00', // IBAN check digits wrong
  '000-12-3456 and 666-12-3456 and 123-00-4567 and 900-12-3456', // impossible SSNs
  'on 2024-01-15 at 12:30, order 12345',
  'user@localhost',
  'see example.com',
  '256.1.1.1',
  'version 1.2.3.4.5',
  'phone 555-1234', // seven digits: too short to tell from other numbers
];

describe('PII detector', () => {
  for (const [text, kind] of POSITIVES) {
    it(`finds ${kind} in ${JSON.stringify(text)}`, () => assert.equal(detectPii(text), kind));
  }

  it('flags none of the ordinary texts', () => {
    assert.deepEqual(
      NEGATIVES.filter((t) => detectPii(t) !== null),
      [],
    );
  });

  it('checks Luhn and IBAN mod-97', () => {
    assert.equal(luhnValid('79927398713'), true);
    assert.equal(luhnValid('79927398710'), false);
    assert.equal(luhnValid('1111111111111117'), true);
    assert.equal(ibanValid('GB82WEST12345698765432'), true);
    assert.equal(ibanValid('GB82WEST12345698765431'), false);
    assert.equal(ibanValid('GB82WEST1234'), false, 'too short for any country');
  });

  it('stays linear on hostile input', () => {
    const hostile = [
      `${'a.'.repeat(100_000)}@`,
      `${'a'.repeat(200_000)}@b`,
      '1 '.repeat(100_000),
      '1-'.repeat(100_000),
      '+1'.repeat(100_000),
      'AB12 '.repeat(50_000),
      '1.1.'.repeat(50_000),
    ];
    for (const text of hostile) {
      const start = performance.now();
      detectPii(text);
      const ms = performance.now() - start;
      // Quadratic behaviour on 200 000 characters takes minutes; linear takes milliseconds.
      assert.ok(ms < 1_000, `${JSON.stringify(text.slice(0, 12))}… took ${ms.toFixed(0)} ms`);
    }
  });
});
