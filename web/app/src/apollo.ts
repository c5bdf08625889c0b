// Apollo Client as an SPA builds it: HTTP for queries and mutations, graphql-ws for
// subscriptions, credentials from the session store on every request and connection.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, split } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { setContext } from "@apollo/client/link/context";
import { getMainDefinition, relayStylePagination } from "@apollo/client/utilities";
import { createClient, type Client } from "graphql-ws";

import { activeQueueToken, onQueueTokenChange, session } from "./session";
import { noteServerDate } from "./clock";

const http = new HttpLink({ uri: "/graphql" });
// Every answer's Date header tells how far this device's clock is from the server's, which
// decides when sales open and turns end (countdowns follow the server's clock).
const serverClock = new ApolloLink((operation, forward) =>
  forward(operation).map((result) => {
    const response = operation.getContext().response as Response | undefined;
    noteServerDate(response?.headers.get("date") ?? null);
    return result;
  }),
);
const withCredentials = setContext((_, { headers }) => {
  const token = session()?.token;
  const queue = activeQueueToken();
  return {
    // A queue token the operation names itself (paying an order with its turn's) wins.
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(queue ? { "queue-token": queue } : {}),
      ...headers,
    },
  };
});

let wsFailed = false;
/** True once the websocket could not be opened: views fall back to polling. */
export function websocketsFailed(): boolean {
  return wsFailed;
}

function wsUrl(): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql/ws`;
}

/**
 * A websocket client whose connection carries the credentials of the moment it opens. The
 * queue token rides on the connection, so when it changes (a new turn after the last ended,
 * another concert) the open connection is dropped and the live subscriptions reconnect with it:
 * otherwise a fan who joined the line again would keep watching the turn that ended.
 */
function websocket(): Client {
  let carried: string | undefined;
  let open = false;
  const client = createClient({
    url: wsUrl(),
    lazy: true,
    retryAttempts: 3,
    connectionParams: () => {
      carried = activeQueueToken();
      return {
        authorization: session() ? `Bearer ${session()?.token}` : undefined,
        queueToken: carried,
      };
    },
    on: {
      closed: (event) => {
        open = false;
        const code = (event as CloseEvent | undefined)?.code;
        if (code === 1006 || code === 4403) wsFailed = true;
      },
      connected: () => {
        open = true;
        wsFailed = false;
      },
    },
  });
  onQueueTokenChange(() => {
    if (open && activeQueueToken() !== carried) client.terminate();
  });
  return client;
}

// Lazy: the connection opens with the first subscription and closes after the last, so a new
// queue token rides along on the next one.
const wsLink = new GraphQLWsLink(websocket());

export const client = new ApolloClient({
  link: split(
    ({ query }) => {
      const d = getMainDefinition(query);
      return d.kind === "OperationDefinition" && d.operation === "subscription";
    },
    wsLink,
    ApolloLink.from([withCredentials, serverClock, http]),
  ),
  // Paged lists: each "Show older" page is appended to the cached connection.
  cache: new InMemoryCache({
    typePolicies: {
      Query: { fields: { myReservationsConnection: relayStylePagination() } },
      Wallet: { fields: { transactionsConnection: relayStylePagination() } },
    },
  }),
  defaultOptions: {
    watchQuery: { fetchPolicy: "cache-and-network" },
    query: { fetchPolicy: "network-only" },
  },
});
