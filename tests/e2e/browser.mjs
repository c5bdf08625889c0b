// The reference web app and GraphiQL in a real browser: Debian's Chromium, headless, driven by
// playwright-core, with every request to anything but the server refused. Started by the Rust
// test `browser::...`, configured by environment: ENCORE_URL, CONCERT_ID, OPERATOR_EMAIL,
// OPERATOR_PASSWORD, SHOTS (a directory for the screenshots of each step).
//
// Two fans race for the last pair: both pick seats 2 and 3 and hold them at once, one gets both
// and the other neither, seeing the hold appear on the live seat map without a reload; the
// winner pays the order and sees the tickets; the operator watches the dashboard (seats sold
// moves), pauses and resumes while a fan without websockets waits by polling, is admitted and
// buys the last seat; a fan who finds the date sold out joins its waitlist, is offered a seat
// the winner refunds from My tickets (after a confirmation), live, and pays it; GraphiQL runs
// `{ concerts { title } }` offline.

import { accessible, base, fail, finish, log, paid, person, shot, signUp } from "./kit.mjs";

const concertId = process.env.CONCERT_ID;

await finish(async () => {
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
  // A mistyped password reads as one (not as an expired session).
  await op.getByLabel("Password").fill("not-the-password");
  await op.getByRole("button", { name: "Sign in" }).click();
  await op.getByRole("alert").getByText("That e-mail and password do not match an account.").waitFor();
  if ((await op.getByLabel("Password").getAttribute("autocomplete")) !== "current-password") {
    fail("the password field does not say it takes the current password");
  }
  log("a wrong password reads as a wrong password");
  await op.getByLabel("Password").fill(process.env.OPERATOR_PASSWORD);
  await op.getByRole("button", { name: "Sign in" }).click();
  await op.getByRole("link", { name: "Operator" }).click();
  // Each page has its own title, and focus lands on its heading (not on <body>).
  await op.waitForFunction(() => document.title === "Operator · Encore", null, { timeout: 5_000 });
  const focused = await op.evaluate(() => `${document.activeElement?.tagName} ${document.activeElement?.textContent}`);
  if (focused !== "H1 Operator") fail(`after a route change focus is on ${focused}`);
  log("a route change moves focus to the page heading and names the tab");
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
    for (const n of [2, 3]) {
      const seat = fan.locator(`.seatmap [data-seat="${n}"]`);
      await seat.waitFor();
      if ((await seat.getAttribute("data-status")) !== "AVAILABLE") fail(`seat ${n} not free at first`);
      await seat.click();
    }
  }
  // Both hold the pair at once: one gets both seats, the other neither.
  await Promise.all([a, b].map((fan) => fan.getByRole("button", { name: /^Hold seats 2, 3/ }).click()));
  const won = await Promise.all(
    [a, b].map((fan) =>
      fan
        .getByRole("heading", { name: "Seats 2, 3 are yours for" })
        .waitFor({ timeout: 5_000 })
        .then(() => true, () => false),
    ),
  );
  if (won[0] === won[1]) fail(`the pair went to ${won[0] ? "both" : "neither"}`);
  const [winner, loser] = won[0] ? [a, b] : [b, a];
  // The other holds nothing, is told why, and sees the hold on the live map without a reload.
  await loser.getByText("Someone else just took a seat you picked").waitFor();
  for (const n of [2, 3]) {
    await loser.locator(`.seatmap [data-seat="${n}"][data-status="HELD"]`).waitFor({ timeout: 10_000 });
  }
  await shot(loser, "seats-held-live");
  log(`fan ${won[0] ? "B" : "A"} got neither seat and saw fan ${won[0] ? "A" : "B"}'s pair held live`);
  // A reload mid-hold brings the checkout back, timer and all, and it is paid from there.
  await winner.reload();
  await winner.getByRole("heading", { name: "Seats 2, 3 are yours for" }).waitFor({ timeout: 10_000 });
  log("after a reload mid-hold the winner's checkout came back");
  await winner.getByRole("button", { name: /Top up/ }).click();
  await winner.getByRole("button", { name: /^Pay / }).click();
  await winner.getByRole("link", { name: "See my tickets" }).first().click();
  await winner.locator('[data-seat-status="PAID"]').nth(1).waitFor();
  await shot(winner, "my-tickets");
  log("the winner paid the order of two and sees both tickets");
  await loser.locator('.seatmap [data-seat="2"][data-status="SOLD"]').waitFor({ timeout: 10_000 });

  // The dashboard moved by itself; pause and resume.
  await op.locator(`[data-stat="seatsSold"]:text-is("${soldBefore + 2}")`).waitFor({ timeout: 10_000 });
  await op.getByRole("button", { name: "Pause" }).click();
  await op.locator('[data-stat="state"]:text-is("paused")').waitFor({ timeout: 10_000 });
  await shot(op, "operator-dashboard");
  // A fan whose websockets are refused joins the paused line: the app falls back to polling
  // and still sees the turn come once the operator resumes.
  const c = await person();
  await c.routeWebSocket(/\/graphql\/ws/, (ws) => ws.close({ code: 1011, reason: "refused by the test" }));
  await signUp(c, `fan_c_${Date.now()}`);
  await c.goto(`${base}/app/#/concert/${concertId}`);
  await c.locator("[data-queue=\"paused\"]").waitFor();
  await op.getByRole("button", { name: "Resume" }).click();
  await op.locator('[data-stat="state"]:text-is("admitting")').waitFor({ timeout: 10_000 });
  await c.getByText("It is your turn! Pick your seat.").waitFor({ timeout: 30_000 });
  log("a fan without websockets waited through the pause by polling and was admitted");
  log(`operator saw seats sold go ${soldBefore} -> ${soldBefore + 2}, paused and resumed`);
  // C buys the last seat: the date is sold out.
  await c.locator('.seatmap [data-seat="1"]').click();
  await c.getByRole("button", { name: /^Hold seat 1/ }).click();
  await c.getByRole("button", { name: /Top up/ }).click();
  await c.getByRole("button", { name: /^Pay / }).click();
  await paid(c, 1);
  log("a third fan bought the last seat");

  // A fan who finds it sold out joins the waitlist; a refund comes back to them, live.
  const w = await person({ width: 390, height: 844 });
  await signUp(w, `fan_w_${Date.now()}`);
  await w.goto(`${base}/app/#/concert/${concertId}`);
  await w.getByRole("button", { name: "Join the waitlist" }).click({ timeout: 15_000 });
  await w.getByText(/ahead of you\. We hold seats for you/).waitFor();
  await shot(w, "waitlist-waiting");
  await accessible(w, "waitlist (phone)");
  // The winner refunds seat 2 from My tickets, after a confirmation.
  await winner.reload();
  await winner.getByRole("button", { name: "Refund seat 2" }).click();
  const confirm = winner.getByRole("dialog", { name: "Refund seat 2?" });
  await confirm.getByRole("button", { name: "Refund €40.00" }).click();
  await winner.locator('[data-seat-status="REFUNDED"]').waitFor();
  log("the winner refunded a seat from My tickets after a confirmation");
  await w.getByText("Seats came back for you!").waitFor({ timeout: 15_000 });
  await shot(w, "waitlist-offer");
  await accessible(w, "waitlist offer (phone)");
  await w.getByRole("button", { name: /Top up/ }).click();
  await w.getByRole("button", { name: /^Pay / }).click();
  await w.getByText(/from the waitlist/).waitFor();
  log("a waitlisted fan was offered a refunded seat live and paid it");
});
