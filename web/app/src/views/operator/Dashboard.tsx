import { useState, type FormEvent } from "react";
import { useMutation, useSubscription } from "@apollo/client";

import { SetQueueControlsDocument, WatchStatsDocument, type WatchStatsSubscription } from "../../gql/graphql";
import { humanError } from "../../errors";

type Stats = WatchStatsSubscription["queueStats"];

// The server's bounds (src/domain/queue/controls.rs), checked here as the operator types.
const MAX_ADMIT_PER_SECOND = 100_000;
const MAX_ACTIVE_LIMIT = 1_000_000;

function bounded(text: string, max: number, what: string): string | null {
  if (text.trim() === "") return null;
  if (!/^\d+$/.test(text.trim())) return `${what}: a whole number.`;
  const n = Number(text);
  return n >= 1 && n <= max ? null : `${what}: from 1 to ${max.toLocaleString()}.`;
}

/** The waiting room live (`queueStats` every tick): the numbers, a chart, pause, rate, limit. */
export function Dashboard({ concertId }: { concertId: string }) {
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
    setControls({ variables: { concertId, input } });
  const rateProblem = bounded(rate, MAX_ADMIT_PER_SECOND, "Admit per second");
  const limitProblem = bounded(limit, MAX_ACTIVE_LIMIT, "Active limit");
  const apply = async (e: FormEvent) => {
    e.preventDefault();
    if (rateProblem || limitProblem || (rate === "" && limit === "")) return;
    await control({
      ...(rate ? { admitPerSecond: Number(rate) } : {}),
      ...(limit ? { activeLimit: Number(limit) } : {}),
    });
    setRate("");
    setLimit("");
  };

  return (
    <div className="panel" aria-labelledby="dash-title">
      <h2 id="dash-title">Live</h2>
      {error && <p role="alert" className="error">{humanError(error)}</p>}
      {controlling.error && <p role="alert" className="error">{humanError(controlling.error)}</p>}
      {now ? (
        <>
          {/* The numbers change every tick: only the room's state is announced. */}
          <p role="status" className="visually-hidden">
            {now.soldOut ? "Sold out" : now.controls.paused ? "Paused" : "Admitting"}
          </p>
          <dl className="stats">
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
              <button type="button" onClick={() => void control({ paused: false }).catch(() => {})}>Resume</button>
            ) : (
              <button type="button" onClick={() => void control({ paused: true }).catch(() => {})}>Pause</button>
            )}
          </div>
          <form className="inline" onSubmit={(e) => void apply(e).catch(() => {})} aria-label="Admission" noValidate>
            <label>
              Admit per second
              <input type="number" min={1} max={MAX_ADMIT_PER_SECOND} step={1} value={rate} placeholder={String(now.controls.admitPerSecond)} aria-invalid={rateProblem != null} onChange={(e) => setRate(e.target.value)} />
            </label>
            <label>
              Active limit
              <input type="number" min={1} max={MAX_ACTIVE_LIMIT} step={1} value={limit} placeholder={String(now.controls.activeLimit)} aria-invalid={limitProblem != null} onChange={(e) => setLimit(e.target.value)} />
            </label>
            <button type="submit" disabled={rateProblem != null || limitProblem != null || (rate === "" && limit === "") || controlling.loading}>
              Apply
            </button>
          </form>
          {rateProblem && <p className="error">{rateProblem}</p>}
          {limitProblem && <p className="error">{limitProblem}</p>}
        </>
      ) : (
        <p>Connecting…</p>
      )}
    </div>
  );
}

/**
 * Waiting and active over the last two minutes of ticks: an SVG line chart with a count axis, a
 * time axis and a legend (the two lines differ by dash as well as colour).
 */
function Chart({ history }: { history: Stats[] }) {
  const width = 480;
  const height = 180;
  const left = 44;
  const bottom = 28;
  const plotW = width - left - 10;
  const plotH = height - bottom - 10;
  const max = Math.max(1, ...history.map((s) => Math.max(s.waiting, s.active)));
  const top = max <= 4 ? max : Math.ceil(max / 4) * 4;
  const first = Date.parse(history[0]?.readAt ?? "");
  const last = Date.parse(history[history.length - 1]?.readAt ?? "");
  const span = Math.max(1, Math.round((last - first) / 1000) || history.length - 1);
  const x = (i: number) => left + (i / Math.max(1, history.length - 1)) * plotW;
  const y = (v: number) => 10 + plotH - (v / top) * plotH;
  const line = (pick: (s: Stats) => number) => history.map((s, i) => `${x(i)},${y(pick(s))}`).join(" ");
  const ticks = [0, top / 2, top].map((v) => Math.round(v));
  const latest = history[history.length - 1];
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        width="100%"
        style={{ maxWidth: width }}
        role="img"
        aria-label={`Waiting and active fans over the last ${span} s; now ${latest?.waiting ?? 0} waiting, ${latest?.active ?? 0} active`}
      >
        {ticks.map((v) => (
          <g key={v}>
            <line x1={left} x2={left + plotW} y1={y(v)} y2={y(v)} stroke="#d6d3d1" />
            <text x={left - 6} y={y(v) + 4} textAnchor="end" fontSize="12" fill="#44403c">{v}</text>
          </g>
        ))}
        <line x1={left} x2={left} y1={10} y2={10 + plotH} stroke="#57534e" />
        <line x1={left} x2={left + plotW} y1={10 + plotH} y2={10 + plotH} stroke="#57534e" />
        <text x={left} y={height - 8} fontSize="12" fill="#44403c">−{span} s</text>
        <text x={left + plotW} y={height - 8} fontSize="12" fill="#44403c" textAnchor="end">now</text>
        <text x={left + plotW / 2} y={height - 8} fontSize="12" fill="#44403c" textAnchor="middle">time</text>
        <text x={12} y={10 + plotH / 2} fontSize="12" fill="#44403c" textAnchor="middle" transform={`rotate(-90 12 ${10 + plotH / 2})`}>fans</text>
        <polyline points={line((s) => s.waiting)} fill="none" stroke="#c2410c" strokeWidth="2.5" />
        <polyline points={line((s) => s.active)} fill="none" stroke="#15803d" strokeWidth="2.5" strokeDasharray="6 4" />
      </svg>
      <figcaption className="legend">
        <span><svg width="28" height="10" aria-hidden="true"><line x1="0" x2="28" y1="5" y2="5" stroke="#c2410c" strokeWidth="3" /></svg> Waiting</span>
        <span><svg width="28" height="10" aria-hidden="true"><line x1="0" x2="28" y1="5" y2="5" stroke="#15803d" strokeWidth="3" strokeDasharray="6 4" /></svg> Active</span>
      </figcaption>
    </figure>
  );
}
