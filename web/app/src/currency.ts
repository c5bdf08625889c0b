// The service's currency (`query { currency }`, the server's CURRENCY), read once and cached:
// every price and balance on screen goes through `useMoney`.
import { useQuery } from "@apollo/client";

import { CurrencyDocument } from "./gql/graphql";
import { formatMoney } from "./money";

/** A formatter for amounts as the API sends them ("150.00" → "€150.00"). */
export function useMoney(): (amount: string) => string {
  const { data } = useQuery(CurrencyDocument, { fetchPolicy: "cache-first" });
  const currency = data?.currency ?? "EUR";
  return (amount: string) => formatMoney(amount, currency);
}
