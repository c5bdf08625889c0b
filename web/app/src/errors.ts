// Every error code of the API as a sentence a fan or operator can act on. Keyed by the
// schema's `enum ErrorCode` (generated into gql/graphql.ts): a code without a sentence here
// does not build.
import { ApolloError } from "@apollo/client";

import type { ErrorCode } from "./gql/graphql";

const MESSAGES: Record<ErrorCode, string> = {
  UNAUTHENTICATED: "Please sign in again.",
  FORBIDDEN: "You are not allowed to do that.",
  BAD_USER_INPUT: "Please check what you entered.",
  NOT_FOUND: "That no longer exists.",
  NOT_ADMITTED: "It is not your turn yet, or your turn has ended. Join the queue again.",
  SEAT_UNAVAILABLE: "Someone else just took a seat you picked. Pick another one.",
  HOLD_EXPIRED: "Your hold ran out. Hold the seat again.",
  INSUFFICIENT_BALANCE: "Your balance does not cover this. Top up first.",
  HOLD_LIMIT_REACHED: "You are already holding as many seats as allowed for this date.",
  SEATS_AVAILABLE: "This date has free seats again. Pick yours on the seat map.",
  TICKET_LIMIT_REACHED: "That would be more tickets than one fan may have for this concert.",
  SALE_NOT_OPEN: "The sale has not opened yet.",
  REFUND_WINDOW_CLOSED: "Refunds for this ticket have closed. Ask the organiser.",
  CHALLENGE_REQUIRED: "The waiting room asks your browser for a quick check first.",
  CHALLENGE_FAILED: "The browser check did not pass. Try again.",
  RATE_LIMITED: "Too many tries. Wait a moment.",
  SERVICE_UNAVAILABLE: "We are very busy right now. Try again in a few seconds.",
  TIMEOUT: "That took too long. Try again.",
  GRAPHQL_VALIDATION_FAILED: "The app sent a request the server does not accept.",
  GRAPHQL_PARSE_FAILED: "The app sent a malformed request.",
  PERSISTED_QUERY_NOT_FOUND: "Please retry.",
  PERSISTED_QUERY_NOT_IN_LIST: "This app version is not allowed by the server. Reload the page.",
  PERSISTED_QUERY_NOT_SUPPORTED: "Please reload the page.",
  PAYLOAD_TOO_LARGE: "That is too much to send at once.",
  BAD_REQUEST: "The app sent a malformed request.",
  CSRF_PREVENTED: "The request was blocked for your safety. Reload the page.",
  METHOD_NOT_ALLOWED: "The app sent a request the server does not accept.",
  UNSUPPORTED_MEDIA_TYPE: "The app sent a request the server does not accept.",
  NOT_ACCEPTABLE: "The app sent a request the server does not accept.",
  TOO_MANY_ERRORS: "Several things went wrong at once.",
  TOO_MANY_SUBSCRIPTIONS: "Too many live views are open. Close one.",
  INTERNAL_SERVER_ERROR: "Something went wrong on our side.",
};

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(MESSAGES, code);
}

/** The code of the first GraphQL error, if any. */
export function errorCode(error: unknown): ErrorCode | undefined {
  if (error instanceof ApolloError) {
    const code = error.graphQLErrors[0]?.extensions?.code;
    if (isErrorCode(code)) return code;
    if (error.networkError) return "SERVICE_UNAVAILABLE";
  }
  return undefined;
}

/**
 * A human message for any error the API or the network gave. `here` words codes that mean
 * something else on one screen (on the sign-in form, UNAUTHENTICATED is a wrong password).
 */
export function humanError(error: unknown, here: Partial<Record<ErrorCode, string>> = {}): string {
  const code = errorCode(error);
  const base = code ? (here[code] ?? MESSAGES[code]) : "Something went wrong. Try again.";
  if (error instanceof ApolloError && code === "BAD_USER_INPUT") {
    return `${base} (${error.graphQLErrors[0]?.message})`;
  }
  // The connection dropped while the change was being saved: it may have gone through.
  if (error instanceof ApolloError && error.graphQLErrors[0]?.extensions?.outcome === "UNKNOWN") {
    return "We could not confirm whether that went through. Press the same button again: it will not be done twice.";
  }
  return base;
}
