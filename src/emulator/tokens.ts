/**
 * @module emulator/tokens
 * A deterministic approximate tokenizer for emulated engines: about one token per word piece of up
 * to six letters (≈ 4 characters of English), with ids derived by hashing. It gives prompts a
 * realistic token count and a block hash chain, so identical prefixes share KV blocks.
 */
import { fnv1a, mix32 } from '../core/hash.js';

const PIECE = /\s?[A-Za-z]{1,6}|\s?\d{1,3}|\s?[^\sA-Za-z\d]|\s+/g;

/** Token ids of `text` (deterministic; not any real model's vocabulary). */
export function tokenize(text: string): number[] {
  const ids: number[] = [];
  for (const m of text.matchAll(PIECE)) ids.push(fnv1a(m[0]));
  return ids;
}

/** Chained hashes of each full block of `blockSize` token ids: entry i covers tokens [0, (i+1)·blockSize). */
export function blockHashChain(ids: readonly number[], blockSize: number): number[] {
  const out: number[] = [];
  let parent = 0x9747b28c;
  for (let b = 0; (b + 1) * blockSize <= ids.length; b++) {
    let h = parent;
    for (let i = b * blockSize; i < (b + 1) * blockSize; i++) h = mix32(h, ids[i]!);
    out.push(h);
    parent = h;
  }
  return out;
}

const FILLER =
  ' the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were';
const FILLER_WORDS = FILLER.trim().split(' ');

/** `count` tokens of filler text, starting at word `offset` (so chunks of one stream continue). */
export function fillerText(count: number, offset: number): string {
  let out = '';
  for (let i = 0; i < count; i++) out += ` ${FILLER_WORDS[(offset + i) % FILLER_WORDS.length]}`;
  return out;
}
