import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useSubscription } from "@apollo/client";

import {
  ConcertsDocument,
  CreateConcertDocument,
  RefundDocument,
  ScheduleSaleDocument,
  SetQueueControlsDocument,
  WatchStatsDocument,
  type WatchStatsSubscription,
} from "../gql/graphql";
import { humanError } from "../errors";

/** The operator's console: make a concert, schedule its sale, watch and steer the line, refund. */
export function Operator() {
  const concerts = useQuery(ConcertsDocument);
  const [selected, setSelected] = useState("");
  const concertId = selected || concerts.data?.concerts[0]?.id || "";
  return (
    <section aria-labelledby="operator-title">
      <h1 id="operator-title">Operator</h1>
      <CreateConcert onCreated={(id) => { setSelected(id); void concerts.refetch(); }} />
      <label>
        Concert{" "}
        <select value={concertId} onChange={(e) => setSelected(e.target.value)} aria-label="Concert to run">
          {concerts.data?.concerts.map((c) => (
            <option key={c.id} value={c.id}>{c.title}</option>
          ))}
        </select>
      </label>
      {concertId && (
        <>
          <ScheduleSale concertId={concertId} onScheduled={() => void concerts.refetch()} />
          <Dashboard key={concertId} concertId={concertId} />
        </>
      )}
      <RefundForm />
    </section>
  );
}

/** "Floor:1-10:250.00; Balcony:11-60:90.00" → price tiers. */
function parseTiers(text: string) {
  return text
    .split(";")
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const [name, range, price] = t.split(":").map((p) => p.trim());
      const [from, to] = (range ?? "").split("-").map(Number);
      return { name: name ?? "", fromSeat: from ?? 0, toSeat: to ?? 0, price: price ?? "" };
    });
}

function CreateConcert({ onCreated }: { onCreated: (id: string) => void }) {
  const [title, setTitle] = useState("");
  const [venue, setVenue] = useState("");
  const [dates, setDates] = useState("");
  const [seats, setSeats] = useState("50");
  const [tiers, setTiers] = useState("General:1-50:100.00");
  const [create, state] = useMutation(CreateConcertDocument);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const r = await create({
      variables: {
        input: {
          title,
          venue,
          dates: dates.split(",").map((d) => d.trim()).filter(Boolean),
          seatsPerDate: Number(seats),
          priceTiers: parseTiers(tiers),
        },
      },
    });
    if (r.data) onCreated(r.data.createConcert.id);
  };
  return (
    <form onSubmit={(e) => void submit(e).catch(() => {})} aria-labelledby="create-title" className="panel">
      <h2 id="create-title">New concert</h2>
      <label>Title <input value={title} onChange={(e) => setTitle(e.target.value)} required /></label>
      <label>Venue <input value={venue} onChange={(e) => setVenue(e.target.value)} required /></label>
      <label>Dates (YYYY-MM-DD, comma-separated) <input value={dates} onChange={(e) => setDates(e.target.value)} required /></label>
      <label>Seats per date <input value={seats} inputMode="numeric" onChange={(e) => setSeats(e.target.value)} /></label>
      <label>Price tiers (name:from-to:price; …) <input value={tiers} onChange={(e) => setTiers(e.target.value)} /></label>
      {state.error && <p role="alert" className="error">{humanError(state.error)}</p>}
      {state.data && <p role="status">Created. Schedule its sale to put it on sale.</p>}
      <button type="submit" disabled={state.loading}>Create concert</button>
    </form>
  );
}

function ScheduleSale({ concertId, onScheduled }: { concertId: string; onScheduled: () => void }) {
  const [opensIn, setOpensIn] = useState("1");
  const [schedule, state] = useMutation(ScheduleSaleDocument);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const opensAt = new Date(Date.now() + Number(opensIn) * 60_000).toISOString();
    await schedule({ variables: { concertId, opensAt } });
    onScheduled();
  };
  return (
    <form onSubmit={(e) => void submit(e).catch(() => {})} className="panel inline" aria-label="Schedule the sale">
      <label>Sale opens in (minutes) <input value={opensIn} inputMode="decimal" onChange={(e) => setOpensIn(e.target.value)} /></label>
      <button type="submit" disabled={state.loading}>Schedule sale</button>
      {state.error && <p role="alert" className="error">{humanError(state.error)}</p>}
      {state.data && <p role="status">Opens {new Date(state.data.scheduleSale.opensAt).toLocaleString()}; seed commitment {state.data.scheduleSale.seedCommitment.slice(0, 12)}…</p>}
    </form>
  );
}

