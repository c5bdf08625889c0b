import { useCallback, useEffect, useRef, useState } from "react";
import { useApolloClient, useMutation, useQuery, useSubscription } from "@apollo/client";

import {
  ConcertsDocument,
  EnterQueueDocument,
  MyLiveOrdersDocument,
  PollTicketDocument,
  QueueChallengeDocument,
  SaleTimesDocument,
  WatchTicketDocument,
  type OrderFieldsFragment,
  type TicketFieldsFragment,
} from "../gql/graphql";
import { errorCode, humanError } from "../errors";
import { setActiveConcert, setQueueToken } from "../session";
import { usePollWhileOffline } from "../fallback";
import { clock, serverNow, useCountdown } from "../clock";
import { PaidNote } from "./Checkout";
import { SeatPicker } from "./SeatPicker";
import { Waitlist } from "./Waitlist";

const FINAL = ["EXPIRED", "COMPLETED"];

/** One concert's waiting room: join, watch your place live, then pick a seat when it is your turn. */
export function ConcertRoom({ concertId }: { concertId: string }) {
  const apollo = useApolloClient();
  const concerts = useQuery(ConcertsDocument);
  const concert = concerts.data?.concerts.find((c) => c.id === concertId);
  const [ticket, setTicket] = useState<TicketFieldsFragment | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [solving, setSolving] = useState(false);
  const [live, setLive] = useState(true);
  // Before the line opens: when it does (the pre-queue, else the sale), to count down and join.
  const [opensAt, setOpensAt] = useState<string | null>(null);
  const [enterQueue] = useMutation(EnterQueueDocument);
  // A hold of this concert still running (after a reload, or past the turn's end: a hold taken
  // in a turn can be paid until it lapses): the checkout comes back with its timer.
  const orders = useQuery(MyLiveOrdersDocument, { fetchPolicy: "network-only" });
  const [, recheck] = useState(0);
  const liveOrder =
    orders.data?.myOrders.nodes.find(
      (o) => o.concertId === concertId && o.status === "HELD" && Date.parse(o.heldUntil) > serverNow(),
    ) ?? null;
  // A hold lapses at its time: looked at again then, so nothing says "pay below" after it.
  const heldUntil = liveOrder?.heldUntil;
  useEffect(() => {
    if (!heldUntil) return;
    const lapses = Date.parse(heldUntil) - serverNow() + 250;
    const t = setTimeout(() => recheck((n) => n + 1), Math.min(lapses, 2 ** 31 - 1));
    return () => clearTimeout(t);
  }, [heldUntil]);
  // Paid here: said by the room (the checkout that paid may be gone once the order is PAID).
  const [paid, setPaid] = useState<OrderFieldsFragment | null>(null);
  // SALE_NOT_OPEN answers in a row: a device whose clock is ahead backs off instead of hammering.
  const early = useRef(0);

  useEffect(() => {
    setActiveConcert(concertId);
    return () => setActiveConcert(null);
  }, [concertId]);

  const show = useCallback(
    (t: TicketFieldsFragment) => {
      setQueueToken(concertId, t.token);
      setTicket(t);
    },
    [concertId],
  );

  const join = useCallback(async () => {
    setError(null);
    try {
      const r = await enterQueue({ variables: { concertId } });
      early.current = 0;
      if (r.data) show(r.data.enterQueue);
    } catch (e) {
      if (errorCode(e) === "SALE_NOT_OPEN") {
        const sale = await apollo
          .query({ query: SaleTimesDocument, variables: { concertId } })
          .catch(() => null);
        const s = sale?.data.sale;
        const at = s?.prequeueOpensAt ?? s?.opensAt ?? null;
        if (at) {
          early.current += 1;
          return setOpensAt(at);
        }
      }
      if (errorCode(e) !== "CHALLENGE_REQUIRED") return setError(e);
      // The room asks for a proof of work: solved in a web worker, then sent with the entry.
      setSolving(true);
      try {
        const c = await apollo.query({ query: QueueChallengeDocument, variables: { concertId } });
        const challenge = c.data.queueChallenge;
        const solution = await solve(challenge.nonce, challenge.difficulty);
        const r = await enterQueue({
          variables: { concertId, challenge: { nonce: challenge.nonce, solution } },
        });
        if (r.data) show(r.data.enterQueue);
      } catch (e2) {
        setError(e2);
      } finally {
        setSolving(false);
      }
    }
  }, [apollo, concertId, enterQueue, show]);

  useEffect(() => {
    void join();
  }, [join]);
  // The line opens: join by ourselves, a moment after (spread, so not everyone at once).
  useEffect(() => {
    if (!opensAt) return;
    // By the server's clock, spread over 0.3–1.8 s so not everyone arrives in one instant; after
    // an early try, 1 s more each time (up to 10 s).
    const backoff = Math.min(10_000, Math.max(0, early.current - 1) * 1000);
    const wait = Math.max(0, Date.parse(opensAt) - serverNow()) + 300 + Math.random() * 1500 + backoff;
    const t = setTimeout(() => {
      setOpensAt(null);
      void join();
    }, Math.min(wait, 2 ** 31 - 1));
    return () => clearTimeout(t);
  }, [opensAt, join]);

  // Live over the websocket; polling every 2 s if websockets fail.
  useSubscription(WatchTicketDocument, {
    skip: !ticket || !live || FINAL.includes(ticket.status),
    onData: ({ data }) => data.data && setTicket(data.data.queueTicket),
    onError: () => setLive(false),
  });
  const watching = ticket !== null && !FINAL.includes(ticket.status);
  usePollWhileOffline(
    () =>
      void apollo
        .query({ query: PollTicketDocument, fetchPolicy: "network-only" })
        .then((r) => {
          setTicket(r.data.queueTicket);
          setError(null);
        })
        .catch(setError),
    2000,
    watching,
    live,
  );

  return (
    <section aria-labelledby="room-title">
      <h1 id="room-title">{concert?.title ?? "Concert"}</h1>
      {concert && <p>{concert.venue}</p>}
      {error != null && (
        <p role="alert" className="error">
          {humanError(error)}{" "}
          <button type="button" onClick={() => void join()}>Try again</button>
        </p>
      )}
      {solving && <p>Checking your browser…</p>}
      {opensAt && !ticket && <NotOpenYet opensAt={opensAt} />}
      {paid && <PaidNote order={paid} />}
      {ticket && !paid && <TicketStatus ticket={ticket} onRejoin={() => void join()} holding={liveOrder != null} />}
      {ticket && !paid && (ticket.status === "ACTIVE" || liveOrder) && concert && (
        <SeatPicker
          concertId={concertId}
          admitted={ticket.status === "ACTIVE"}
          onPaid={setPaid}
          dates={concert.dates}
          turnEndsAt={ticket.expiresAt ?? null}
          restored={liveOrder}
          onOrdersChanged={() => void orders.refetch()}
        />
      )}
      {/* Only once the ticket (and its token) exists: the websocket's connection_init carries it. */}
      {ticket && ticket.status !== "ACTIVE" && !liveOrder && concert && (
        <Waitlist
          concertId={concertId}
          dates={concert.dates}
          soldOut={ticket?.status === "SOLD_OUT" || concert.soldOut}
        />
      )}
    </section>
  );
}

