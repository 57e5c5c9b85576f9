/** The size rules of src/: no function over 70 lines, no file over 600 lines. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const MAX_FUNCTION_LINES = 70;
const MAX_FILE_LINES = 600;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** A function-like node's name for the report: its own, its variable's or property's, else its kind. */
function nameOf(node: ts.SignatureDeclaration, sf: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  if (node.name !== undefined) return node.name.getText(sf);
  const parent = node.parent;
  if (
    (ts.isVariableDeclaration(parent) ||
      ts.isPropertyAssignment(parent) ||
      ts.isPropertyDeclaration(parent)) &&
    parent.name !== undefined
  )
    return parent.name.getText(sf);
  return `<${ts.SyntaxKind[node.kind]}>`;
}

/** Every breach of the two rules in one file, as `path:line name: N lines`. */
function oversized(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const rel = relative(root, file);
  const line = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const problems: string[] = [];
  const fileLines = text.endsWith('\n') ? sf.getLineStarts().length - 1 : sf.getLineStarts().length;
  if (fileLines > MAX_FILE_LINES) problems.push(`${rel}: ${fileLines} lines (most ${MAX_FILE_LINES})`);
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const start = line(node.getStart(sf));
      const lines = line(node.getEnd()) - start + 1;
      if (lines > MAX_FUNCTION_LINES)
        problems.push(`${rel}:${start} ${nameOf(node, sf)}: ${lines} lines (most ${MAX_FUNCTION_LINES})`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return problems;
}

describe('sizes', () => {
  it(`src/ has no function over ${MAX_FUNCTION_LINES} lines and no file over ${MAX_FILE_LINES}`, () => {
    assert.deepEqual(files(join(root, 'src')).flatMap(oversized), []);
  });
});
