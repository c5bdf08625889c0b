// Money in the app is integer cents (bigint), never a floating-point Number: the API sends and
// takes decimal strings with two places ("150.00"), and arithmetic on them happens here only.

/** "150.00" (or "150", "150.5") → 15000n. Throws on anything else. */
export function toCents(amount: string): bigint {
  const match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(amount.trim());
  if (!match) throw new Error(`not an amount: ${amount}`);
  const [, whole, fraction = ""] = match;
  return BigInt(whole) * 100n + BigInt(fraction.padEnd(2, "0"));
}

/** 15000n → "150.00" (negative amounts keep their sign). */
export function fromCents(cents: bigint): string {
  const sign = cents < 0n ? "-" : "";
  const abs = cents < 0n ? -cents : cents;
  return `${sign}${abs / 100n}.${String(abs % 100n).padStart(2, "0")}`;
}

/**
 * "150.00" in the service's currency, as the fan's locale writes it ("€150.00", "150,00 €").
 * Intl formats a decimal string exactly (no Number in between); an amount Intl cannot read is
 * shown as it came.
 */
export function formatMoney(amount: string, currency: string, locale?: string): string {
  try {
    // A string is formatted exactly since Intl.NumberFormat v3 (Chromium 106, Firefox 116).
    return new Intl.NumberFormat(locale, { style: "currency", currency }).format(
      amount as unknown as number,
    );
  } catch {
    return `${amount} ${currency}`;
  }
}
