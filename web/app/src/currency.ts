// The service's currency (`query { currency }`, the server's CURRENCY), read once and cached:
// every price and balance on screen goes through `useMoney`.
import { useQuery } from "@apollo/client";

import { CurrencyDocument } from "./gql/graphql";
import { formatMoney } from "./money";

/** A formatter for amounts as the API sends them ("150.00" → "€150.00"). */
export function useMoney(): (amount: string) => string {
  const { data } = useQuery(CurrencyDocument, { fetchPolicy: "cache-first" });
  // Until the server said which currency (or when it could not), amounts show as bare
  // decimals rather than in a currency that may be wrong.
  const currency = data?.currency;
  return (amount: string) => (currency ? formatMoney(amount, currency) : amount);
}
