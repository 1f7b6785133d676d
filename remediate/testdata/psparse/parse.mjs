// parse.mjs: parse PowerShell files with tree-sitter-powershell (WASM, via
// web-tree-sitter) and print every ERROR or MISSING node as
//   FILE:LINE:COL: ERROR|MISSING <node type> near "<text>"
// Exit status: 0 all files parse cleanly, 1 syntax problems, 2 setup error.
// Usage: node --liftoff-only parse.mjs DIR_WITH_NODE_MODULES FILE...
// (--liftoff-only: V8 otherwise tiers up the 1 MB grammar WASM in the
// background and the process needs 10+ s to exit.)
// (DIR is $RELAYLOCK_PSPARSE, installed by .ci/setup.d/30-powershell-parse.sh.)
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const [dir, ...files] = process.argv.slice(2);
if (!dir || files.length === 0) {
  console.error('usage: node parse.mjs PSPARSE_DIR FILE...');
  process.exit(2);
}
let Parser, Language;
try {
  const require = createRequire(path.join(dir, 'package.json'));
  ({ Parser, Language } = require('web-tree-sitter'));
  await Parser.init();
  const wasm = path.join(path.dirname(require.resolve('tree-sitter-powershell/package.json')), 'tree-sitter-powershell.wasm');
  Language = await Language.load(wasm);
} catch (e) {
  console.error('psparse setup: ' + (e && e.stack || e));
  process.exit(2);
}
const parser = new Parser();
parser.setLanguage(Language);

let problems = 0;
for (const file of files) {
  const src = readFileSync(file, 'utf8');
  const tree = parser.parse(src);
  const report = (node, kind) => {
    problems++;
    const p = node.startPosition;
    const text = src.slice(node.startIndex, Math.min(node.endIndex, node.startIndex + 40)).replace(/\s+/g, ' ');
    console.log(`${file}:${p.row + 1}:${p.column + 1}: ${kind} ${node.type} near "${text}"`);
  };
  const walk = (node) => {
    if (node.isMissing) { report(node, 'MISSING'); return; }
    if (node.isError || node.type === 'ERROR') { report(node, 'ERROR'); return; }
    if (!node.hasError) return;
    for (let i = 0; i < node.childCount; i++) walk(node.child(i));
  };
  walk(tree.rootNode);
  if (tree.rootNode.hasError && problems === 0) {
    problems++;
    console.log(`${file}:1:1: ERROR tree has errors but no ERROR/MISSING node was found`);
  }
  tree.delete();
}
process.exit(problems > 0 ? 1 : 0);
