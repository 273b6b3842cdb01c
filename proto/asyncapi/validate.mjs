// Validates an AsyncAPI document with the official parser, then every
// message example (payload and headers) against the message's schemas with
// ajv, and prints every diagnostic as one JSON line; exits 1 when any has
// severity error (0).
import { Parser, fromFile } from '@asyncapi/parser';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const path = process.argv[2];
if (!path) {
  console.error('usage: node validate.mjs <asyncapi.yaml>');
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
let errors = 0;
const report = (d) => {
  if (d.severity === 0) errors++;
  console.log(JSON.stringify(d));
};
for (const d of diagnostics) {
  report({ severity: d.severity, code: d.code, message: d.message, path: d.path });
}
if (document) {
  // The parser resolved every $ref; strict off: the schemas carry the
  // parser's x-parser-* annotations.
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  for (const msg of document.allMessages()) {
    msg.examples().all().forEach((ex, i) => {
      for (const [part, schema, value] of [
        ['payload', msg.payload(), ex.payload()],
        ['headers', msg.headers(), ex.headers()],
      ]) {
        if (!schema || value === undefined) continue;
        const valid = ajv.validate(schema.json(), value);
        for (const e of valid ? [] : ajv.errors) {
          report({ severity: 0, code: 'example-invalid', message: `${e.instancePath || '/'} ${e.message}`,
            path: ['components', 'messages', msg.id(), 'examples', i, part] });
        }
      }
    });
  }
}
if (!document || errors > 0) {
  console.error(`${path}: ${errors} error(s)`);
  process.exit(1);
}
console.error(`${path}: valid AsyncAPI ${document.version()} (${document.channels().length} channels, ${document.operations().length} operations)`);
