import { useEffect, useRef } from "react";
import { useMutation, useQuery } from "@apollo/client";

import {
  ChargeDocument,
  MeDocument,
  PayOrderDocument,
  ReleaseOrderDocument,
  type OrderFieldsFragment,
} from "../gql/graphql";
import { errorCode, humanError } from "../errors";
import { orderToken } from "../session";
import { clock, dayWithWeekday, useCountdown } from "../clock";
import { useMoney } from "../currency";
import { fromCents, toCents } from "../money";

/** One held order: its seats, one countdown, one Pay (after a top-up when short), Release. */
export function Checkout({
  order,
  onPaid,
  onLost,
}: {
  order: OrderFieldsFragment;
  onPaid: (order: OrderFieldsFragment) => void;
  onLost: () => void;
}) {
  const left = useCountdown(order.heldUntil);
  const money = useMoney();
  const me = useQuery(MeDocument, { fetchPolicy: "network-only" });
  const [charge, charging] = useMutation(ChargeDocument);
  const [pay, paying] = useMutation(PayOrderDocument);
  const [release, releasing] = useMutation(ReleaseOrderDocument);
  // Integer cents, never Number: 0.1 + 0.2 is not 0.3.
  // Unknown until read: nothing is offered on a guess (a zero would ask to top up what is there).
  const known = me.data !== undefined;
  const balance = toCents(me.data?.me.balance ?? "0");
  const shortBy = toCents(order.total) - balance;
  const missing = shortBy > 0n ? shortBy : 0n;
  const error = charging.error ?? paying.error ?? releasing.error;
  const busy = charging.loading || paying.loading || releasing.loading || me.loading || !known;
  // One key per top-up: kept across a retry of a failed or unconfirmed one (the server then does
  // it at most once), a new one after it went through (a second top-up is a new one).
  const topUpKey = useRef(crypto.randomUUID());
  // Arriving (a hold just taken, or restored): focus on the checkout's heading, so a keyboard or
  // screen reader user lands on what changed rather than on the page's end.
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  const numbers = order.seats.map((s) => s.number).join(", ");
  const many = order.seats.length > 1;

  // Whatever the answer, the balance on screen is read again (a refusal may mean it moved).
  const topUp = async () => {
    try {
      await charge({ variables: { amount: fromCents(missing), key: topUpKey.current } });
      topUpKey.current = crypto.randomUUID();
    } finally {
      await me.refetch();
    }
  };
  const buy = async () => {
    // With the queue token of the turn the order was held in (the turn may have ended since).
    const token = orderToken(order.id);
    const r = await pay({
      variables: { orderId: order.id, key: `pay-${order.id}` },
      context: token ? { headers: { "queue-token": token } } : undefined,
    });
    if (r.data?.payOrder.status === "PAID") onPaid(r.data.payOrder);
  };
  // A refusal that means the order is gone (lapsed, released elsewhere) ends this checkout.
  const refused = (e: unknown) => {
    const code = errorCode(e);
    if (code === "HOLD_EXPIRED" || code === "NOT_FOUND") onLost();
    else void me.refetch();
  };
  const giveBack = async () => {
    await release({ variables: { orderId: order.id } });
    onLost();
  };

  return (
    <div className="checkout" aria-labelledby="checkout-title">
      <h2 id="checkout-title" ref={heading} tabIndex={-1}>
        Seat{many ? "s" : ""} {numbers} {many ? "are" : "is"} yours for
      </h2>
      <p className="countdown" role="timer" aria-live="off">
        {clock(left)}
      </p>
      {left > 0 && left <= 60 && <p role="alert">Less than a minute left to pay.</p>}
      {left <= 0 && (
        <p role="alert" className="error">
          Your hold ran out. <button type="button" onClick={onLost}>Pick seats again</button>
        </p>
      )}
      <ul>
        {order.seats.map((s) => (
          <li key={s.number}>
            Seat {s.number} · {s.tier} · {money(s.price)}
          </li>
        ))}
      </ul>
      <p>
        {dayWithWeekday(order.date)} · total <strong>{money(order.total)}</strong> · your balance{" "}
        <span data-balance={me.data?.me.balance}>{me.data ? money(me.data.me.balance) : "…"}</span>
      </p>
      {error && <p role="alert" className="error">{humanError(error)}</p>}
      {me.error && (
        <p role="alert" className="error">
          We could not read your balance. <button type="button" className="link" onClick={() => void me.refetch()}>Try again</button>
        </p>
      )}
      <div className="inline">
        {/* One button for both steps: a keyboard user's focus stays on it from top-up to pay
            (busy is aria-disabled, not disabled, so focus is not dropped to the page). */}
        <button
          type="button"
          data-step={missing > 0n ? "top-up" : "pay"}
          aria-disabled={busy}
          disabled={left <= 0}
          onClick={() => {
            if (busy) return;
            if (missing > 0n) void topUp().catch(() => {});
            else void buy().catch(refused);
          }}
        >
          {!known ? "Reading your balance…" : missing > 0n ? `Top up ${money(fromCents(missing))}` : `Pay ${money(order.total)}`}
        </button>
        <button
          type="button"
          className="link"
          onClick={() => void giveBack().catch(() => {})}
          disabled={busy || left <= 0}
        >
          Release
        </button>
      </div>
    </div>
  );
}

/** What a fan sees once an order is paid: its seats and day, and the way to the tickets. */
export function PaidNote({ order, how = "" }: { order: OrderFieldsFragment; how?: string }) {
  return (
    <div className="done" role="status">
      <p>
        Paid: seat{order.seats.length > 1 ? "s" : ""} {order.seats.map((s) => s.number).join(", ")} on{" "}
        {dayWithWeekday(order.date)}
        {how}. <a href="#/tickets">See my tickets</a>
      </p>
    </div>
  );
}
