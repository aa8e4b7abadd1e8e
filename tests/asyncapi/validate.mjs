// Validate an AsyncAPI document with the official parser, @asyncapi/parser.
//
//     node tests/asyncapi/validate.mjs document.json    (or the document on stdin)
//
// Prints the errors and warnings found (severity, rule, path, message) on stderr, and
// exits with 1 if there is an error, 2 if the document cannot be read, 0 otherwise.
// Information and hints (such as "a later AsyncAPI version exists") are left out.
import { readFile } from "node:fs/promises";
import parserModule from "@asyncapi/parser";

const { Parser, DiagnosticSeverity } = parserModule;

async function readInput(path) {
  if (path !== undefined && path !== "-") {
    return readFile(path, "utf8");
  }
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

let text;
try {
  text = await readInput(process.argv[2]);
} catch (error) {
  console.error(`cannot read the document: ${error.message}`);
  process.exit(2);
}

const { document, diagnostics } = await new Parser().parse(text);
const shown = { [DiagnosticSeverity.Error]: "error", [DiagnosticSeverity.Warning]: "warning" };
for (const diagnostic of diagnostics) {
  const severity = shown[diagnostic.severity];
  if (severity !== undefined) {
    const where = diagnostic.path.length ? diagnostic.path.join(".") : "(document)";
    console.error(`${severity}: ${diagnostic.code}: ${where}: ${diagnostic.message}`);
  }
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (errors.length > 0 || document === undefined) {
  console.error(`invalid AsyncAPI document: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`valid AsyncAPI ${document.version()} document`);
