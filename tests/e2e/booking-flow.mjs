// The booking flow as a single-page app runs it with Apollo Client: HTTP for queries and
// mutations, graphql-ws for subscriptions. Started by the Rust test `apollo::...` against a real
// server; configured by environment: ENCORE_URL (http://host:port), CONCERT_ID, CONCERT_DATE,
// SEAT, OPERATOR_TOKEN. Exits 0 when the fan sees their own seat turn SOLD through seatUpdates
// and then an operator, on an Apollo client of their own, watches the room's stats over
// graphql-ws, pauses and resumes it, and refunds the fan's ticket.

import { ApolloClient, HttpLink, InMemoryCache, gql, split } from "@apollo/client/core/index.js";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions/index.js";
import { getMainDefinition } from "@apollo/client/utilities/index.js";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const base = process.env.ENCORE_URL;
const concertId = process.env.CONCERT_ID;
const date = process.env.CONCERT_DATE;
const seatNumber = Number(process.env.SEAT ?? "1");
const operatorToken = process.env.OPERATOR_TOKEN;
const deadline = setTimeout(() => fail("timed out"), 30_000);

function fail(why) {
  console.error(`e2e FAILED: ${why}`);
  process.exit(1);
}
function log(step) {
  console.log(`e2e: ${step}`);
}

// An Apollo client as an SPA builds one. Credentials live outside the links, as in an SPA's auth
// store.
function apollo(auth) {
  const httpLink = new HttpLink({
    uri: `${base}/graphql`,
    fetch: (uri, options) => {
      const headers = { ...options.headers };
      if (auth.token) headers.authorization = `Bearer ${auth.token}`;
      if (auth.queueToken) headers["queue-token"] = auth.queueToken;
      return fetch(uri, { ...options, headers });
    },
  });
  const ws = createClient({
    url: `${base.replace(/^http/, "ws")}/graphql/ws`,
    webSocketImpl: WebSocket,
    lazy: true,
    connectionParams: () => ({ authorization: `Bearer ${auth.token}`, queueToken: auth.queueToken }),
  });
  const client = new ApolloClient({
    link: split(
      ({ query }) => {
        const d = getMainDefinition(query);
        return d.kind === "OperationDefinition" && d.operation === "subscription";
      },
      new GraphQLWsLink(ws),
      httpLink,
    ),
    cache: new InMemoryCache(),
    defaultOptions: { mutate: { errorPolicy: "none" }, query: { fetchPolicy: "no-cache" } },
  });
  return { client, ws };
}

const auth = { token: null, queueToken: null };
const { client, ws: wsClient } = apollo(auth);

// Resolves with the first value of `observable` that satisfies `test`.
function first(observable, test, what) {
  return new Promise((resolve, reject) => {
    const sub = observable.subscribe({
      next: ({ data, errors }) => {
        if (errors?.length) return reject(new Error(`${what}: ${JSON.stringify(errors)}`));
        if (test(data)) {
          sub.unsubscribe();
          resolve(data);
        }
      },
      error: (e) => reject(new Error(`${what}: ${e.message ?? JSON.stringify(e)}`)),
    });
  });
}

