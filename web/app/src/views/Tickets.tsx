import { useRef, useState } from "react";
import { useApolloClient, useMutation, useQuery } from "@apollo/client";

import {
  ConcertsDocument,
  MyTicketOrdersDocument,
  PayOrderDocument,
  RefundDocument,
  ReleaseOrderDocument,
  type MyTicketOrdersQuery,
} from "../gql/graphql";
import { errorCode, humanError } from "../errors";
import { clock, dayWithWeekday, serverNow, useCountdown } from "../clock";
import { useMoney } from "../currency";
import { orderToken } from "../session";
import { Confirm } from "./Confirm";

type Order = MyTicketOrdersQuery["myOrders"]["nodes"][number];
type Seat = Order["seats"][number];
type Concert = { title: string; venue: string };

const ORDER_WORDS: Record<Order["status"], string> = {
  HELD: "Held for you, not paid yet",
  PAID: "Paid",
  REFUNDED: "Refunded",
  EXPIRED: "Not paid in time: the seats went back on sale",
  RELEASED: "Given back before paying",
};
const SEAT_WORDS: Record<Seat["status"], string> = {
  HELD: "held",
  PAID: "valid ticket",
  REFUNDED: "refunded",
  EXPIRED: "hold ran out",
  CANCELLED: "given back",
};

/**
 * The fan's ticket wallet: every order with its concert, venue, day, seats and tiers, newest
 * first. A live hold can be paid or given back from here; a paid seat refunded after a
 * confirmation (until the refund window closes, which the server decides).
 */
