/** What the API's handlers and middleware see on the Hono context. */
import type { Identity } from "../chat/identity.js";

export interface ApiEnv {
  Bindings: Env;
  Variables: {
    /** The verified bearer token's subject, pull requests and scopes (set by `requireScope`). */
    identity: Identity;
  };
}
