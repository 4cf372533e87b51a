// For tests/test_pages.py: run sortable.js's ordering under Node. node sortable_harness.js SORTABLE_JS CASES_JSON
// CASES_JSON: [{"texts": [...], "descending": bool}] -> JSON list of row orders on stdout.
"use strict";
const fs = require("fs");
const [script, casesJson] = process.argv.slice(2);
const sandbox = { module: { exports: {} } };
require("vm").runInNewContext(fs.readFileSync(script, "utf8"), sandbox, { filename: script });
const { sortOrder } = sandbox.module.exports;
const cases = JSON.parse(fs.readFileSync(casesJson, "utf8"));
process.stdout.write(JSON.stringify(cases.map((c) => sortOrder(c.texts, c.descending))));
