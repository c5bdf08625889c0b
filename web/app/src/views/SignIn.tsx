import { useState, type FormEvent } from "react";
import { useMutation } from "@apollo/client";

import { SignInDocument, SignUpDocument } from "../gql/graphql";
import { humanError } from "../errors";
import { setSession } from "../session";

/** On this form a refusal of the credentials is a wrong e-mail or password, not an expired session. */
const CREDENTIALS = { UNAUTHENTICATED: "That e-mail and password do not match an account. Check them and try again." };

export function SignIn() {
  const [mode, setMode] = useState<"in" | "up">("in");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [username, setUsername] = useState("");
  const [signIn, inState] = useMutation(SignInDocument);
  const [signUp, upState] = useMutation(SignUpDocument);
  const error = inState.error ?? upState.error;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const result =
      mode === "in"
        ? (await signIn({ variables: { email, password } })).data?.signIn
        : (await signUp({ variables: { username, email, password } })).data?.signUp;
    if (result) {
      setSession({
        token: result.token,
        userId: result.user.id,
        username: result.user.username,
        role: result.user.role,
      });
      location.hash = "#/concerts";
    }
  };

  return (
    <main className="narrow">
      <h1>{mode === "in" ? "Sign in" : "Create an account"}</h1>
      <form onSubmit={(e) => void submit(e).catch(() => {})} aria-label={mode === "in" ? "Sign in" : "Sign up"}>
        {mode === "up" && (
          <label>
            Username
            <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required />
          </label>
        )}
        <label>
          Email
          <input
            name="email"
            type="email"
            autoComplete={mode === "in" ? "username" : "email"}
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            required
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={mode === "in" ? "current-password" : "new-password"}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        {error && <p role="alert" className="error">{humanError(error, CREDENTIALS)}</p>}
        <button type="submit">{mode === "in" ? "Sign in" : "Create account"}</button>
      </form>
      <button type="button" className="link" onClick={() => setMode(mode === "in" ? "up" : "in")}>
        {mode === "in" ? "New here? Create an account" : "Have an account? Sign in"}
      </button>
    </main>
  );
}
