// Clocks the fan races: a turn, a hold, a sale's opening. Counted down locally from the moment
// the server named (its clock decides; the app only shows what is left).
import { useEffect, useState } from "react";

// How far the server's clock is ahead of this device's, in ms, from the last answer's Date
// header (whole seconds: half a second is added, the middle of the second it names).
let offset = 0;
export function noteServerDate(header: string | null): void {
  const server = header ? Date.parse(header) : Number.NaN;
  if (!Number.isNaN(server)) offset = server + 500 - Date.now();
}

/** Now by the server's clock (this device's, corrected by the last answer's Date header). */
export function serverNow(): number {
  return Date.now() + offset;
}

/** Whole seconds left until `until` (an ISO time by the server's clock), never below 0, ticking
 * every second; 0 and no ticking without a time. */
export function useCountdown(until: string | null | undefined): number {
  const end = until ? Date.parse(until) : Number.NaN;
  const [now, setNow] = useState(serverNow());
  const ticking = !Number.isNaN(end);
  useEffect(() => {
    if (!ticking) return;
    setNow(serverNow());
    const t = setInterval(() => setNow(serverNow()), 1000);
    return () => clearInterval(t);
  }, [ticking]);
  return Number.isNaN(end) ? 0 : Math.max(0, Math.round((end - now) / 1000));
}

/** 272 → "4:32"; 3725 → "1:02:05". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n: number) => String(n).padStart(2, "0");
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

/** A date with its weekday as the fan's locale writes it: "2027-01-08" → "Fri, 8 Jan 2027". */
export function dayWithWeekday(date: string): string {
  // Noon UTC: the same calendar day in every time zone a fan is in.
  const day = new Date(`${date}T12:00:00Z`);
  if (Number.isNaN(day.getTime())) return date;
  return day.toLocaleDateString(undefined, {
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
    timeZone: "UTC",
  });
}
