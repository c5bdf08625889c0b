// The GraphQL-over-HTTP spec's own audit (npm graphql-http, by the author of graphql-ws) against
// a live server at $ENCORE_URL. Prints one line per audit and a JSON summary as the last line.
//
// Every request carries `Apollo-Require-Preflight`: the server refuses requests a browser could
// send cross-site without a CORS preflight (CSRF prevention, as Apollo Router does), and the
// audit's GET requests are exactly such requests. Real clients send the header (Apollo Client
// can be configured to) or use POST with JSON, which is never simple.
import { auditServer } from 'graphql-http';

const url = `${process.env.ENCORE_URL}/graphql`;
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('apollo-require-preflight', 'true');
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
const summary = { ok: 0, notice: 0, warn: 0, error: 0, notes: [] };
for (const result of results) {
  summary[result.status] += 1;
  const line = `${result.status.toUpperCase().padEnd(5)} ${result.id} ${result.name}`;
  if (result.status === 'ok') {
    console.log(line);
  } else {
    let detail = result.reason;
    try {
      const response = result.response;
      if (response) detail += ` (HTTP ${response.status})`;
    } catch {}
    console.log(`${line}: ${detail}`);
    summary.notes.push({ id: result.id, status: result.status, name: result.name });
  }
}
console.log(JSON.stringify(summary));
