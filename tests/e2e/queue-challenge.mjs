// The README's proof-of-work helper, run as a browser would (Web Crypto), against a live server:
// sign up, ask for the concert's queue challenge, solve it, enter the waiting room.
// Env: ENCORE_URL, CONCERT_ID. Prints one JSON line: { difficulty, tries, status }.

// Solve a queue challenge in the browser (Web Crypto).
async function solveChallenge({ nonce, difficulty }) {
  const encoder = new TextEncoder();
  for (let n = 0; ; n++) {
    const solution = String(n);
    const hash = new Uint8Array(
      await crypto.subtle.digest("SHA-256", encoder.encode(`${nonce}:${solution}`)),
    );
    let bits = 0;
    for (const byte of hash) {
      if (byte === 0) { bits += 8; continue; }
      bits += Math.clz32(byte) - 24;
      break;
    }
    if (bits >= difficulty) return solution;
  }
}

const url = `${process.env.ENCORE_URL}/graphql`;
async function gql(query, variables, token) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const name = `pow_${Math.random().toString(36).slice(2, 10)}`;
const { signUp } = await gql(
  "mutation($u: String!, $e: String!) { signUp(username: $u, email: $e, password: \"password-123\") { token } }",
  { u: name, e: `${name}@fans.test` },
);
const { queueChallenge } = await gql(
  "query($c: ID!) { queueChallenge(concertId: $c) { nonce difficulty } }",
  { c: process.env.CONCERT_ID },
  signUp.token,
);
const solution = await solveChallenge(queueChallenge);
const { enterQueue } = await gql(
  "mutation($c: ID!, $a: QueueChallengeAnswer) { enterQueue(concertId: $c, challenge: $a) { status } }",
  { c: process.env.CONCERT_ID, a: { nonce: queueChallenge.nonce, solution } },
  signUp.token,
);
console.log(JSON.stringify({ difficulty: queueChallenge.difficulty, tries: Number(solution) + 1, status: enterQueue.status }));
