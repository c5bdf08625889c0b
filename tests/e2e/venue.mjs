// The venue map, the checkout, the queue page, the ticket wallet and the operator's console in
// a real browser (see kit.mjs), with an accessibility check (axe-core) of every page on the way.
// Started by the Rust tests `browser::...`, configured by environment: ENCORE_URL, CONCERT_ID
// (12 seats, 4 a row: Front 1-4, Back 5-12), OPERATOR_EMAIL, OPERATOR_PASSWORD, SHOTS, and
// SCENARIO:
//
// - `venue`: the operator creates a two-tier concert with the form (live validation, a double
//   click creates one) and schedules its sale with a pre-queue; a fan buys a seat with the
//   keyboard only; a fan whose websockets are refused sees it taken by polling, and when a seat
//   in their basket is taken first, sees it greyed out as the refusal arrives; a fan joins a
//   paused line; the operator finds the keyboard fan's ticket by e-mail and refunds it after a
//   confirmation, which the fan's wallet shows.
// - `turn`: turns last 8 s and holds 2 min; a fan opens a concert whose sale opens in a few
//   seconds (SOON_ID), sees the countdown and is put in line by the app when it opens, lets the
//   turn end and joins again (the new turn shows live); then holds a seat in another concert,
//   the turn ends, the page reloads, and the seat is still paid.

import {
  accessible,
  audited,
  base,
  fail,
  finish,
  log,
  paid,
  person,
  shot,
  signIn,
  signUp,
} from "./kit.mjs";

const concertId = process.env.CONCERT_ID;
const operatorEmail = process.env.OPERATOR_EMAIL;
const operatorPassword = process.env.OPERATOR_PASSWORD;
const seat = (page, n) => page.locator(`.seatmap [data-seat="${n}"]`);
const day = (inDays) => new Date(Date.now() + inDays * 86_400_000).toISOString().slice(0, 10);
/** "2027-01-08T19:30" for a datetime-local input (the browser's zone is the machine's). */
const localTime = (inHours) => {
  const at = new Date(Date.now() + inHours * 3_600_000);
  const two = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}T${two(at.getHours())}:${two(at.getMinutes())}`;
};

async function enterRoom(page) {
  await page.goto(`${base}/app/#/concert/${concertId}`);
  await page.getByText("It is your turn! Pick your seat.").waitFor({ timeout: 20_000 });
  await seat(page, 1).waitFor();
}

