import { useRef, useState, type FormEvent } from "react";
import { useMutation } from "@apollo/client";

import { CreateConcertDocument } from "../../gql/graphql";
import { humanError } from "../../errors";
import { useMoney } from "../../currency";

interface TierRow {
  key: number;
  name: string;
  from: string;
  to: string;
  price: string;
}

// The server's bounds (src/domain/lineup/request.rs): checked here as the operator types.
const PRICE = /^\d{1,10}(\.\d{1,2})?$/;
const MAX_TEXT = 200;
const MAX_TIER_NAME = 64;
const MAX_TIERS = 50;
const positive = (price: string) => PRICE.test(price) && /[1-9]/.test(price);
let nextKey = 1;
const row = (name: string, from: number | string, to: number | string, price: string): TierRow => ({
  key: nextKey++,
  name,
  from: String(from),
  to: String(to),
  price,
});
const whole = (s: string) => (/^\d+$/.test(s.trim()) ? Number(s) : Number.NaN);
const today = () => new Date().toISOString().slice(0, 10);

/**
 * What is wrong with each tier row, checked as the operator types (the server checks the same:
 * tiers must cover seats 1 to N with no gap or overlap).
 */
export function tierProblems(tiers: TierRow[], seats: number): Map<number, string> {
  const problems = new Map<number, string>();
  const names = new Set<string>();
  for (const t of tiers) {
    const from = whole(t.from);
    const to = whole(t.to);
    if (t.name.trim() === "") problems.set(t.key, "Give the tier a name.");
    else if (t.name.trim().length > MAX_TIER_NAME) problems.set(t.key, `At most ${MAX_TIER_NAME} characters.`);
    else if (names.has(t.name.trim())) problems.set(t.key, "Two tiers have this name.");
    else if (Number.isNaN(from) || Number.isNaN(to) || from < 1 || to < from)
      problems.set(t.key, "Seats go from a number to a number not below it.");
    else if (Number.isFinite(seats) && to > seats) problems.set(t.key, `The date has ${seats} seats.`);
    else if (!positive(t.price.trim())) problems.set(t.key, "A price above 0, such as 80 or 80.50.");
    names.add(t.name.trim());
  }
  if (problems.size > 0 || !Number.isFinite(seats)) return problems;
  const sorted = [...tiers].sort((a, b) => whole(a.from) - whole(b.from));
  let expected = 1;
  for (const t of sorted) {
    if (whole(t.from) !== expected) {
      problems.set(
        t.key,
        whole(t.from) > expected
          ? `Seats ${expected}–${whole(t.from) - 1} are in no tier.`
          : `Overlaps the tier before (it ends at ${expected - 1}).`,
      );
      return problems;
    }
    expected = whole(t.to) + 1;
  }
  const last = sorted[sorted.length - 1];
  if (last && expected !== seats + 1) problems.set(last.key, `Seats ${expected}–${seats} are in no tier.`);
  return problems;
}