export function Tickets() {
  const apollo = useApolloClient();
  const first = useQuery(MyTicketOrdersDocument, { fetchPolicy: "network-only" });
  // Titles and venues from the concert list (one read, usually cached), not one concert read per
  // order on the server.
  const concerts = useQuery(ConcertsDocument);
  const about = (id: string): Concert =>
    concerts.data?.concerts.find((c) => c.id === id) ?? { title: "Concert", venue: "" };
  const [older, setOlder] = useState<Order[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  const [loadingMore, setLoadingMore] = useState(false);
  const page = first.data?.myOrders;
  const orders = [...(page?.nodes ?? []), ...older.filter((o) => !page?.nodes.some((n) => n.id === o.id))];
  const hasMore = cursor === undefined ? page?.pageInfo.hasNextPage : cursor !== null;
  const more = async () => {
    setLoadingMore(true);
    try {
      const r = await apollo.query({
        query: MyTicketOrdersDocument,
        variables: { after: cursor ?? page?.pageInfo.endCursor },
      });
      setOlder((o) => [...o, ...r.data.myOrders.nodes]);
      setCursor(r.data.myOrders.pageInfo.hasNextPage ? r.data.myOrders.pageInfo.endCursor : null);
    } finally {
      setLoadingMore(false);
    }
  };
  const changed = () => {
    setOlder([]);
    setCursor(undefined);
    void first.refetch();
  };
  return (
    <section aria-labelledby="tickets-title">
      <h1 id="tickets-title">My tickets</h1>
      {first.error && <p role="alert" className="error">{humanError(first.error)}</p>}
      {page && orders.length === 0 && (
        <p>
          No tickets yet. <a href="#/concerts">Find a concert</a>
        </p>
      )}
      <ul className="wallet">
        {orders.map((o) => (
          <li key={o.id}>
            <OrderCard order={o} concert={about(o.concertId)} onChanged={changed} />
          </li>
        ))}
      </ul>
      {hasMore && (
        <button type="button" disabled={loadingMore} onClick={() => void more().catch(() => {})}>
          Show older
        </button>
      )}
    </section>
  );
}

function OrderCard({ order, concert, onChanged }: { order: Order; concert: Concert; onChanged: () => void }) {
  const money = useMoney();
  // Only a hold has a clock worth ticking.
  const left = useCountdown(order.status === "HELD" ? order.heldUntil : null);
  const live = order.status === "HELD" && left > 0;
  const [pay, paying] = useMutation(PayOrderDocument);
  const [release, releasing] = useMutation(ReleaseOrderDocument);
  const [refund, refunding] = useMutation(RefundDocument);
  const [asking, setAsking] = useState<Seat | null>(null);
  const error = paying.error ?? releasing.error ?? refunding.error;
  const token = orderToken(order.id);
  // The fan's own refunds close REFUND_CUTOFF before the show (the server decides; this says when).
  const refundsOpen = Date.parse(order.refundableUntil) > serverNow();
  const refundsClose = new Date(order.refundableUntil).toLocaleString(undefined, {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
  const anyPaid = order.seats.some((s) => s.status === "PAID");
  const status = live ? `${ORDER_WORDS.HELD} · ${clock(left)} left` : order.status === "HELD" ? ORDER_WORDS.EXPIRED : ORDER_WORDS[order.status];

  // After an action its button is gone: focus goes to the order's heading, which says what it is now.
  const heading = useRef<HTMLHeadingElement>(null);
  const done = () => {
    onChanged();
    heading.current?.focus();
  };
  const payNow = async () => {
    await pay({
      variables: { orderId: order.id, key: `pay-${order.id}` },
      // A waitlist offer is paid without a turn; a hold with the token of the turn it was taken in.
      context: token ? { headers: { "queue-token": token } } : undefined,
    });
    done();
  };
  const giveBack = async () => {
    await release({ variables: { orderId: order.id } });
    done();
  };
  const refundSeat = async (seat: Seat) => {
    setAsking(null);
    await refund({ variables: { reservationId: seat.reservationId, key: `refund-${seat.reservationId}` } });
    done();
  };

  return (
    <article className="ticket" aria-labelledby={`order-${order.id}`} data-order-status={order.status}>
      <h2 id={`order-${order.id}`} ref={heading} tabIndex={-1}>
        {concert.title}
      </h2>
      <p>
        {concert.venue} · <time dateTime={order.date}>{dayWithWeekday(order.date)}</time>
      </p>
      <ul className="seats">
        {order.seats.map((s) => (
          <li key={s.reservationId} data-seat-status={s.status}>
            <span>
              Seat <strong>{s.number}</strong> · {s.tier} · {money(s.price)} · {SEAT_WORDS[s.status]}
            </span>
            {s.status === "PAID" && refundsOpen && (
              <button type="button" className="link" disabled={refunding.loading} onClick={() => setAsking(s)}>
                Refund seat {s.number}
              </button>
            )}
          </li>
        ))}
      </ul>
      <p className="order-status">
        <strong>{status}</strong> · total {money(order.total)}
        {order.fromWaitlist && " · from the waitlist"}
      </p>
      {anyPaid && (
        <p className="hint" data-refundable={refundsOpen}>
          {refundsOpen
            ? `You can refund these tickets yourself until ${refundsClose}.`
            : `Refunds closed on ${refundsClose}; the organiser can still help.`}
        </p>
      )}
      {error && (
        <p role="alert" className="error">
          {humanError(error)}
          {errorCode(error) === "INSUFFICIENT_BALANCE" && (
            <> <a href="#/wallet">Top up in your wallet</a></>
          )}
        </p>
      )}
      {live && (
        <div className="inline">
          {token || order.fromWaitlist ? (
            <button type="button" disabled={paying.loading} onClick={() => void payNow().catch(() => {})}>
              Pay {money(order.total)}
            </button>
          ) : (
            <a className="button" href={`#/concert/${order.concertId}`}>
              Pay in the checkout
            </a>
          )}
          <button type="button" className="link" disabled={releasing.loading} onClick={() => void giveBack().catch(() => {})}>
            Release
          </button>
        </div>
      )}
      {asking && (
        <Confirm
          title={`Refund seat ${asking.number}?`}
          confirm={`Refund ${money(asking.price)}`}
          cancel="Keep my ticket"
          onConfirm={() => void refundSeat(asking).catch(() => {})}
          onCancel={() => setAsking(null)}
        >
          <p>
            {concert.title}, {dayWithWeekday(order.date)}, seat {asking.number} ({asking.tier}).{" "}
            {money(asking.price)} goes back to your wallet and the seat goes back on sale. This cannot be undone.
          </p>
        </Confirm>
      )}
    </article>
  );
}