async function venue() {
  // The operator: sign-in, concerts, the console.
  const op = await person();
  await op.goto(`${base}/app/`);
  await op.getByLabel("Email").waitFor();
  await accessible(op, "sign-in");
  await signIn(op, operatorEmail, operatorPassword);
  await accessible(op, "concerts");
  await op.getByRole("link", { name: "Operator" }).click();
  await op.getByRole("heading", { name: "Operator", level: 1 }).waitFor();

  // A two-tier concert made with the form.
  await op.getByLabel("Title").fill("Console Made");
  await op.getByLabel("Venue").fill("Form Hall");
  await op.getByLabel("Date 1").fill(day(40));
  await op.getByRole("button", { name: "Add a date" }).click();
  await op.getByLabel("Date 2").fill(day(41));
  await op.getByLabel("Seats per date").fill("50");
  await op.getByLabel("Seats per row").fill("10");
  const tier = (n) => op.locator(`[data-tier-row="${n}"]`);
  await tier(1).getByLabel("Tier 1 name").fill("Floor");
  await tier(1).getByLabel("To seat").fill("20");
  await tier(1).getByLabel("Price").fill("120.00");
  await op.getByRole("button", { name: "Add a tier" }).click();
  await tier(2).getByLabel("Tier 2 name").fill("Balcony");
  await tier(2).getByLabel("Price").fill("60");
  // Live validation: a gap between the tiers is named and Create is off until it is closed.
  await tier(2).getByLabel("From seat").fill("23");
  await tier(2).getByText("Seats 21–22 are in no tier.").waitFor();
  if (!(await op.getByRole("button", { name: "Create concert" }).isDisabled())) fail("Create is on with a gap in the tiers");
  await tier(2).getByLabel("From seat").fill("21");
  await tier(2).getByText("€60.00 a seat").waitFor();
  log("the tier form names a gap as it is typed and keeps Create off until it is closed");
  await accessible(op, "operator console (new concert form)");
  // A double click makes one concert (the Rust test counts them).
  await op.getByRole("button", { name: "Create concert" }).dblclick();
  await op.getByText("Created “Console Made”").waitFor();
  log("an operator created a two-tier concert with the form (double-clicked)");
  // Its sale, with a pre-queue, from date/time pickers.
  await op.getByLabel("Sale opens").fill(localTime(48));
  await op.getByLabel("Pre-queue opens (optional)").fill(localTime(24));
  await op.getByRole("button", { name: "Schedule sale" }).click();
  await op.getByText(/^Opens .*seed commitment/).waitFor();
  log("the sale was scheduled with a pre-queue from date/time pickers");

  // P: websockets refused (the app polls), timers under the test's control.
  const p = await person();
  let wsTries = 0;
  await p.routeWebSocket(/\/graphql\/ws/, (ws) => {
    wsTries += 1;
    ws.close({ code: 1011, reason: "refused by the test" });
  });
  await p.clock.install();
  await signUp(p, `poll_${Date.now()}`);
  await enterRoom(p);
  await accessible(p, "seat map");

  // K: the keyboard only, from the page's heading.
  const k = await person();
  const kName = `key_${Date.now()}`;
  await signUp(k, kName);
  await enterRoom(k);
  const focusedSeat = () => k.evaluate(() => document.activeElement?.getAttribute("data-seat"));
  const focusedText = () => k.evaluate(() => document.activeElement?.textContent ?? "");
  let tabs = 0;
  while (!(await focusedSeat()) && tabs < 8) {
    await k.keyboard.press("Tab");
    tabs += 1;
  }
  if ((await focusedSeat()) !== "1") fail(`after ${tabs} Tab presses focus is on ${await focusedText()}`);
  await k.keyboard.press("ArrowRight");
  await k.keyboard.press("ArrowDown");
  if ((await focusedSeat()) !== "6") fail(`Right then Down from seat 1 lands on seat ${await focusedSeat()}`);
  await k.keyboard.press("Space");
  await k.keyboard.press("Tab");
  if (!(await focusedText()).startsWith("Hold seat 6")) fail(`Tab after picking lands on "${await focusedText()}"`);
  await k.keyboard.press("Enter");
  await k.getByRole("heading", { name: "Seat 6 is yours for" }).waitFor();
  await shot(k, "checkout");
  await accessible(k, "checkout");
  await k.keyboard.press("Tab");
  if (!(await focusedText()).startsWith("Top up")) fail(`Tab in the checkout lands on "${await focusedText()}"`);
  await k.keyboard.press("Enter");
  await k.waitForFunction(() => document.activeElement?.textContent?.startsWith("Pay "), null, { timeout: 10_000 });
  await k.keyboard.press("Enter");
  await paid(k, 6);
  log(`a fan bought seat 6 with the keyboard only (${tabs} Tab presses to the map, arrows to the seat)`);
  // The ticket in the wallet, with until when the fan may refund it themselves.
  await k.getByRole("navigation").getByRole("link", { name: "My tickets" }).click();
  await k.locator('[data-seat-status="PAID"]').waitFor();
  await k.locator('[data-refundable="true"]').getByText(/You can refund these tickets yourself until/).waitFor();

  // P sees seat 6 go without websockets: the map is read again every few seconds.
  await p.locator('.seatmap [data-seat="6"]:not([data-status="AVAILABLE"])').waitFor({ timeout: 15_000 });
  if (wsTries === 0) fail("the blocked fan never tried a websocket");
  log(`with websockets blocked (${wsTries} refused) the map still showed seat 6 taken, by polling`);

  // A seat in P's basket is taken by T first; P's hold is refused and the seat greys out at
  // once. P's timers are paused meanwhile, so no poll can be what refreshed it.
  const t = await person();
  await signUp(t, `taker_${Date.now()}`);
  await enterRoom(t);
  await seat(p, 7).click();
  await seat(p, 8).click();
  await shot(p, "venue-map");
  await p.clock.pauseAt((await p.evaluate(() => Date.now())) + 100);
  await seat(t, 8).click();
  await t.getByRole("button", { name: /^Hold seat 8/ }).click();
  await t.getByRole("heading", { name: "Seat 8 is yours for" }).waitFor();
  if ((await seat(p, 8).getAttribute("data-status")) !== "AVAILABLE") fail("P's map moved while its timers were paused");
  await p.getByRole("button", { name: /^Hold seats 7, 8/ }).click();
  await p.getByText("Someone else just took a seat you picked").waitFor();
  await p.locator('.seatmap [data-seat="8"][data-status="HELD"]').waitFor({ timeout: 1_000 });
  await p.clock.resume();
  log("a seat taken by another fan greyed out as soon as the hold was refused");
  await shot(t, "venue-map-yours");
  // T's live hold is in their wallet with Pay and Release; released there, P's map gets it back.
  await t.getByRole("navigation").getByRole("link", { name: "My tickets" }).click();
  const held = t.locator('article[data-order-status="HELD"]');
  await held.getByRole("button", { name: "Pay €45.00" }).waitFor();
  await held.getByRole("button", { name: "Release" }).click();
  await t.locator('article[data-order-status="RELEASED"]').getByText("Given back before paying").waitFor();
  await p.locator('.seatmap [data-seat="8"][data-status="AVAILABLE"]').waitFor({ timeout: 10_000 });
  log("a live hold was released from My tickets and came back on the map");

  // A paused line: the queue page says so, with the place kept.
  await op.getByLabel("Concert to run").selectOption(concertId);
  await op.getByRole("button", { name: "Pause" }).click();
  await op.locator('[data-stat="state"]:text-is("paused")').waitFor({ timeout: 10_000 });
  const first = await person();
  await signUp(first, `first_${Date.now()}`);
  await first.goto(`${base}/app/#/concert/${concertId}`);
  await first.locator('[data-queue="paused"]').getByText("You are next in line.").waitFor({ timeout: 15_000 });
  const j = await person({ width: 390, height: 844 });
  await signUp(j, `joiner_${Date.now()}`);
  await j.goto(`${base}/app/#/concert/${concertId}`);
  await j.locator('[data-queue="paused"]').getByText("1 person ahead of you.", { exact: false }).waitFor({ timeout: 15_000 });
  await shot(j, "queue-page");
  await accessible(j, "queue page (paused)");
  await op.getByRole("button", { name: "Resume" }).click();
  await j.getByText("It is your turn! Pick your seat.").waitFor({ timeout: 20_000 });
  log("a fan saw the paused line as a state, then got the turn when it resumed");

  // The operator finds K's ticket by part of the e-mail and refunds it after a confirmation.
  await op.getByLabel("Fan e-mail, seat number or order id").fill(kName.toUpperCase());
  await op.getByRole("button", { name: "Find" }).click();
  const row = op.locator(`tr[data-fan="${kName}@fans.test"]`);
  await row.waitFor();
  await row.getByRole("button", { name: "Refund seat 6" }).click();
  const dialog = op.getByRole("dialog", { name: "Refund seat 6?" });
  await dialog.waitFor();
  await accessible(op, "refund confirmation");
  // Cancel first: nothing happens, and focus is back on the button that asked.
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "hidden" });
  const back = await op.evaluate(() => document.activeElement?.textContent);
  if (back !== "Refund seat 6") fail(`after Cancel focus is on "${back}"`);
  await op.getByRole("button", { name: "Find" }).click();
  await op.getByText("1 ticket found.").waitFor();
  if ((await row.getAttribute("data-status")) !== "PAID") fail("cancelling the refund changed the ticket");
  await row.getByRole("button", { name: "Refund seat 6" }).click();
  await dialog.getByRole("button", { name: "Refund €45.00" }).click();
  await op.getByText(/^Refunded seat 6 on .* to key_/).waitFor();
  await op.locator(`tr[data-fan="${kName}@fans.test"][data-status="REFUNDED"]`).waitFor();
  await shot(op, "console");
  await accessible(op, "operator console (tickets found)");
  log("the operator found a fan's ticket by e-mail and refunded it with confirmation");

  // K's wallet says so.
  await k.reload();
  await k.locator('[data-seat-status="REFUNDED"]').waitFor();
  await shot(k, "my-tickets-wallet");
  await accessible(k, "my tickets");
  await k.getByRole("navigation").getByRole("link", { name: "Wallet" }).click();
  await k.getByRole("cell", { name: "Refund" }).waitFor();
  await accessible(k, "wallet");
  log(`axe-core found no serious or critical violation on ${audited.length} pages: ${audited.join(", ")}`);
}

