// Parses each Mermaid file named on the command line with Mermaid's own parser.
// Exit 0 if all parse; prints the parser's error and exits 1 otherwise.
// Usage: node tests/mermaid/check.mjs FILE.mmd... (after `npm ci --prefix tests/mermaid`)
import { JSDOM } from 'jsdom';
import fs from 'node:fs';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    await mermaid.parse(fs.readFileSync(file, 'utf8'));
    console.log(`${file}: ok`);
  } catch (e) {
    failed++;
    console.log(`${file}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
