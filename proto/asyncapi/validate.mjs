// Validates an AsyncAPI document with the official parser and prints every
// diagnostic as one JSON line; exits 1 when any has severity error (0).
import { Parser, fromFile } from '@asyncapi/parser';

const path = process.argv[2];
if (!path) {
  console.error('usage: node validate.mjs <asyncapi.yaml>');
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === 0) errors++;
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
if (!document || errors > 0) {
  console.error(`${path}: ${errors} error(s)`);
  process.exit(1);
}
console.error(`${path}: valid AsyncAPI ${document.version()} (${document.channels().length} channels, ${document.operations().length} operations)`);
