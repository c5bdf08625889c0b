import { useState } from "react";
import { useQuery } from "@apollo/client";

import { ConcertsDocument } from "../gql/graphql";
import { CreateConcert } from "./operator/CreateConcert";
import { ScheduleSale } from "./operator/ScheduleSale";
import { Dashboard } from "./operator/Dashboard";
import { TicketSearch } from "./operator/TicketSearch";

/** The operator's console: make a concert, schedule its sale, watch and steer the line, refund. */
export function Operator() {
  const concerts = useQuery(ConcertsDocument);
  const [selected, setSelected] = useState("");
  const concertId = selected || concerts.data?.concerts[0]?.id || "";
  return (
    <section aria-labelledby="operator-title">
      <h1 id="operator-title">Operator</h1>
      <CreateConcert
        onCreated={(id) => {
          setSelected(id);
          void concerts.refetch();
        }}
      />
      <label>
        Concert to run
        <select value={concertId} onChange={(e) => setSelected(e.target.value)}>
          {concerts.data?.concerts.map((c) => (
            <option key={c.id} value={c.id}>{c.title}</option>
          ))}
        </select>
      </label>
      {concertId && (
        <>
          <ScheduleSale key={`sale-${concertId}`} concertId={concertId} onScheduled={() => void concerts.refetch()} />
          <Dashboard key={concertId} concertId={concertId} />
          <TicketSearch key={`search-${concertId}`} concertId={concertId} />
        </>
      )}
    </section>
  );
}
