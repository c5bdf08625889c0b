import { useQuery } from "@apollo/client";

import { MyTicketsDocument } from "../gql/graphql";
import { humanError } from "../errors";

/** My holds and purchases, newest first, a page at a time. */
export function Tickets() {
  const { data, error, fetchMore, loading } = useQuery(MyTicketsDocument, {
    fetchPolicy: "cache-and-network",
    notifyOnNetworkStatusChange: true,
  });
  const page = data?.myReservationsConnection;
  // The cache appends the page (relayStylePagination in apollo.ts).
  const more = () => fetchMore({ variables: { after: page?.pageInfo.endCursor } });
  return (
    <section aria-labelledby="tickets-title">
      <h1 id="tickets-title">My tickets</h1>
      {error && <p role="alert" className="error">{humanError(error)}</p>}
      <table>
        <thead>
          <tr><th scope="col">Date</th><th scope="col">Seat</th><th scope="col">Price</th><th scope="col">Status</th></tr>
        </thead>
        <tbody>
          {page?.edges.map(({ node }) => (
            <tr key={node.id} data-status={node.status}>
              <td>{node.date}</td><td>{node.seatNumber}</td><td>{node.price}</td><td>{node.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {page?.pageInfo.hasNextPage && (
        <button type="button" disabled={loading} onClick={() => void more()}>Show older</button>
      )}
    </section>
  );
}
