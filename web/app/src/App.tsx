import { useEffect, useState, useSyncExternalStore } from "react";

import { client } from "./apollo";
import { onSessionChange, session, setSession } from "./session";
import { SignIn } from "./views/SignIn";
import { Concerts } from "./views/Concerts";
import { ConcertRoom } from "./views/ConcertRoom";
import { Tickets } from "./views/Tickets";
import { Wallet } from "./views/Wallet";
import { Operator } from "./views/Operator";

/** The view named by the URL's hash: #/concerts, #/concert/<id>, #/tickets, #/wallet, #/operator. */
function useRoute(): string[] {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return hash.replace(/^#\/?/, "").split("/").filter(Boolean);
}

/**
 * After every route change: focus moves to the new page's heading (so a screen reader announces
 * it and Tab starts from the page, not from a link that is gone), and the tab's title follows
 * the heading (a concert's title arrives with its data).
 */
function useArrival(route: string) {
  useEffect(() => {
    const heading = document.querySelector<HTMLElement>("main h1");
    if (!heading) return;
    heading.tabIndex = -1;
    heading.focus();
    const title = () => {
      document.title = `${heading.textContent ?? ""} · Encore`;
    };
    title();
    const watch = new MutationObserver(title);
    watch.observe(heading, { childList: true, characterData: true, subtree: true });
    return () => watch.disconnect();
  }, [route]);
}

export function App() {
  const me = useSyncExternalStore(onSessionChange, session);
  const route = useRoute();
  const [view, id] = route;
  useArrival(me ? route.join("/") : "sign-in");
  if (!me) return <SignIn />;
  const signOut = () => {
    setSession(null);
    void client.clearStore();
    location.hash = "";
  };
  return (
    <>
      <header>
        <a className="brand" href="#/concerts">Encore</a>
        <nav aria-label="Main">
          <a href="#/concerts">Concerts</a>
          <a href="#/tickets">My tickets</a>
          <a href="#/wallet">Wallet</a>
          {me.role === "OPERATOR" && <a href="#/operator">Operator</a>}
        </nav>
        <span className="who">
          {me.username} <button type="button" onClick={signOut}>Sign out</button>
        </span>
      </header>
      <main>
        {view === "concert" && id ? (
          <ConcertRoom key={id} concertId={id} />
        ) : view === "tickets" ? (
          <Tickets />
        ) : view === "wallet" ? (
          <Wallet />
        ) : view === "operator" && me.role === "OPERATOR" ? (
          <Operator />
        ) : (
          <Concerts />
        )}
      </main>
    </>
  );
}
