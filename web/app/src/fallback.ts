// The live views' fallback: when a view's subscription failed, or websockets cannot be opened at
// all, it reads the same thing again every few seconds instead. One mechanism for every live
// view (the queue ticket, the seat map, the waitlist).
import { useEffect, useRef } from "react";

import { websocketsFailed } from "./apollo";

/**
 * Calls `poll` every `ms` while `enabled` and the view is not live (`live` false: its
 * subscription failed; or websockets failed for the whole app), checked at every tick.
 */
export function usePollWhileOffline(poll: () => void, ms: number, enabled: boolean, live: boolean): void {
  const latest = useRef(poll);
  latest.current = poll;
  const subscribed = useRef(live);
  subscribed.current = live;
  useEffect(() => {
    if (!enabled) return;
    const t = setInterval(() => {
      if (!subscribed.current || websocketsFailed()) latest.current();
    }, ms);
    return () => clearInterval(t);
  }, [enabled, ms]);
}
