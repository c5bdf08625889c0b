import { useState, type FormEvent } from "react";
import { useMutation } from "@apollo/client";

import { ScheduleSaleDocument } from "../../gql/graphql";
import { humanError } from "../../errors";

/** "2027-01-08T19:30" in the operator's time zone, as a datetime-local input shows it. */
function local(at: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}T${two(at.getHours())}:${two(at.getMinutes())}`;
}

/**
 * The sale's moments with date/time pickers in the operator's time zone: when the sale opens
 * and, optionally, when the pre-queue opens before it (fans who join then get a place drawn at
 * random when the sale opens).
 */
export function ScheduleSale({ concertId, onScheduled }: { concertId: string; onScheduled: () => void }) {
  const [opens, setOpens] = useState(() => local(new Date(Date.now() + 10 * 60_000)));
  const [prequeue, setPrequeue] = useState("");
  const [schedule, state] = useMutation(ScheduleSaleDocument);
  const opensAt = Date.parse(opens);
  const prequeueAt = prequeue === "" ? null : Date.parse(prequeue);
  const problem = Number.isNaN(opensAt)
    ? "Pick when the sale opens."
    : opensAt <= Date.now()
      ? "The sale must open in the future."
      : prequeueAt !== null && (Number.isNaN(prequeueAt) || prequeueAt >= opensAt)
        ? "The pre-queue opens before the sale."
        : prequeueAt !== null && prequeueAt <= Date.now()
          ? "The pre-queue must open in the future (leave it empty to open it with the sale)."
          : null;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    // Checked again now: a form left open can have slipped into the past.
    if (problem || opensAt <= Date.now() || (prequeueAt !== null && prequeueAt <= Date.now())) return;
    await schedule({
      variables: {
        concertId,
        opensAt: new Date(opensAt).toISOString(),
        prequeueOpensAt: prequeueAt === null ? null : new Date(prequeueAt).toISOString(),
      },
    });
    onScheduled();
  };
  const when = (iso: string) => new Date(iso).toLocaleString(undefined, { dateStyle: "full", timeStyle: "short" });
  return (
    <form onSubmit={(e) => void submit(e).catch(() => {})} className="panel" aria-labelledby="sale-title" noValidate>
      <h2 id="sale-title">Sale</h2>
      <div className="inline">
        <label>
          Sale opens
          <input type="datetime-local" value={opens} onChange={(e) => setOpens(e.target.value)} aria-invalid={problem != null} />
        </label>
        <label>
          Pre-queue opens (optional)
          <input type="datetime-local" value={prequeue} max={opens} onChange={(e) => setPrequeue(e.target.value)} />
        </label>
        <button type="submit" disabled={problem != null || state.loading}>
          Schedule sale
        </button>
      </div>
      {problem && <p className="error">{problem}</p>}
      {state.error && <p role="alert" className="error">{humanError(state.error)}</p>}
      {state.data && (
        <p role="status">
          Opens {when(state.data.scheduleSale.opensAt)}; seed commitment{" "}
          <code>{state.data.scheduleSale.seedCommitment.slice(0, 12)}…</code>
        </p>
      )}
    </form>
  );
}
