// The reference web app and GraphiQL in a real browser: Debian's Chromium, headless, driven by
// playwright-core, with every request to anything but the server refused. Started by the Rust
// test `browser::...`, configured by environment: ENCORE_URL, CONCERT_ID, OPERATOR_EMAIL,
// OPERATOR_PASSWORD, SHOTS (a directory for the screenshots of each step).
//
// Two fans race for the last seats: both click the same seat at once, one gets it and the other
// sees the hold appear on the live seat map without a reload; the winner pays and sees the ticket; the operator watches the dashboard (seats sold moves), pauses and
// resumes while a fan without websockets waits by polling and is admitted; GraphiQL runs
// `{ concerts { title } }` offline.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.ENCORE_URL;
const concertId = process.env.CONCERT_ID;
const shots = process.env.SHOTS ?? "shots";
mkdirSync(shots, { recursive: true });
const deadline = setTimeout(() => fail("timed out"), 90_000);

function fail(why) {
  console.error(`browser e2e FAILED: ${why}`);
  process.exit(1);
}
function log(step) {
  console.log(`browser: ${step}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const origin = new URL(base).origin;
const refused = [];
const pages = [];
/** A browser context (its own storage: one person) whose requests may only reach the server. */
async function person(viewport = { width: 1100, height: 900 }) {
  const context = await browser.newContext({ viewport });
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith(origin.replace("http", "ws"))) return route.continue();
    refused.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  pages.push(page);
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  log(`screenshot ${name}.png`);
}

async function signUp(page, name) {
  await page.goto(`${base}/app/`);
  await page.getByRole("button", { name: "New here? Create an account" }).click();
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Email").fill(`${name}@fans.test`);
  await page.getByLabel("Password").fill("password-123");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Concerts" }).waitFor();
}

try {
  // GraphiQL, offline: every asset from the server.
  const dev = await person();
  await dev.goto(`${base}/graphql`);
  await dev.locator(".graphiql-container").waitFor({ timeout: 20_000 });
  const editor = dev.locator(".graphiql-query-editor .CodeMirror").first();
  await editor.click();
  await dev.keyboard.press("Control+A");
  await dev.keyboard.type("{ concerts { title } }");
  await dev.locator(".graphiql-execute-button").click();
  await dev.locator(".result-window").getByText("Last Seats").first().waitFor({ timeout: 15_000 });
  await shot(dev, "graphiql");
  log("GraphiQL ran { concerts { title } } offline");

  // The operator's dashboard, open while the fans buy.
  const op = await person();
  await op.goto(`${base}/app/`);
  await op.getByLabel("Email").fill(process.env.OPERATOR_EMAIL);
  await op.getByLabel("Password").fill(process.env.OPERATOR_PASSWORD);
  await op.getByRole("button", { name: "Sign in" }).click();
  await op.getByRole("link", { name: "Operator" }).click();
  await op.getByLabel("Concert to run").selectOption(concertId);
  const sold = op.locator('[data-stat="seatsSold"]');
  await sold.waitFor();
  const soldBefore = Number(await sold.textContent());
  log(`operator sees ${soldBefore} sold`);

  // Two fans, the last seats.
  const a = await person();
  const b = await person({ width: 390, height: 844 }); // a phone
  await signUp(a, `fan_a_${Date.now()}`);
  await signUp(b, `fan_b_${Date.now()}`);
  for (const fan of [a, b]) {
    await fan.goto(`${base}/app/#/concert/${concertId}`);
    await fan.getByText("It is your turn! Pick your seat.").waitFor();
  }
  for (const fan of [a, b]) {
    const seat = fan.locator('.seatmap [data-seat="2"]');
    await seat.waitFor();
    if ((await seat.getAttribute("data-status")) !== "AVAILABLE") fail("seat 2 not free at first");
  }
  // Both go for seat 2 at once: exactly one gets it.
  await Promise.all([a, b].map((fan) => fan.locator('.seatmap [data-seat="2"]').click()));
  const won = await Promise.all(
    [a, b].map((fan) =>
      fan
        .getByRole("heading", { name: "Seat 2 is yours for" })
        .waitFor({ timeout: 5_000 })
        .then(() => true, () => false),
    ),
  );
  if (won[0] === won[1]) fail(`seat 2 went to ${won[0] ? "both" : "neither"}`);
  const [winner, loser] = won[0] ? [a, b] : [b, a];
  // The other sees the hold on the live map, without a reload.
  await loser.locator('.seatmap [data-seat="2"][data-status="HELD"]').waitFor({ timeout: 10_000 });
  await shot(loser, "seat-held-live");
  log(`fan ${won[0] ? "B" : "A"} saw fan ${won[0] ? "A" : "B"}'s hold appear live`);
  await winner.getByRole("button", { name: /Top up/ }).click();
  await winner.getByRole("button", { name: /^Pay / }).click();
  await winner.getByRole("link", { name: "See my tickets" }).first().click();
  await winner.locator('tr[data-status="PAID"]').first().waitFor();
  await shot(winner, "my-tickets");
  log("the winner paid and sees the ticket");
  await loser.locator('.seatmap [data-seat="2"][data-status="SOLD"]').waitFor({ timeout: 10_000 });

  // The dashboard moved by itself; pause and resume.
  await op.locator(`[data-stat="seatsSold"]:text-is("${soldBefore + 1}")`).waitFor({ timeout: 10_000 });
  await op.getByRole("button", { name: "Pause" }).click();
  await op.locator('[data-stat="state"]:text-is("paused")').waitFor({ timeout: 10_000 });
  await shot(op, "operator-dashboard");
  // A fan whose websockets are refused joins the paused line: the app falls back to polling
  // and still sees the turn come once the operator resumes.
  const c = await person();
  await c.routeWebSocket(/\/graphql\/ws/, (ws) => ws.close({ code: 1011, reason: "refused by the test" }));
  await signUp(c, `fan_c_${Date.now()}`);
  await c.goto(`${base}/app/#/concert/${concertId}`);
  await c.getByText(/ahead of you/).waitFor();
  await op.getByRole("button", { name: "Resume" }).click();
  await op.locator('[data-stat="state"]:text-is("admitting")').waitFor({ timeout: 10_000 });
  await c.getByText("It is your turn! Pick your seat.").waitFor({ timeout: 30_000 });
  log("a fan without websockets waited through the pause by polling and was admitted");
  log(`operator saw seats sold go ${soldBefore} -> ${soldBefore + 1}, paused and resumed`);

  const outside = refused.filter((u) => !u.startsWith("data:"));
  if (outside.length > 0) log(`refused requests off the machine: ${outside.join(", ")}`);
  clearTimeout(deadline);
  await browser.close();
  console.log("browser: OK");
  process.exit(0);
} catch (e) {
  // What each page showed when it failed.
  for (const [i, page] of pages.entries()) {
    await page.screenshot({ path: `${shots}/failed-${i}.png`, fullPage: true }).catch(() => {});
  }
  await browser.close().catch(() => {});
  fail(e.message ?? String(e));
}
