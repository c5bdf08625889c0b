// What every browser scenario shares: Debian's Chromium (headless, playwright-core) with every
// request off the machine refused, a person per browser context, screenshots, sign-up and
// sign-in through the app's own forms, and an accessibility check (axe-core) of a page.

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

export const base = process.env.ENCORE_URL;
export const shots = process.env.SHOTS ?? "shots";
mkdirSync(shots, { recursive: true });

export function fail(why) {
  console.error(`browser e2e FAILED: ${why}`);
  process.exit(1);
}
export function log(step) {
  console.log(`browser: ${step}`);
}

export const browser = await chromium.launch({
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
export const refused = [];
export const pages = [];
/** A browser context (its own storage: one person) whose requests may only reach the server. */
export async function person(viewport = { width: 1100, height: 900 }) {
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

export async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  log(`screenshot ${name}.png`);
}

export async function signUp(page, name) {
  await page.goto(`${base}/app/`);
  await page.getByRole("button", { name: "New here? Create an account" }).click();
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Email").fill(`${name}@fans.test`);
  await page.getByLabel("Password").fill("password-123");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Concerts" }).waitFor();
}

export async function signIn(page, email, password) {
  await page.goto(`${base}/app/`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Concerts" }).waitFor();
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
export const audited = [];
/**
 * axe-core (WCAG 2.0–2.2 A and AA rules) on the page as it is now: fails the run on any serious
 * or critical violation, naming the rule and the elements.
 */
export async function accessible(page, name) {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(() =>
    window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
      resultTypes: ["violations"],
    }),
  );
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length > 0) {
    const what = bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")}`);
    fail(`accessibility of ${name}: ${what.join(" | ")}`);
  }
  audited.push(name);
  log(`axe: no serious or critical violation on ${name} (${result.violations.length} minor)`);
}

/** Ends the run: OK, or the failure with a screenshot of what each page showed. */
export async function finish(run) {
  const deadline = setTimeout(() => fail("timed out"), 120_000);
  try {
    await run();
    const outside = refused.filter((u) => !u.startsWith("data:"));
    if (outside.length > 0) log(`refused requests off the machine: ${outside.join(", ")}`);
    clearTimeout(deadline);
    await browser.close();
    console.log("browser: OK");
    process.exit(0);
  } catch (e) {
    for (const [i, page] of pages.entries()) {
      await page.screenshot({ path: `${shots}/failed-${i}.png`, fullPage: true }).catch(() => {});
    }
    await browser.close().catch(() => {});
    fail(e.message ?? String(e));
  }
}

/** The room's "Paid: seat N on …" after a payment (said by the room whatever the turn did). */
export async function paid(page, seatNumber) {
  await page.getByText(new RegExp(`^Paid: seats? ${seatNumber}\\b`)).waitFor();
}
