import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import { useMutation, useQuery, useSubscription } from "@apollo/client";

import {
  HoldBestAvailableDocument,
  HoldSeatsDocument,
  SeatsDocument,
  SeatUpdatesDocument,
  TicketAllowanceDocument,
  type OrderFieldsFragment,
  type SeatsQuery,
} from "../gql/graphql";
import { humanError } from "../errors";
import { usePollWhileOffline } from "../fallback";
import { activeQueueToken, rememberOrderToken } from "../session";
import { clock, dayWithWeekday, useCountdown } from "../clock";
import { useMoney } from "../currency";
import { fromCents, toCents } from "../money";
import { Checkout } from "./Checkout";

type SeatRow = SeatsQuery["seats"][number];
/** What a seat is to this fan: the server's status, or theirs (held in their live order). */
type Shown = "AVAILABLE" | "HELD" | "SOLD" | "YOURS";

/** How often the map is read again when websockets fail (the live map's fallback). */
const POLL_MS = 2500;

/**
 * The venue map of a date: the stage, rows of seats tinted by tier, kept current by
 * `seatUpdates` (or by polling when websockets fail). Seats are picked into a basket (or the
 * best N together asked for) and held as one order, then paid in the checkout above the map,
 * where the fan's own seats show as theirs.
 */