/**
 * The estimated wait counted down from when it arrived: the server sends a new one only when the
 * expected moment moves (or the line does), not every second.
 */
function useWaitLeft(ticket: TicketFieldsFragment): number {
  const [received, setReceived] = useState(() => Date.now());
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    setReceived(Date.now());
    setNow(Date.now());
  }, [ticket]);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  // Admission happens on ticks: never below one second while waiting.
  return Math.max(1, ticket.estimatedWaitSeconds - Math.floor((now - received) / 1000));
}

function TicketStatus({
  ticket,
  onRejoin,
  holding,
}: {
  ticket: TicketFieldsFragment;
  onRejoin: () => void;
  holding: boolean;
}) {
  const left = useWaitLeft(ticket);
  return (
    <div className="status" data-status={ticket.status}>
      {/* Announced when the state changes, not at every step of the line or tick of the clock. */}
      <p role="status" className="visually-hidden">
        {STATE_WORDS[ticket.status === "WAITING" && ticket.paused ? "PAUSED" : ticket.status] ?? ""}
      </p>
      {ticket.status === "PREQUEUED" && <p>You are in the pre-queue. Your place is drawn when the sale opens.</p>}
      {ticket.status === "WAITING" && ticket.paused && (
        <p data-queue="paused">
          {ticket.position === 0 ? (
            <strong>You are next in line.</strong>
          ) : (
            <>
              <strong>{ticket.position}</strong> {ticket.position === 1 ? "person" : "people"} ahead of you.
            </>
          )}{" "}
          The sale is <strong>paused</strong> for a moment: your place is kept, and the line moves again
          when it resumes.
        </p>
      )}
      {ticket.status === "WAITING" && !ticket.paused && (
        <p data-queue="waiting">
          {ticket.position === 0 ? (
            <strong>You are next in line.</strong>
          ) : (
            <>
              <strong>{ticket.position}</strong> {ticket.position === 1 ? "person" : "people"} ahead of you
            </>
          )}{" "}
          · {/* Counted down every second: announced only when the line moves, not each tick. */}
          <span aria-live="off" data-wait={left}>{waitWords(left, ticket.position)}</span>
        </p>
      )}
      {ticket.status === "SOLD_OUT" && <p>Every seat is sold. Stay in line: seats can come back.</p>}
      {ticket.status === "ACTIVE" && <p>It is your turn! Pick your seat.</p>}
      {ticket.status === "COMPLETED" && (
        <>
          <h2>Your ticket is booked</h2>
          <p>
            Thank you for your purchase. <a href="#/tickets">See my tickets</a>
          </p>
        </>
      )}
      {ticket.status === "EXPIRED" && holding && (
        <p>Your turn has ended, but the seats you hold are yours until their timer runs out: pay below.</p>
      )}
      {ticket.status === "EXPIRED" && !holding && (
        <p>
          Your turn has ended. <button type="button" onClick={onRejoin}>Join the line again</button>
        </p>
      )}
    </div>
  );
}

