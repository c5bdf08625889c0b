import { useEffect, useMemo, useState } from "react";
import { useMutation, useQuery, useSubscription } from "@apollo/client";

import {
  HoldBestAvailableDocument,
  HoldSeatsDocument,
  SeatsDocument,
  SeatUpdatesDocument,
  TicketAllowanceDocument,
  type OrderFieldsFragment,
} from "../gql/graphql";
import { humanError } from "../errors";
import { fromCents, toCents } from "../money";
import { Checkout } from "./Checkout";

/**
 * The seat map of a date drawn as rows from the stage, kept current by `seatUpdates`; seats are
 * picked into a basket (or the best N together asked for) and held as one order, then paid.
 */
export function SeatPicker(props: {
  concertId: string;
  dates: string[];
  turnEndsAt: string | null;
  /** A live hold of this concert found on entering (a reload), shown as the checkout. */
  restored?: OrderFieldsFragment | null;
  /** Told after every hold and release, so the room knows whether the fan holds seats (they
   * outlive the turn). */
  onOrdersChanged?: () => void;
}) {
  const { concertId, dates } = props;
  const [date, setDate] = useState(dates[0] ?? "");
  const [order, setOrder] = useState<OrderFieldsFragment | null>(props.restored ?? null);
  const restoredId = props.restored?.id;
  useEffect(() => {
    if (props.restored && !order) setOrder(props.restored);
    // Keyed by the order's id: a newly found order, not every render of the same one.
  }, [restoredId]);
  const [paid, setPaid] = useState<OrderFieldsFragment | null>(null);
  const [basket, setBasket] = useState<number[]>([]);
  const [bestCount, setBestCount] = useState(2);
  const [bestTier, setBestTier] = useState("");
  const seats = useQuery(SeatsDocument, { variables: { concertId, date }, skip: !date });
  const allowance = useQuery(TicketAllowanceDocument, {
    variables: { concertId },
    fetchPolicy: "network-only",
  });
  const [statuses, setStatuses] = useState<Record<number, string>>({});
  const [holdSeats, holding] = useMutation(HoldSeatsDocument);
  const [holdBest, holdingBest] = useMutation(HoldBestAvailableDocument);

  useEffect(() => {
    setStatuses({});
    setBasket([]);
  }, [date]);
  useSubscription(SeatUpdatesDocument, {
    variables: { concertId, date },
    skip: !date,
    onData: ({ data }) => {
      const seat = data.data?.seatUpdates;
      if (!seat) return;
      setStatuses((s) => ({ ...s, [seat.number]: seat.status }));
      if (seat.status !== "AVAILABLE") setBasket((b) => b.filter((n) => n !== seat.number));
    },
  });

  const all = seats.data?.seats ?? [];
  const rows = useMemo(() => {
    const byRow = new Map<number, typeof all>();
    for (const s of all) byRow.set(s.row, [...(byRow.get(s.row) ?? []), s]);
    return [...byRow.entries()].sort(([a], [b]) => a - b);
  }, [all]);
  const tiers = useMemo(() => {
    const seen = new Map<string, string>();
    for (const s of all) if (!seen.has(s.tier)) seen.set(s.tier, s.price);
    return [...seen.entries()];
  }, [all]);

  if (paid) {
    return (
      <div className="done" role="status">
        <p>
          Paid: seat{paid.seats.length > 1 ? "s" : ""} {paid.seats.map((s) => s.number).join(", ")} on{" "}
          {paid.date}. <a href="#/tickets">See my tickets</a>
        </p>
      </div>
    );
  }
  if (order) {
    return (
      <Checkout
        order={order}
        onPaid={(o) => setPaid(o)}
        onLost={() => {
          setOrder(null);
          props.onOrdersChanged?.();
          void seats.refetch();
          void allowance.refetch();
        }}
      />
    );
  }

  const remaining = allowance.data?.ticketAllowance.remaining;
  const statusOf = (n: number, stored: string) => statuses[n] ?? stored;
  const total = all
    .filter((s) => basket.includes(s.number))
    .reduce((sum, s) => sum + toCents(s.price), 0n);
  const toggle = (n: number) =>
    setBasket((b) => (b.includes(n) ? b.filter((x) => x !== n) : [...b, n].sort((x, y) => x - y)));
  const held = (o: OrderFieldsFragment) => {
    setBasket([]);
    setOrder(o);
    props.onOrdersChanged?.();
  };
  const takeBasket = async () => {
    const r = await holdSeats({ variables: { concertId, date, seatNumbers: basket } });
    if (r.data) held(r.data.holdSeats);
  };
  const takeBest = async () => {
    const r = await holdBest({
      variables: { concertId, date, count: bestCount, tier: bestTier === "" ? null : bestTier },
    });
    if (r.data) held(r.data.holdBestAvailable);
  };
  const error = holding.error ?? holdingBest.error;
  const busy = holding.loading || holdingBest.loading;

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
      {remaining !== undefined && (
        <p data-allowance={remaining}>
          You may take {remaining} more ticket{remaining === 1 ? "" : "s"} for this concert.
        </p>
      )}
      {seats.error && <p role="alert" className="error">{humanError(seats.error)}</p>}
      {error && (
        <p role="alert" className="error">
          {humanError(error)}
        </p>
      )}
      <ul className="legend" aria-label="Legend">
        <li className="seat AVAILABLE">free</li>
        <li className="seat HELD">held</li>
        <li className="seat SOLD">sold</li>
        {tiers.map(([tier, price], i) => (
          <li key={tier} className={`tier tint-${i % 6}`}>
            {tier} {price}
          </li>
        ))}
      </ul>
      <div className="venue" role="group" aria-label={`Seats on ${date}`}>
        <div className="stage" aria-hidden="true">Stage</div>
        {rows.map(([row, inRow]) => (
          <div key={row} className="seatmap" role="group" aria-label={`Row ${row}`}>
            {inRow.map((s) => {
              const status = statusOf(s.number, s.status);
              const picked = basket.includes(s.number);
              const tint = tiers.findIndex(([tier]) => tier === s.tier) % 6;
              return (
                <button
                  key={s.number}
                  type="button"
                  className={`seat ${status} tint-${tint}${picked ? " picked" : ""}`}
                  data-seat={s.number}
                  data-status={status}
                  aria-pressed={picked}
                  disabled={status !== "AVAILABLE" || busy}
                  aria-label={`Seat ${s.number}, row ${row}, ${s.tier}, ${s.price}, ${status.toLowerCase()}`}
                  title={`Row ${row} · ${s.tier} · ${s.price}`}
                  onClick={() => toggle(s.number)}
                >
                  {s.number}
                </button>
              );
            })}
          </div>
        ))}
      </div>
      <div className="basket inline">
        <button
          type="button"
          disabled={basket.length === 0 || busy}
          onClick={() => void takeBasket().catch(() => void seats.refetch())}
        >
          {basket.length === 0
            ? "Pick seats on the map"
            : `Hold seat${basket.length > 1 ? "s" : ""} ${basket.join(", ")} · ${fromCents(total)}`}
        </button>
        <label>
          Or the best seats together
          <input
            type="number"
            min={1}
            max={remaining ?? 6}
            value={bestCount}
            onChange={(e) => setBestCount(Math.max(1, Number(e.target.value) || 1))}
          />
        </label>
        {tiers.length > 1 && (
          <label>
            in
            <select value={bestTier} onChange={(e) => setBestTier(e.target.value)}>
              <option value="">any tier</option>
              {tiers.map(([tier, price]) => (
                <option key={tier} value={tier}>
                  {tier} ({price})
                </option>
              ))}
            </select>
          </label>
        )}
        <button type="button" disabled={busy} onClick={() => void takeBest().catch(() => void seats.refetch())}>
          Hold the best {bestCount}
        </button>
      </div>
    </div>
  );
}