export function SeatPicker(props: {
  concertId: string;
  dates: string[];
  turnEndsAt: string | null;
  /** The fan's turn is on: the map and picking. Without it (the turn ended under a live hold)
   * only the checkout shows, and the map is not asked for (it needs an ACTIVE turn). */
  admitted: boolean;
  /** Told when the order is paid (the room says so: this view may go once the order is PAID). */
  onPaid: (order: OrderFieldsFragment) => void;
  /** A live hold of this concert found on entering (a reload), shown as the checkout. */
  restored?: OrderFieldsFragment | null;
  /** Told after every hold and release, so the room knows whether the fan holds seats (they
   * outlive the turn). */
  onOrdersChanged?: () => void;
}) {
  const { concertId, dates } = props;
  const money = useMoney();
  const [date, setDate] = useState(props.restored?.date ?? dates[0] ?? "");
  const [order, setOrder] = useState<OrderFieldsFragment | null>(props.restored ?? null);
  const restoredId = props.restored?.id;
  useEffect(() => {
    if (props.restored && !order) {
      setOrder(props.restored);
      setDate(props.restored.date);
    }
    // Keyed by the order's id: a newly found order, not every render of the same one.
  }, [restoredId]);
  const [basket, setBasket] = useState<number[]>([]);
  const [bestCount, setBestCount] = useState("2");
  const [bestTier, setBestTier] = useState("");
  const admitted = props.admitted;
  const seats = useQuery(SeatsDocument, { variables: { concertId, date }, skip: !date || !admitted });
  const allowance = useQuery(TicketAllowanceDocument, {
    variables: { concertId },
    fetchPolicy: "network-only",
    skip: !admitted,
  });
  // Pushed changes since the map was last read; a fresh read supersedes them.
  const [statuses, setStatuses] = useState<Record<number, string>>({});
  const [live, setLive] = useState(true);
  const [holdSeats, holding] = useMutation(HoldSeatsDocument);
  const [holdBest, holdingBest] = useMutation(HoldBestAvailableDocument);
  const turnLeft = useCountdown(props.turnEndsAt);
  const remaining = allowance.data?.ticketAllowance.remaining;
  // "The best 2" when only 1 more is allowed would be refused: offer what is allowed.
  useEffect(() => {
    if (remaining !== undefined && remaining >= 1 && Number(bestCount) > remaining) setBestCount(String(remaining));
  }, [remaining]);

  useEffect(() => {
    setStatuses({});
    setBasket([]);
  }, [date]);
  useEffect(() => setStatuses({}), [seats.data]);
  useSubscription(SeatUpdatesDocument, {
    variables: { concertId, date },
    skip: !date || !live || !admitted,
    onData: ({ data }) => {
      const seat = data.data?.seatUpdates;
      if (!seat) return;
      setStatuses((s) => ({ ...s, [seat.number]: seat.status }));
      if (seat.status !== "AVAILABLE") setBasket((b) => b.filter((n) => n !== seat.number));
    },
    onError: () => setLive(false),
  });
  // Without websockets the map is read again every few seconds, so it still moves by itself.
  usePollWhileOffline(() => void seats.refetch().catch(() => {}), POLL_MS, date !== "" && admitted, live);

  const all = seats.data?.seats ?? [];
  const rows = useMemo(() => {
    const byRow = new Map<number, SeatRow[]>();
    for (const s of all) byRow.set(s.row, [...(byRow.get(s.row) ?? []), s]);
    return [...byRow.entries()].sort(([a], [b]) => a - b);
  }, [all]);
  const tiers = useMemo(() => {
    const seen = new Map<string, string>();
    for (const s of all) if (!seen.has(s.tier)) seen.set(s.tier, s.price);
    return [...seen.entries()];
  }, [all]);
  // Seats that came free on the map leave the basket when the map is read again.
  useEffect(() => {
    const free = new Set(all.filter((s) => s.status === "AVAILABLE").map((s) => s.number));
    setBasket((b) => (b.every((n) => free.has(n)) ? b : b.filter((n) => free.has(n))));
  }, [all]);

  const yours = new Set(order && order.date === date ? order.seats.map((s) => s.number) : []);
  const shown = (s: SeatRow): Shown => {
    const status = statuses[s.number] ?? s.status;
    if (yours.has(s.number) && status !== "AVAILABLE") return "YOURS";
    return status === "AVAILABLE" || status === "HELD" ? status : "SOLD";
  };
  const total = all
    .filter((s) => basket.includes(s.number))
    .reduce((sum, s) => sum + toCents(s.price), 0n);
  const toggle = (n: number) =>
    setBasket((b) => (b.includes(n) ? b.filter((x) => x !== n) : [...b, n].sort((x, y) => x - y)));
  const held = (o: OrderFieldsFragment) => {
    rememberOrderToken(o.id, activeQueueToken());
    setBasket([]);
    setOrder(o);
    props.onOrdersChanged?.();
    void seats.refetch();
  };
  // A refusal contradicts the map (a seat was taken): it is read again at once.
  const refused = () => {
    if (!admitted) return;
    void seats.refetch();
    void allowance.refetch();
  };
  const takeBasket = async () => {
    const r = await holdSeats({ variables: { concertId, date, seatNumbers: basket } });
    if (r.data) held(r.data.holdSeats);
  };
  const takeBest = async () => {
    const r = await holdBest({
      variables: { concertId, date, count: best, tier: bestTier === "" ? null : bestTier },
    });
    if (r.data) held(r.data.holdBestAvailable);
  };
  const error = holding.error ?? holdingBest.error;
  const busy = holding.loading || holdingBest.loading;
  const picking = !order && admitted;
  // What the fair share still allows (unknown until read: the server decides then).
  const room = remaining ?? Number.POSITIVE_INFINITY;
  const best = Math.floor(Number(bestCount));
  const bestValid = Number.isInteger(best) && best >= 1;

  return (
    <div>
      {order && (
        <Checkout
          order={order}
          onPaid={props.onPaid}
          onLost={() => {
            setOrder(null);
            props.onOrdersChanged?.();
            refused();
          }}
        />
      )}
      {picking && props.turnEndsAt && (
        <p className="turn" role="timer" aria-live="off" data-turn-left={turnLeft}>
          Your turn: <strong>{clock(turnLeft)}</strong> left to hold seats
          {turnLeft > 0 && turnLeft <= 60 && (
            <span role="alert"> · less than a minute left in your turn</span>
          )}
        </p>
      )}
      {!admitted ? null : (
        <>
      <label>
        Date{" "}
        <select value={date} onChange={(e) => setDate(e.target.value)} disabled={!picking}>
          {dates.map((d) => (
            <option key={d} value={d}>{dayWithWeekday(d)}</option>
          ))}
        </select>
      </label>
      {picking && remaining !== undefined && (
        <p data-allowance={remaining}>
          You may take {remaining} more ticket{remaining === 1 ? "" : "s"} for this concert.
        </p>
      )}
      {seats.error && <p role="alert" className="error">{humanError(seats.error)}</p>}
      {picking && error && (
        <p role="alert" className="error">
          {humanError(error)}
        </p>
      )}
      <ul className="legend" aria-label="Legend">
        <li><span className="seat AVAILABLE" aria-hidden="true">1</span> free</li>
        <li><span className="seat HELD" aria-hidden="true">1</span> held</li>
        <li><span className="seat SOLD" aria-hidden="true">1</span> sold</li>
        <li><span className="seat YOURS" aria-hidden="true">1</span> yours</li>
        {tiers.map(([tier, price], i) => (
          <li key={tier} className={`tier tint-${i % 6}`} data-tier={tier}>
            {tier} {money(price)}
          </li>
        ))}
      </ul>
      <VenueMap
        date={date}
        rows={rows}
        tierIndex={(tier) => tiers.findIndex(([t]) => t === tier) % 6}
        shown={shown}
        status={(s) => statuses[s.number] ?? s.status}
        basket={basket}
        pickable={picking && !busy}
        money={money}
        onToggle={toggle}
      />
      {picking && (
        <div className="basket inline">
          <button
            type="button"
            disabled={basket.length === 0 || busy || basket.length > room}
            onClick={() => void takeBasket().catch(refused)}
          >
            {basket.length === 0
              ? "Pick seats on the map"
              : `Hold seat${basket.length > 1 ? "s" : ""} ${basket.join(", ")} · ${money(fromCents(total))}`}
          </button>
          {basket.length > room && (
            <p className="error">
              That is more than the {room} ticket{room === 1 ? "" : "s"} you may still take: unpick{" "}
              {basket.length - room}.
            </p>
          )}
          <label>
            Or the best seats together
            <input
              type="number"
              min={1}
              max={remaining ?? 6}
              value={bestCount}
              aria-invalid={!bestValid || best > room}
              onChange={(e) => setBestCount(e.target.value)}
            />
          </label>
          {tiers.length > 1 && (
            <label>
              in
              <select value={bestTier} onChange={(e) => setBestTier(e.target.value)}>
                <option value="">any tier</option>
                {tiers.map(([tier, price]) => (
                  <option key={tier} value={tier}>
                    {tier} ({money(price)})
                  </option>
                ))}
              </select>
            </label>
          )}
          <button
            type="button"
            disabled={busy || !bestValid || best > room}
            onClick={() => void takeBest().catch(refused)}
          >
            Hold the best {bestValid ? best : ""}
          </button>
        </div>
      )}
        </>
      )}
    </div>
  );
}