async function turn() {
  const f = await person({ width: 390, height: 844 });
  await signUp(f, `late_${Date.now()}`);
  // Before the sale: a countdown, then the app joins the line by itself when it opens.
  await f.goto(`${base}/app/#/concert/${process.env.SOON_ID}`);
  await f.locator('[data-status="NOT_OPEN"]').getByText(/The line opens .* in 0:[0-5]\d/).waitFor({ timeout: 10_000 });
  await accessible(f, "sale not open yet");
  await f.getByText("It is your turn! Pick your seat.").waitFor({ timeout: 40_000 });
  log("before the sale a countdown showed, and the app joined the line when it opened");
  // The turn ends unused; joining again watches the new turn (its token rides a new connection).
  await f.getByRole("button", { name: "Join the line again" }).click({ timeout: 20_000 });
  await f.getByText("It is your turn! Pick your seat.").waitFor({ timeout: 10_000 });
  await f.waitForTimeout(1_500);
  if (!(await f.getByText("It is your turn! Pick your seat.").isVisible())) fail("the new turn was replaced by the old one");
  log("after a turn ended unused, joining again showed the new turn live");
  await enterRoom(f);
  // The turn's clock shows while picking.
  await f.getByText(/Your turn: 0:0\d left to hold seats/).waitFor();
  await seat(f, 1).click();
  await f.getByRole("button", { name: /^Hold seat 1/ }).click();
  await f.getByRole("heading", { name: "Seat 1 is yours for" }).waitFor();
  // The turn ends; the hold does not.
  await f.getByText("Your turn has ended, but the seats you hold are yours").waitFor({ timeout: 20_000 });
  log("the turn ended under a valid hold and the checkout stayed");
  await f.reload();
  await f.getByRole("heading", { name: "Seat 1 is yours for" }).waitFor({ timeout: 15_000 });
  await f.getByRole("button", { name: /^Top up/ }).click();
  await f.getByRole("button", { name: /^Pay / }).click();
  await f.getByText(/^Paid: seat 1 on/).waitFor();
  log("after the turn ended and a reload, the held seat was paid");
}

await finish(async () => {
  if (process.env.SCENARIO === "turn") await turn();
  else await venue();
});
