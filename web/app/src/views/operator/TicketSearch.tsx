import { useRef, useState, type FormEvent } from "react";
import { useLazyQuery, useMutation } from "@apollo/client";

import { RefundDocument, TicketSearchDocument, type TicketSearchQuery } from "../../gql/graphql";
import { humanError } from "../../errors";
import { dayWithWeekday } from "../../clock";
import { useMoney } from "../../currency";
import { Confirm } from "../Confirm";

type Found = TicketSearchQuery["ticketSearch"][number];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the operator typed, as the search's one filter: an order id, a seat number or e-mail. */
export function searchFilter(text: string): { orderId?: string; seatNumber?: number; email?: string } {
  const t = text.trim();
  if (UUID.test(t)) return { orderId: t };
  if (/^\d{1,6}$/.test(t)) return { seatNumber: Number(t) };
  return { email: t };
}

const WORDS: Record<Found["status"], string> = {
  HELD: "held",
  PAID: "paid",
  REFUNDED: "refunded",
  EXPIRED: "hold ran out",
  CANCELLED: "given back",
};

/**
 * The concert's tickets found by a fan's e-mail (or part of it), a seat number or an order id,
 * in a table; a paid one refunded after a confirmation that names fan, seat and amount.
 */
export function TicketSearch({ concertId }: { concertId: string }) {
  const money = useMoney();
  const [text, setText] = useState("");
  const [search, found] = useLazyQuery(TicketSearchDocument, { fetchPolicy: "network-only" });
  const [refund, refunding] = useMutation(RefundDocument);
  const [asking, setAsking] = useState<Found | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const doneRef = useRef<HTMLParagraphElement>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (text.trim() === "") return;
    setDone(null);
    void search({ variables: { concertId, ...searchFilter(text) } });
  };
  const confirmRefund = async (t: Found) => {
    setAsking(null);
    await refund({ variables: { reservationId: t.reservationId, key: `refund-${t.reservationId}` } });
    setDone(`Refunded seat ${t.seatNumber} on ${dayWithWeekday(t.date)} to ${t.fanEmail}: ${money(t.price)} back in their wallet.`);
    await found.refetch();
    // The button that was pressed is gone with the refund: focus goes to what happened.
    doneRef.current?.focus();
  };
  const rows = found.data?.ticketSearch ?? [];
  return (
    <div className="panel" aria-labelledby="search-title">
      <h2 id="search-title">Tickets</h2>
      <form className="inline" role="search" aria-label="Find tickets" onSubmit={submit}>
        <label>
          Fan e-mail, seat number or order id
          <input type="search" value={text} maxLength={254} onChange={(e) => setText(e.target.value)} />
        </label>
        <button type="submit" disabled={text.trim() === "" || found.loading}>
          Find
        </button>
      </form>
      {found.error && <p role="alert" className="error">{humanError(found.error)}</p>}
      {refunding.error && <p role="alert" className="error">{humanError(refunding.error)}</p>}
      {done && (
        <p role="status" ref={doneRef} tabIndex={-1}>
          {done}
        </p>
      )}
      {found.called && !found.loading && found.data && (
        <p role="status">
          {rows.length === 0 ? "No ticket matches." : `${rows.length} ticket${rows.length === 1 ? "" : "s"} found.`}
        </p>
      )}
      {rows.length > 0 && (
        <div className="scroll">
          <table>
            <caption className="hint">Newest first</caption>
            <thead>
              <tr>
                <th scope="col">Fan</th>
                <th scope="col">Date</th>
                <th scope="col">Seat</th>
                <th scope="col">Price</th>
                <th scope="col">Status</th>
                <th scope="col">Order</th>
                <th scope="col"><span className="visually-hidden">Action</span></th>
              </tr>
            </thead>
            <tbody>
              {rows.map((t) => (
                <tr key={t.reservationId} data-status={t.status} data-fan={t.fanEmail}>
                  <td>{t.fanUsername}<br /><span className="hint">{t.fanEmail}</span></td>
                  <td>{dayWithWeekday(t.date)}</td>
                  <td>{t.seatNumber} · {t.tier}</td>
                  <td>{money(t.price)}</td>
                  <td>{WORDS[t.status]}</td>
                  <td><code title={t.orderId}>{t.orderId.slice(0, 8)}</code></td>
                  <td>
                    {t.status === "PAID" && (
                      <button type="button" disabled={refunding.loading} onClick={() => setAsking(t)}>
                        Refund seat {t.seatNumber}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {asking && (
        <Confirm
          title={`Refund seat ${asking.seatNumber}?`}
          confirm={`Refund ${money(asking.price)}`}
          cancel="Cancel"
          onConfirm={() => void confirmRefund(asking).catch(() => {})}
          onCancel={() => setAsking(null)}
        >
          <p>
            {asking.fanUsername} ({asking.fanEmail}) gets {money(asking.price)} back in their wallet, and seat{" "}
            {asking.seatNumber} ({asking.tier}) on {dayWithWeekday(asking.date)} goes back on sale. This cannot be undone.
          </p>
        </Confirm>
      )}
    </div>
  );
}