const WORDS: Record<Shown, string> = {
  AVAILABLE: "free",
  HELD: "held by someone",
  SOLD: "sold",
  YOURS: "yours",
};

/**
 * The seats as rows facing the stage. One seat is in the Tab order at a time (roving tabindex):
 * the arrow keys move along a row and between rows, Home and End to a row's ends, Space or Enter
 * picks. Seats that cannot be picked stay focusable (announced, not skipped) but do nothing.
 */
function VenueMap(props: {
  date: string;
  rows: [number, SeatRow[]][];
  tierIndex: (tier: string) => number;
  shown: (s: SeatRow) => Shown;
  /** The status as the server last told it (pushed or read). */
  status: (s: SeatRow) => string;
  basket: number[];
  pickable: boolean;
  money: (amount: string) => string;
  onToggle: (n: number) => void;
}) {
  const { rows } = props;
  const [focus, setFocus] = useState<number | null>(null);
  const map = useRef<HTMLDivElement>(null);
  const first = rows[0]?.[1][0]?.number ?? null;
  const exists = rows.some(([, seats]) => seats.some((s) => s.number === focus));
  const current = focus !== null && exists ? focus : first;

  const move = (e: KeyboardEvent<HTMLDivElement>) => {
    if (current === null) return;
    const r = rows.findIndex(([, seats]) => seats.some((s) => s.number === current));
    if (r < 0) return;
    const inRow = rows[r][1];
    const c = inRow.findIndex((s) => s.number === current);
    const at = (ri: number, ci: number) => {
      const target = rows[ri][1];
      return target[Math.min(ci, target.length - 1)].number;
    };
    let next: number | null = null;
    if (e.key === "ArrowRight") next = inRow[Math.min(c + 1, inRow.length - 1)].number;
    else if (e.key === "ArrowLeft") next = inRow[Math.max(c - 1, 0)].number;
    else if (e.key === "ArrowDown") next = at(Math.min(r + 1, rows.length - 1), c);
    else if (e.key === "ArrowUp") next = at(Math.max(r - 1, 0), c);
    else if (e.key === "Home") next = inRow[0].number;
    else if (e.key === "End") next = inRow[inRow.length - 1].number;
    if (next === null) return;
    e.preventDefault();
    setFocus(next);
    map.current?.querySelector<HTMLElement>(`[data-seat="${next}"]`)?.focus();
  };

  return (
    <div
      ref={map}
      className="venue"
      role="group"
      aria-label={`Seats on ${dayWithWeekday(props.date)}`}
      aria-describedby="venue-keys"
      onKeyDown={move}
    >
      <p id="venue-keys" className="hint">
        Arrow keys move between seats, Space picks one.
      </p>
      <div className="stage" aria-hidden="true">Stage</div>
      {rows.map(([row, inRow]) => (
        <div key={row} className="seatmap" role="group" aria-label={`Row ${row}`}>
          {inRow.map((s) => {
            const status = props.shown(s);
            const picked = props.basket.includes(s.number);
            const usable = status === "AVAILABLE" && props.pickable;
            return (
              <button
                key={s.number}
                type="button"
                className={`seat ${status} tint-${props.tierIndex(s.tier)}${picked ? " picked" : ""}`}
                data-seat={s.number}
                data-status={props.status(s)}
                data-yours={status === "YOURS" || undefined}
                tabIndex={s.number === current ? 0 : -1}
                aria-pressed={picked}
                aria-disabled={!usable}
                aria-label={`Seat ${s.number}, row ${row}, ${s.tier}, ${props.money(s.price)}, ${WORDS[status]}`}
                title={`Row ${row} · ${s.tier} · ${props.money(s.price)}`}
                onFocus={() => setFocus(s.number)}
                onClick={() => usable && props.onToggle(s.number)}
              >
                {s.number}
              </button>
            );
          })}
        </div>
      ))}
    </div>
  );
}
