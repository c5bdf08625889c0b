import { useQuery } from "@apollo/client";

import { ConcertsDocument } from "../gql/graphql";
import { humanError } from "../errors";
import { dayWithWeekday } from "../clock";
import { useMoney } from "../currency";

export function Concerts() {
  const money = useMoney();
  const { data, error, loading } = useQuery(ConcertsDocument);
  if (error) return <p role="alert" className="error">{humanError(error)}</p>;
  if (loading && !data) return <p>Loading concerts…</p>;
  return (
    <section aria-labelledby="concerts-title">
      <h1 id="concerts-title">Concerts</h1>
      <ul className="cards">
        {data?.concerts.map((c) => (
          <li key={c.id} className="card">
            <h2>{c.title}</h2>
            <p>{c.venue}</p>
            <p>
              From {money(c.price)} ·{" "}
              {c.dates.length === 1 ? dayWithWeekday(c.dates[0]) : `${c.dates.length} dates from ${dayWithWeekday(c.dates[0] ?? "")}`}
            </p>
            {c.soldOut ? (
              <p className="badge">Sold out</p>
            ) : c.onSale ? (
              <a className="button" href={`#/concert/${c.id}`} aria-label={`Get tickets for ${c.title}`}>Get tickets</a>
            ) : c.saleOpensAt ? (
              <p>
                Sale opens {new Date(c.saleOpensAt).toLocaleString()}{" "}
                <a href={`#/concert/${c.id}`}>Wait in line</a>
              </p>
            ) : (
              <p>Not on sale yet</p>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
