import { useState, type FormEvent } from "react";
import { useMutation, useQuery } from "@apollo/client";

import { ChargeDocument, WalletHistoryDocument } from "../gql/graphql";
import { humanError } from "../errors";
import { useMoney } from "../currency";

const KIND_WORDS: Record<string, string> = {
  CHARGE: "Top-up",
  PAYMENT: "Payment for tickets",
  REFUND: "Refund",
};

/** The balance, a top-up, and the ledger a page at a time. */
export function Wallet() {
  const money = useMoney();
  const { data, error, fetchMore, refetch, loading } = useQuery(WalletHistoryDocument, {
    fetchPolicy: "cache-and-network",
    notifyOnNetworkStatusChange: true,
  });
  const [amount, setAmount] = useState("100.00");
  // One key per top-up: kept across retries after an error (the server then does it at most
  // once), a new one once it went through or the amount changed.
  const [key, setKey] = useState(() => crypto.randomUUID());
  const [charge, charging] = useMutation(ChargeDocument);
  const page = data?.wallet.transactionsConnection;
  const topUp = async (e: FormEvent) => {
    e.preventDefault();
    await charge({ variables: { amount, key } });
    setKey(crypto.randomUUID());
    await refetch();
  };
  // The cache appends the page (relayStylePagination in apollo.ts).
  const more = () => fetchMore({ variables: { after: page?.pageInfo.endCursor } });
  return (
    <section aria-labelledby="wallet-title">
      <h1 id="wallet-title">Wallet</h1>
      <p>Balance <strong data-testid="balance" data-balance={data?.wallet.balance}>{data ? money(data.wallet.balance) : "…"}</strong></p>
      <form onSubmit={(e) => void topUp(e).catch(() => {})} className="inline">
        <label>
          Amount <input value={amount} inputMode="decimal" onChange={(e) => {
              setAmount(e.target.value);
              setKey(crypto.randomUUID());
            }} />
        </label>
        <button type="submit" disabled={charging.loading}>Top up</button>
      </form>
      {(error ?? charging.error) && <p role="alert" className="error">{humanError(error ?? charging.error)}</p>}
      <div className="scroll">
      <table>
        <thead>
          <tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Amount</th><th scope="col">Balance after</th></tr>
        </thead>
        <tbody>
          {page?.edges.map(({ node }) => (
            <tr key={node.id}>
              <td>{new Date(node.createdAt).toLocaleString()}</td><td>{KIND_WORDS[node.kind] ?? node.kind}</td><td>{money(node.amount)}</td><td>{money(node.balanceAfter)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
      {page?.pageInfo.hasNextPage && (
        <button type="button" disabled={loading} onClick={() => void more()}>Show older</button>
      )}
    </section>
  );
}
