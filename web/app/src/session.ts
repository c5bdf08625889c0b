// The signed-in fan or operator and their queue tokens: the app's one auth store, read by the
// Apollo links on every request and websocket connection.

export type Role = "FAN" | "OPERATOR";

export interface Session {
  token: string;
  userId: string;
  username: string;
  role: Role;
}

const KEY = "encore.session";
const queueTokens = new Map<string, string>();
let current: Session | null = loadSession();
const listeners = new Set<() => void>();

function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function session(): Session | null {
  return current;
}

export function setSession(next: Session | null): void {
  // Another person's order tokens never stay in the tab; the same fan signing in again keeps them.
  if (next?.userId !== current?.userId) sessionStorage.removeItem(ORDER_TOKENS);
  current = next;
  queueTokens.clear();
  if (next) sessionStorage.setItem(KEY, JSON.stringify(next));
  else sessionStorage.removeItem(KEY);
  listeners.forEach((l) => l());
}

export function onSessionChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The queue token of the concert being browsed: the `Queue-Token` header. */
export function queueToken(concertId: string | null): string | undefined {
  return concertId ? queueTokens.get(concertId) : undefined;
}

export function setQueueToken(concertId: string, token: string): void {
  tellIfTokenChanges(() => queueTokens.set(concertId, token));
}

let activeConcert: string | null = null;
/** Which concert's queue token requests carry (one concert at a time in this app). */
export function setActiveConcert(concertId: string | null): void {
  tellIfTokenChanges(() => {
    activeConcert = concertId;
  });
}

function tellIfTokenChanges(change: () => void): void {
  const before = activeQueueToken();
  change();
  if (activeQueueToken() !== before) tokenListeners.forEach((l) => l());
}

const tokenListeners = new Set<() => void>();
/** Told when the queue token requests carry changes (a new turn, another concert). */
export function onQueueTokenChange(listener: () => void): () => void {
  tokenListeners.add(listener);
  return () => tokenListeners.delete(listener);
}
export function activeQueueToken(): string | undefined {
  return queueToken(activeConcert);
}

// The queue token each held order was taken with: an order is paid with the token of the turn it
// was held in, even after that turn ended or the page reloaded (a new entry gets a new token).
// Kept in sessionStorage like the session itself (this tab only), the last few orders.
const ORDER_TOKENS = "encore.orderTokens";
const KEPT_ORDER_TOKENS = 20;

function orderTokens(): [string, string][] {
  try {
    const raw = sessionStorage.getItem(ORDER_TOKENS);
    return raw ? (JSON.parse(raw) as [string, string][]) : [];
  } catch {
    return [];
  }
}

/** Remembers that `orderId` was held in the turn of `token`. */
export function rememberOrderToken(orderId: string, token: string | undefined): void {
  if (!token) return;
  const kept = orderTokens().filter(([id]) => id !== orderId);
  kept.push([orderId, token]);
  sessionStorage.setItem(ORDER_TOKENS, JSON.stringify(kept.slice(-KEPT_ORDER_TOKENS)));
}

/** The queue token `orderId` was held with, when this tab held it. */
export function orderToken(orderId: string): string | undefined {
  return orderTokens().find(([id]) => id === orderId)?.[1];
}
