import { useState, type FormEvent } from "react";
import { useMutation } from "@apollo/client";

import { SignInDocument, SignUpDocument } from "../gql/graphql";
import { humanError } from "../errors";
import { setSession } from "../session";

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
      <h1>Encore</h1>
      <form onSubmit={(e) => void submit(e).catch(() => {})} aria-label={mode === "in" ? "Sign in" : "Sign up"}>
        {mode === "up" && (
          <label>
            Username
            <input name="username" value={username} onChange={(e) => setUsername(e.target.value)} required />
          </label>
        )}
        <label>
          Email
          <input name="email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} required />
        </label>
        <label>
          Password
          <input name="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        {error && <p role="alert" className="error">{humanError(error)}</p>}
        <button type="submit">{mode === "in" ? "Sign in" : "Create account"}</button>
      </form>
      <button type="button" className="link" onClick={() => setMode(mode === "in" ? "up" : "in")}>
        {mode === "in" ? "New here? Create an account" : "Have an account? Sign in"}
      </button>
    </main>
  );
}