const STATE_WORDS: Record<string, string> = {
  PREQUEUED: "You are in the pre-queue.",
  WAITING: "You are in line.",
  PAUSED: "The sale is paused; your place is kept.",
  SOLD_OUT: "Every seat is sold for now.",
  ACTIVE: "It is your turn.",
  COMPLETED: "Your ticket is booked.",
  EXPIRED: "Your turn has ended.",
};

/**
 * The wait in words. Admissions come in ticks at a rate the operator may change, so the further
 * back a fan is the wider the range: a point estimate only when it is under a minute.
 */
function waitWords(seconds: number, ahead: number): string {
  if (seconds < 60) return "less than a minute";
  const minutes = seconds / 60;
  // Uncertain: the rate can change before a fan far back is reached.
  const spread = ahead > 10 ? 0.3 : 0.15;
  const low = Math.max(1, Math.floor(minutes * (1 - spread)));
  const high = Math.max(low + 1, Math.ceil(minutes * (1 + spread)));
  return `about ${low}–${high} min`;
}

/** The line is not open yet: when it opens, counted down; the app joins by itself then. */
function NotOpenYet({ opensAt }: { opensAt: string }) {
  const left = useCountdown(opensAt);
  return (
    <div className="status" role="status" data-status="NOT_OPEN">
      <p>
        The line opens {new Date(opensAt).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })}, in{" "}
        <strong role="timer" aria-live="off">{clock(left)}</strong>.
      </p>
      <p>Keep this page open: we put you in line as soon as it opens.</p>
    </div>
  );
}

function solve(nonce: string, difficulty: number): Promise<string> {
  if (difficulty === 0) return Promise.resolve("0");
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("../pow.worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (e: MessageEvent<{ solution: string }>) => {
      worker.terminate();
      resolve(e.data.solution);
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(e);
    };
    worker.postMessage({ nonce, difficulty });
  });
}