try {
  const name = `e2e_${Math.random().toString(36).slice(2, 10)}`;
  const { data: up } = await client.mutate({
    mutation: gql`mutation ($u: String!, $e: String!, $p: String!) {
      signUp(username: $u, email: $e, password: $p) { token user { id } }
    }`,
    variables: { u: name, e: `${name}@fans.test`, p: "password-123" },
  });
  auth.token = up.signUp.token;
  log(`signed up as ${name}`);

  const { data: entered } = await client.mutate({
    mutation: gql`mutation ($c: ID!) { enterQueue(concertId: $c) { token status position } }`,
    variables: { c: concertId },
  });
  auth.queueToken = entered.enterQueue.token;
  log(`entered the queue: ${entered.enterQueue.status}, position ${entered.enterQueue.position}`);

  const statuses = [];
  await first(
    client.subscribe({ query: gql`subscription { queueTicket { status position estimatedWaitSeconds } }` }),
    (data) => {
      statuses.push(`${data.queueTicket.status}@${data.queueTicket.position}`);
      return data.queueTicket.status === "ACTIVE";
    },
    "queueTicket",
  );
  log(`admitted after ${statuses.join(" -> ")}`);

  const seatUpdates = client.subscribe({
    query: gql`subscription ($c: ID!, $d: Date!) { seatUpdates(concertId: $c, date: $d) { number status } }`,
    variables: { c: concertId, d: date },
  });
  // One subscription for the whole flow; each step waits for the status it expects.
  const seen = [];
  const waiters = [];
  const watching = seatUpdates.subscribe({
    next: ({ data, errors }) => {
      if (errors?.length) fail(`seatUpdates: ${JSON.stringify(errors)}`);
      seen.push(`${data.seatUpdates.number}:${data.seatUpdates.status}`);
      for (const w of waiters) if (data.seatUpdates.number === seatNumber && data.seatUpdates.status === w.status) w.resolve();
    },
    error: (e) => fail(`seatUpdates: ${e.message ?? JSON.stringify(e)}`),
  });
  const seatBecomes = (status) => new Promise((resolve) => waiters.push({ status, resolve }));
  const heldSeen = seatBecomes("HELD");
  const soldSeen = seatBecomes("SOLD");
  // Let the subscription reach the server before changing the seat.
  await new Promise((r) => setTimeout(r, 500));

  const { data: seats } = await client.query({
    query: gql`query ($c: ID!, $d: Date!) { seats(concertId: $c, date: $d) { number status price } }`,
    variables: { c: concertId, d: date },
  });
  const seat = seats.seats.find((s) => s.number === seatNumber);
  if (seat?.status !== "AVAILABLE") fail(`seat ${seatNumber} is ${seat?.status}`);

  const { data: held } = await client.mutate({
    mutation: gql`mutation ($c: ID!, $d: Date!, $s: Int!) {
      holdSeat(concertId: $c, date: $d, seatNumber: $s) { id status price }
    }`,
    variables: { c: concertId, d: date, s: seatNumber },
  });
  log(`held seat ${seatNumber}: ${held.holdSeat.status}`);
  await heldSeen;
  log("seatUpdates showed the seat HELD");

  await client.mutate({
    mutation: gql`mutation ($a: Decimal!, $k: String!) { charge(amount: $a, idempotencyKey: $k) { balance } }`,
    variables: { a: held.holdSeat.price, k: `${name}-top-up` },
  });
  const { data: paid } = await client.mutate({
    mutation: gql`mutation ($r: ID!) { pay(reservationId: $r) { id amount reservation { status } } }`,
    variables: { r: held.holdSeat.id },
  });
  log(`paid ${paid.pay.amount}: ${paid.pay.reservation.status}`);

  await soldSeen;
  watching.unsubscribe();
  log(`seatUpdates delivered ${seen.join(", ")}`);

  // The operator's console.
  const op = apollo({ token: operatorToken, queueToken: null });
  const stats = await first(
    op.client.subscribe({
      query: gql`subscription ($c: ID!) { queueStats(concertId: $c) { seatsSold admittedTotal controls { paused } } }`,
      variables: { c: concertId },
    }),
    (data) => data.queueStats.seatsSold >= 2,
    "queueStats",
  );
  log(`operator sees ${stats.queueStats.seatsSold} sold, ${stats.queueStats.admittedTotal} admitted`);
  const controls = gql`mutation ($c: ID!, $p: Boolean) { setQueueControls(concertId: $c, input: { paused: $p }) { paused } }`;
  const { data: paused } = await op.client.mutate({ mutation: controls, variables: { c: concertId, p: true } });
  const { data: resumed } = await op.client.mutate({ mutation: controls, variables: { c: concertId, p: false } });
  log(`operator paused (${paused.setQueueControls.paused}) and resumed (${resumed.setQueueControls.paused})`);
  const { data: refunded } = await op.client.mutate({
    mutation: gql`mutation ($r: ID!, $k: String) { refund(reservationId: $r, idempotencyKey: $k) { status } }`,
    variables: { r: held.holdSeat.id, k: `${name}-refund` },
  });
  const { data: wallet } = await client.query({
    query: gql`{ wallet { balance transactions(first: 1) { kind amount } } }`,
  });
  const last = wallet.wallet.transactions[0];
  log(`operator refunded: ${refunded.refund.status}, fan's ledger ${last.kind} ${last.amount}`);

  clearTimeout(deadline);
  await op.ws.dispose();
  await wsClient.dispose();
  console.log("e2e: OK");
  process.exit(0);
} catch (e) {
  fail(e.message ?? String(e));
}