/** A new concert: its dates (date pickers), seats and rows, and price tiers as rows. */
export function CreateConcert({ onCreated }: { onCreated: (id: string) => void }) {
  const money = useMoney();
  const [title, setTitle] = useState("");
  const [venue, setVenue] = useState("");
  const [dates, setDates] = useState<string[]>([""]);
  const [seats, setSeats] = useState("50");
  const [perRow, setPerRow] = useState("10");
  const [tiers, setTiers] = useState<TierRow[]>(() => [row("General", 1, 50, "100.00")]);
  const [create, state] = useMutation(CreateConcertDocument);
  const [created, setCreated] = useState<string | null>(null);
  // A second click while the first is on its way does nothing (state updates are not instant).
  const sending = useRef(false);

  const seatCount = whole(seats);
  const rowSize = perRow.trim() === "" ? null : whole(perRow);
  const seatsProblem =
    // The largest a date may have is the server's MAX_SEATS_PER_DATE: it says so if exceeded.
    Number.isNaN(seatCount) || seatCount < 1 ? "Seats per date: a whole number, at least 1." : null;
  const rowProblem =
    rowSize !== null && (Number.isNaN(rowSize) || rowSize < 1)
      ? "Seats per row: a whole number, at least 1."
      : rowSize !== null && !seatsProblem && rowSize > seatCount
        ? "Seats per row cannot be more than seats per date."
        : null;
  const picked = dates.filter((d) => d !== "");
  const datesProblem =
    picked.length === 0
      ? "Pick at least one date."
      : new Set(picked).size !== picked.length
        ? "A date is picked twice."
        : picked.some((d) => d < today())
          ? "A date is in the past."
          : null;
  const problems = tierProblems(tiers, seatCount);
  const valid =
    title.trim() !== "" && venue.trim() !== "" && !seatsProblem && !rowProblem && !datesProblem && problems.size === 0;

  const setTier = (key: number, change: Partial<TierRow>) =>
    setTiers((ts) => ts.map((t) => (t.key === key ? { ...t, ...change } : t)));
  const addTier = () =>
    setTiers((ts) => {
      const end = Math.max(0, ...ts.map((t) => whole(t.to) || 0));
      const from = Math.min(end + 1, Number.isFinite(seatCount) ? seatCount : end + 1);
      return [...ts, row("", from, Number.isFinite(seatCount) ? seatCount : from, "")];
    });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!valid || sending.current) return;
    sending.current = true;
    try {
      const r = await create({
        variables: {
          input: {
            title: title.trim(),
            venue: venue.trim(),
            dates: [...picked].sort(),
            seatsPerDate: seatCount,
            ...(rowSize !== null ? { seatsPerRow: rowSize } : {}),
            priceTiers: tiers.map((t) => ({
              name: t.name.trim(),
              fromSeat: whole(t.from),
              toSeat: whole(t.to),
              price: t.price.trim(),
            })),
          },
        },
      });
      if (r.data) {
        setCreated(r.data.createConcert.title);
        setTitle("");
        setVenue("");
        setDates([""]);
        onCreated(r.data.createConcert.id);
      }
    } finally {
      sending.current = false;
    }
  };

  return (
    <form onSubmit={(e) => void submit(e).catch(() => {})} aria-labelledby="create-title" className="panel" noValidate>
      <h2 id="create-title">New concert</h2>
      <label>
        Title <input value={title} maxLength={MAX_TEXT} onChange={(e) => setTitle(e.target.value)} required />
      </label>
      <label>
        Venue <input value={venue} maxLength={MAX_TEXT} onChange={(e) => setVenue(e.target.value)} required />
      </label>
      <fieldset>
        <legend>Dates</legend>
        {dates.map((d, i) => (
          <div className="inline" key={i}>
            <label>
              Date {i + 1}
              <input
                type="date"
                value={d}
                min={today()}
                onChange={(e) => setDates((ds) => ds.map((x, j) => (j === i ? e.target.value : x)))}
              />
            </label>
            {dates.length > 1 && (
              <button type="button" className="link" onClick={() => setDates((ds) => ds.filter((_, j) => j !== i))}>
                Remove date {i + 1}
              </button>
            )}
          </div>
        ))}
        <button type="button" className="secondary" onClick={() => setDates((ds) => [...ds, ""])}>
          Add a date
        </button>
        {datesProblem && picked.length > 0 && <p className="error">{datesProblem}</p>}
      </fieldset>
      <div className="inline">
        <label>
          Seats per date
          <input
            type="number"
            min={1}
            step={1}
            value={seats}
            aria-invalid={seatsProblem != null}
            onChange={(e) => setSeats(e.target.value)}
          />
        </label>
        <label>
          Seats per row
          <input
            type="number"
            min={1}
            step={1}
            value={perRow}
            aria-invalid={rowProblem != null}
            onChange={(e) => setPerRow(e.target.value)}
          />
        </label>
      </div>
      {seatsProblem && <p className="error">{seatsProblem}</p>}
      {rowProblem && <p className="error">{rowProblem}</p>}
      <fieldset>
        <legend>Price tiers (seats from the stage)</legend>
        {tiers.map((t, i) => {
          const problem = problems.get(t.key);
          const hint = `tier-${t.key}-problem`;
          return (
            <div className="tier-row inline" key={t.key} data-tier-row={i + 1}>
              <label>
                Tier {i + 1} name
                <input value={t.name} maxLength={MAX_TIER_NAME} onChange={(e) => setTier(t.key, { name: e.target.value })} aria-invalid={problem != null} aria-describedby={problem ? hint : undefined} />
              </label>
              <label>
                From seat
                <input type="number" min={1} step={1} value={t.from} onChange={(e) => setTier(t.key, { from: e.target.value })} aria-invalid={problem != null} aria-describedby={problem ? hint : undefined} />
              </label>
              <label>
                To seat
                <input type="number" min={1} step={1} value={t.to} onChange={(e) => setTier(t.key, { to: e.target.value })} aria-invalid={problem != null} aria-describedby={problem ? hint : undefined} />
              </label>
              <label>
                Price
                <input value={t.price} inputMode="decimal" onChange={(e) => setTier(t.key, { price: e.target.value })} aria-invalid={problem != null} aria-describedby={problem ? hint : undefined} />
              </label>
              {tiers.length > 1 && (
                <button type="button" className="link" onClick={() => setTiers((ts) => ts.filter((x) => x.key !== t.key))}>
                  Remove tier {i + 1}
                </button>
              )}
              {problem ? (
                <p id={hint} className="error">{problem}</p>
              ) : (
                positive(t.price.trim()) && <p className="hint">{money(t.price.trim())} a seat</p>
              )}
            </div>
          );
        })}
        <button type="button" className="secondary" onClick={addTier} disabled={tiers.length >= MAX_TIERS}>
          Add a tier
        </button>
      </fieldset>
      {state.error && <p role="alert" className="error">{humanError(state.error)}</p>}
      {created && !state.loading && (
        <p role="status">Created “{created}”. Schedule its sale below to put it on sale.</p>
      )}
      <button type="submit" disabled={!valid || state.loading}>
        {state.loading ? "Creating…" : "Create concert"}
      </button>
    </form>
  );
}
