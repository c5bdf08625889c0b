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
  queueTokens.set(concertId, token);
}

let activeConcert: string | null = null;
/** Which concert's queue token requests carry (one concert at a time in this app). */
export function setActiveConcert(concertId: string | null): void {
  activeConcert = concertId;
}
export function activeQueueToken(): string | undefined {
  return queueToken(activeConcert);
}
