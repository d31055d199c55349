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
  /** The page's origin; silentLogin accepts messages from this origin only. */
  origin?: string;
  assign(url: string): void;
}

/** A step-up challenge: a 401 {"error":"step_up_required", ...} answer. */
export interface StepUpChallenge {
  /** The `acr_values` to ask the provider for, when the gateway named some. */
  acrValues: string | undefined;
  /** The `max_age` in seconds, when the gateway named one. */
  maxAge: number | undefined;
}

/** What onStepUpRequired receives. */
export interface StepUpRequest extends StepUpChallenge {
  /** The step-up login URL: `<base><prefix>/login?returnUrl=...&acr_values=...&max_age=...`. */
  url: string;
  /** The 401 response (its body is unread). */
  response: Response;
  /** Navigates to url. */
  login(): void;
}

/** A change of the session state, from this tab or another tab of the app. */
export interface SessionChange {
  /** Whether the user is signed in now. */
  signedIn: boolean;
  /**
   * "login": a sign-in was seen; "logout": logout() was called; "ended":
   * GET /bff/user answered 401 after the user had been signed in; "expired":
   * the check scheduled from `bff:session_expires_in` found no session.
   */
  reason: 'login' | 'logout' | 'ended' | 'expired';
  /** true when another tab saw the change and told this one. */
  remote: boolean;
}

/** The subset of window the client uses for message and storage events. */
export interface WindowLike {
  addEventListener(type: string, listener: (event: any) => void): void;
  removeEventListener(type: string, listener: (event: any) => void): void;
}

/** The subset of document silentLogin uses. */
export interface DocumentLike {
  createElement(tag: 'iframe'): HTMLIFrameElement;
  body: { append(node: any): void };
}

/** The subset of Storage the storage-event fallback uses. */
export interface StorageLike {
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface ClientOptions {
  /**
   * The app's path for a path-based app (e.g. "/admin"); the endpoints are
   * at base + prefix ("/admin/bff/user"). Default "" (the origin's root).
   * Paths given to fetch() are not changed.
   */
  base?: string;
  /** Where Gatehouse's endpoints are mounted under base. Default "/bff". */
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
  /**
   * Called instead of navigating when client.fetch gets a 401
   * step_up_required answer. Default: navigate to the step-up login.
   */
  onStepUpRequired?: (request: StepUpRequest) => void;
  /** Source of message and storage events. Default globalThis (window). */
  window?: WindowLike;
  /** Document for silentLogin's iframe. Default globalThis.document, read only by silentLogin. */
  document?: DocumentLike;
  /** Storage for the storage-event fallback. Default localStorage, used only without BroadcastChannel. */
  storage?: StorageLike;
  /** BroadcastChannel constructor; null forces the storage-event fallback. Default globalThis.BroadcastChannel. */
  BroadcastChannel?: typeof BroadcastChannel | null;
}

export interface LoginOptions {
  /** Local path to return to; default the current path, query and fragment. */
  returnUrl?: string;
  /** OpenID Connect prompt: "none", "login", "consent" or "select_account". */
  prompt?: string;
  /** OpenID Connect acr_values, for a step-up login. */
  acrValues?: string;
  /** OpenID Connect max_age in seconds, for a step-up login. */
  maxAge?: number;
}

export interface SilentLoginOptions {
  /** Milliseconds to wait for the frame's answer. Default 5000. */
  timeout?: number;
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
   * step_up_required answer, starts the step-up login (or calls
   * onStepUpRequired); on another 401 with loginOn401, starts one login
   * navigation. Resolves to the response either way.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** The signed-in user, or null when anonymous. Never navigates. */
  user(options?: UserOptions): Promise<User | null>;
  /** Navigates to the session's logout URL (to returnUrl or "/" when anonymous). */
  logout(options?: LogoutOptions): Promise<void>;
  /** Navigates to the login endpoint; prompt "none" is a top-level silent login. */
  login(options?: LoginOptions): void;
  /**
   * Duende BFF's silent login: loads `<base><prefix>/silent-login` in a
   * hidden iframe#bff-silent-login and resolves to its answer's isLoggedIn,
   * or false after the timeout. Concurrent calls share one frame.
   */
  silentLogin(options?: SilentLoginOptions): Promise<boolean>;
  /**
   * Calls callback on every session change seen by this tab or told by
   * another tab of the app; returns a function that unsubscribes.
   */
  onSessionChange(callback: (change: SessionChange) => void): () => void;
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

/** The step-up challenge of a 401 step_up_required response, or null. */
export function readStepUp(response: Response): Promise<StepUpChallenge | null>;

/** Whether url is a local path Gatehouse accepts as returnUrl. */
export function isLocalUrl(url: unknown): url is string;

/** Creates a client for the Gatehouse BFF. */
export function createClient(options?: ClientOptions): Client;
