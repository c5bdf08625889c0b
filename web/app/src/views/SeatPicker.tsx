import { useEffect, useState } from "react";
import { useMutation, useQuery, useSubscription } from "@apollo/client";

import {
  ChargeDocument,
  HoldSeatDocument,
  MeDocument,
  PayDocument,
  SeatsDocument,
  SeatUpdatesDocument,
  type HoldSeatMutation,
} from "../gql/graphql";
import { humanError } from "../errors";
import { fromCents, toCents } from "../money";

type Hold = HoldSeatMutation["holdSeat"];

/** The seat map of a date, kept current by `seatUpdates`, then the hold and the payment. */
export function SeatPicker(props: { concertId: string; dates: string[]; turnEndsAt: string | null }) {
  const { concertId, dates } = props;
  const [date, setDate] = useState(dates[0] ?? "");
  const [hold, setHold] = useState<Hold | null>(null);
  const [paid, setPaid] = useState(false);
  const seats = useQuery(SeatsDocument, { variables: { concertId, date }, skip: !date });
  const [statuses, setStatuses] = useState<Record<number, string>>({});
  const [holdSeat, holding] = useMutation(HoldSeatDocument);

  useEffect(() => setStatuses({}), [date]);
  useSubscription(SeatUpdatesDocument, {
    variables: { concertId, date },
    skip: !date,
    onData: ({ data }) => {
      const seat = data.data?.seatUpdates;
      if (seat) setStatuses((s) => ({ ...s, [seat.number]: seat.status }));
    },
  });

  if (paid && hold) {
    return (
      <div className="done" role="status">
        <p>
          Paid: seat {hold.seatNumber} on {hold.date}. <a href="#/tickets">See my tickets</a>
        </p>
      </div>
    );
  }
  if (hold) return <Checkout hold={hold} onPaid={() => setPaid(true)} onLost={() => setHold(null)} />;

  const take = async (number: number) => {
    const r = await holdSeat({ variables: { concertId, date, seatNumber: number } });
    if (r.data) setHold(r.data.holdSeat);
  };

  return (
    <div>
      <label>
        Date{" "}
        <select value={date} onChange={(e) => setDate(e.target.value)}>
          {dates.map((d) => (
            <option key={d} value={d}>{d}</option>
          ))}
        </select>
      </label>
      {seats.error && <p role="alert" className="error">{humanError(seats.error)}</p>}
      {holding.error && <p role="alert" className="error">{humanError(holding.error)}</p>}
      <ul className="legend" aria-label="Legend">
        <li className="seat AVAILABLE">free</li>
        <li className="seat HELD">held</li>
        <li className="seat SOLD">sold</li>
      </ul>
      <div className="seatmap" role="group" aria-label={`Seats on ${date}`}>
        {seats.data?.seats.map((s) => {
          const status = statuses[s.number] ?? s.status;
          return (
            <button
              key={s.number}
              type="button"
              className={`seat ${status}`}
              data-seat={s.number}
              data-status={status}
              disabled={status !== "AVAILABLE" || holding.loading}
              aria-label={`Seat ${s.number}, ${s.tier}, ${s.price}, ${status.toLowerCase()}`}
              title={`${s.tier} · ${s.price}`}
              onClick={() => void take(s.number).catch(() => {})}
            >
              {s.number}
            </button>
          );
        })}
      </div>
    </div>
  );
}

function Checkout({ hold, onPaid, onLost }: { hold: Hold; onPaid: () => void; onLost: () => void }) {
  const left = useCountdown(hold.heldUntil);
  const me = useQuery(MeDocument, { fetchPolicy: "network-only" });
  const [charge, charging] = useMutation(ChargeDocument);
  const [pay, paying] = useMutation(PayDocument);
  // Integer cents, never Number: 0.1 + 0.2 is not 0.3.
  const balance = toCents(me.data?.me.balance ?? "0");
  const shortBy = toCents(hold.price) - balance;
  const missing = shortBy > 0n ? shortBy : 0n;
  const error = charging.error ?? paying.error;

  const topUp = async () => {
    await charge({ variables: { amount: fromCents(missing), key: `top-up-${hold.id}` } });
    await me.refetch();
  };
  const buy = async () => {
    const r = await pay({ variables: { reservationId: hold.id, key: `pay-${hold.id}` } });
    if (r.data?.pay.reservation.status === "PAID") onPaid();
  };

  return (
    <div className="checkout" aria-labelledby="checkout-title">
      <h2 id="checkout-title">Seat {hold.seatNumber} is yours for</h2>
      <p className="countdown" role="timer" aria-live="off">
        {left > 0 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}` : "0:00"}
      </p>
      {left <= 0 && (
        <p role="alert" className="error">
          Your hold ran out. <button type="button" onClick={onLost}>Pick a seat again</button>
        </p>
      )}
      <p>Price {hold.price} · your balance {me.data?.me.balance ?? "…"}</p>
      {error && <p role="alert" className="error">{humanError(error)}</p>}
      {missing > 0n ? (
        <button type="button" onClick={() => void topUp().catch(() => {})} disabled={charging.loading}>
          Top up {fromCents(missing)}
        </button>
      ) : (
        <button type="button" onClick={() => void buy().catch(() => {})} disabled={paying.loading || left <= 0}>
          Pay {hold.price}
        </button>
      )}
    </div>
  );
}

function useCountdown(until: string): number {
  const end = new Date(until).getTime();
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return Math.max(0, Math.round((end - now) / 1000));
}