type Stats = WatchStatsSubscription["queueStats"];

function Dashboard({ concertId }: { concertId: string }) {
  const [history, setHistory] = useState<Stats[]>([]);
  const { error } = useSubscription(WatchStatsDocument, {
    variables: { concertId },
    onData: ({ data }) => {
      const s = data.data?.queueStats;
      if (s) setHistory((h) => [...h.slice(-119), s]);
    },
  });
  const [setControls, controlling] = useMutation(SetQueueControlsDocument);
  const [rate, setRate] = useState("");
  const [limit, setLimit] = useState("");
  const now = history[history.length - 1];
  const control = (input: { paused?: boolean; admitPerSecond?: number; activeLimit?: number }) =>
    void setControls({ variables: { concertId, input } }).catch(() => {});

  return (
    <div className="panel" aria-labelledby="dash-title">
      <h2 id="dash-title">Live</h2>
      {error && <p role="alert" className="error">{humanError(error)}</p>}
      {controlling.error && <p role="alert" className="error">{humanError(controlling.error)}</p>}
      {now ? (
        <>
          <dl className="stats" aria-live="polite">
            <div><dt>Waiting</dt><dd data-stat="waiting">{now.waiting}</dd></div>
            <div><dt>Pre-queue</dt><dd data-stat="prequeued">{now.prequeued}</dd></div>
            <div><dt>Active</dt><dd data-stat="active">{now.active}</dd></div>
            <div><dt>Admitted / min</dt><dd data-stat="admittedLastMinute">{now.admittedLastMinute}</dd></div>
            <div><dt>Seats free</dt><dd data-stat="seatsAvailable">{now.seatsAvailable}</dd></div>
            <div><dt>Held</dt><dd data-stat="seatsHeld">{now.seatsHeld}</dd></div>
            <div><dt>Sold</dt><dd data-stat="seatsSold">{now.seatsSold}</dd></div>
            <div><dt>State</dt><dd data-stat="state">{now.soldOut ? "sold out" : now.controls.paused ? "paused" : "admitting"}</dd></div>
          </dl>
          <Chart history={history} />
          <div className="inline">
            {now.controls.paused ? (
              <button type="button" onClick={() => control({ paused: false })}>Resume</button>
            ) : (
              <button type="button" onClick={() => control({ paused: true })}>Pause</button>
            )}
            <label>Admit per second <input value={rate} placeholder={String(now.controls.admitPerSecond)} inputMode="numeric" onChange={(e) => setRate(e.target.value)} /></label>
            <label>Active limit <input value={limit} placeholder={String(now.controls.activeLimit)} inputMode="numeric" onChange={(e) => setLimit(e.target.value)} /></label>
            <button
              type="button"
              onClick={() =>
                control({
                  ...(rate ? { admitPerSecond: Number(rate) } : {}),
                  ...(limit ? { activeLimit: Number(limit) } : {}),
                })
              }
            >
              Apply
            </button>
          </div>
        </>
      ) : (
        <p>Connecting…</p>
      )}
    </div>
  );
}

/** Waiting and active over the last ticks: a small SVG line chart. */
function Chart({ history }: { history: Stats[] }) {
  const width = 360;
  const height = 80;
  const max = Math.max(1, ...history.map((s) => Math.max(s.waiting, s.active)));
  const line = (pick: (s: Stats) => number) =>
    history
      .map((s, i) => `${(i / Math.max(1, history.length - 1)) * width},${height - (pick(s) / max) * height}`)
      .join(" ");
  return (
    <svg width={width} height={height} role="img" aria-label="Waiting and active over time" className="chart">
      <polyline points={line((s) => s.waiting)} fill="none" stroke="#c2410c" strokeWidth="2" />
      <polyline points={line((s) => s.active)} fill="none" stroke="#15803d" strokeWidth="2" />
    </svg>
  );
}

function RefundForm() {
  const [reservationId, setReservationId] = useState("");
  const [refund, state] = useMutation(RefundDocument);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    await refund({ variables: { reservationId, key: `refund-${reservationId}` } });
  };
  return (
    <form onSubmit={(e) => void submit(e).catch(() => {})} className="panel inline" aria-label="Refund a ticket">
      <label>Reservation id <input value={reservationId} onChange={(e) => setReservationId(e.target.value)} required /></label>
      <button type="submit" disabled={state.loading}>Refund</button>
      {state.error && <p role="alert" className="error">{humanError(state.error)}</p>}
      {state.data && <p role="status">Refunded: {state.data.refund.status}</p>}
    </form>
  );
}
