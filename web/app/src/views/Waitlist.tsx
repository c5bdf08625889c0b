import { useEffect, useState } from "react";
import { useApolloClient, useMutation, useQuery, useSubscription } from "@apollo/client";

import {
  JoinWaitlistDocument,
  LeaveWaitlistDocument,
  MyWaitlistDocument,
  WatchMyWaitlistDocument,
  type MyWaitlistQuery,
  type OrderFieldsFragment,
} from "../gql/graphql";
import { humanError } from "../errors";
import { usePollWhileOffline } from "../fallback";
import { Checkout, PaidNote } from "./Checkout";

type Entry = MyWaitlistQuery["myWaitlist"][number];

/**
 * A sold-out concert's waitlist: join for a date and a number of seats, see your place, and when
 * seats come back and are offered to you, a banner with the deadline and Pay. Live over the
 * websocket (`myWaitlist`), polling when websockets fail.
 */
export function Waitlist({
  concertId,
  dates,
  soldOut,
}: {
  concertId: string;
  dates: string[];
  /** The join form shows only then; a fan already on the waitlist sees their place anyway. */
  soldOut: boolean;
}) {
  const apollo = useApolloClient();
  const [date, setDate] = useState(dates[0] ?? "");
  const [count, setCount] = useState(1);
  const [entries, setEntries] = useState<Entry[]>([]);
  const [live, setLive] = useState(true);
  const [paid, setPaid] = useState<OrderFieldsFragment | null>(null);
  const mine = useQuery(MyWaitlistDocument, { fetchPolicy: "network-only" });
  const [join, joining] = useMutation(JoinWaitlistDocument);
  const [leave, leaving] = useMutation(LeaveWaitlistDocument);

  useEffect(() => {
    if (mine.data) setEntries(mine.data.myWaitlist);
  }, [mine.data]);
  useSubscription(WatchMyWaitlistDocument, {
    skip: !live,
    onData: ({ data }) => data.data && setEntries(data.data.myWaitlist),
    onError: () => setLive(false),
  });
  usePollWhileOffline(
    () =>
      void apollo
        .query({ query: MyWaitlistDocument, fetchPolicy: "network-only" })
        .then((r) => setEntries(r.data.myWaitlist))
        .catch(() => {}),
    3000,
    true,
    live,
  );

  const entry = entries.find(
    (e) => e.concertId === concertId && (e.status === "WAITING" || e.status === "OFFERED"),
  );
  const error = joining.error ?? leaving.error;

  if (paid) return <PaidNote order={paid} how=", from the waitlist" />;
  if (entry?.status === "OFFERED" && entry.offer) {
    return (
      <div className="offer" role="region" aria-label="Your waitlist offer">
        <p role="alert" className="banner">
          Seats came back for you! They are held until{" "}
          {new Date(entry.offerExpiresAt ?? entry.offer.heldUntil).toLocaleTimeString()}: pay to
          keep them.
        </p>
        <Checkout order={entry.offer} onPaid={setPaid} onLost={() => void mine.refetch()} />
      </div>
    );
  }
  if (entry?.status === "WAITING") {
    return (
      <div className="status" role="status" data-waitlist="WAITING">
        <p>
          You are on the waitlist for {entry.date} ({entry.count} seat{entry.count > 1 ? "s" : ""}):{" "}
          <strong>{entry.position}</strong> ahead of you. We hold seats for you as soon as they
          come back.
        </p>
        <button
          type="button"
          className="link"
          onClick={() =>
            void leave({ variables: { entryId: entry.id } })
              .then(() => mine.refetch())
              .catch(() => {})
          }
        >
          Leave the waitlist
        </button>
      </div>
    );
  }
  if (!soldOut) return null;
  return (
    <form
      className="inline"
      aria-label="Join the waitlist"
      onSubmit={(e) => {
        e.preventDefault();
        void join({ variables: { concertId, date, count } })
          .then(() => mine.refetch())
          .catch(() => {});
      }}
    >
      <label>
        Date
        <select value={date} onChange={(e) => setDate(e.target.value)}>
          {dates.map((d) => (
            <option key={d} value={d}>{d}</option>
          ))}
        </select>
      </label>
      <label>
        Seats
        <input type="number" min={1} max={6} value={count} onChange={(e) => setCount(Math.max(1, Number(e.target.value) || 1))} />
      </label>
      <button type="submit" disabled={joining.loading}>Join the waitlist</button>
      {error && <p role="alert" className="error">{humanError(error)}</p>}
    </form>
  );
}
