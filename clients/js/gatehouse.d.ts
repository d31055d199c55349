/** One claim as returned by GET /bff/user. */
export interface Claim {
  type: string;
  value: unknown;
}

/** The signed-in user, built from the /bff/user claim array. */
export interface User {
  /** The raw claim array, in server order. */
  claims: Claim[];
  /** The value of the first claim of this type, or undefined. */
  get(type: string): unknown;
  /** The values of every claim of this type. */
  getAll(type: string): unknown[];
  /** The `bff:logout_url` claim, e.g. "/bff/logout?sid=abc". */
  logoutUrl: string | undefined;
  /** The `bff:session_expires_in` claim, in seconds. */
  expiresIn: number | undefined;
  /** The `bff:session_state` claim, when the provider sent one. */
  sessionState: unknown;
  /** The `sub` claim. */
  sub: unknown;
  /** The `name` claim. */
  name: unknown;
}

/** The subset of window.location the client uses. */
export interface LocationLike {
  pathname: string;
  search: string;
  hash: string;
  assign(url: string): void;
}

export interface ClientOptions {
  /** Where Gatehouse's endpoints are mounted. Default "/bff". */
  prefix?: string;
  /** Anti-forgery header name. Default "X-CSRF". */
  csrfHeader?: string;
  /** Anti-forgery header value. Default "1". */
  csrfValue?: string;
  /** fetch implementation. Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Navigation target. Default globalThis.location. */
  location?: LocationLike;
  /** Navigate to login when client.fetch gets a 401. Default true. */
  loginOn401?: boolean;
}

export interface LoginOptions {
  /** Local path to return to; default the current path, query and fragment. */
  returnUrl?: string;
  /** OpenID Connect prompt, e.g. "login" or "select_account". */
  prompt?: string;
}

export interface LogoutOptions {
  /** Local path to land on after logout. */
  returnUrl?: string;
}

export interface UserOptions {
  /** false asks Gatehouse not to extend a sliding session. Default true. */
  slide?: boolean;
}

export interface Client {
  /**
   * fetch with the anti-forgery header and same-origin credentials. On a 401
   * with loginOn401, starts one login navigation and resolves to the 401
   * response.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** The signed-in user, or null when anonymous. Never navigates. */
  user(options?: UserOptions): Promise<User | null>;
  /** Navigates to the session's logout URL (to returnUrl or "/" when anonymous). */
  logout(options?: LogoutOptions): Promise<void>;
  /** Navigates to the login endpoint. */
  login(options?: LoginOptions): void;
  /** The user's sessions from GET /bff/sessions. */
  sessions(): Promise<unknown[]>;
  /** Ends one session: DELETE /bff/sessions/{handle}. */
  endSession(handle: string): Promise<void>;
  /** Ends every other session of the user: DELETE /bff/sessions. */
  endOtherSessions(): Promise<void>;
}

/** Error for an unexpected status from a Gatehouse endpoint. */
export class GatehouseError extends Error {
  constructor(message: string, response?: Response);
  /** The HTTP status, or 0. */
  status: number;
  response: Response | undefined;
}

/** Whether url is a local path Gatehouse accepts as returnUrl. */
export function isLocalUrl(url: unknown): url is string;

/** Creates a client for the Gatehouse BFF. */
export function createClient(options?: ClientOptions): Client;
