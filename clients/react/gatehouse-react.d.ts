import type { ReactElement, ReactNode } from 'react';
import type {
  Claim, Client, LoginOptions, LogoutOptions, SilentLoginOptions, User,
} from '@gatehouse-bff/client';

export interface GatehouseProviderProps {
  /** A client from createClient; default one made from base and prefix, with loginOn401 off. */
  client?: Client;
  /** The app's path for a path-based app, e.g. "/admin". Default "". */
  base?: string;
  /** Where Gatehouse's endpoints are mounted under base. Default "/bff". */
  prefix?: string;
  /** Called when an API call through useApi answers 401 without a step-up challenge. */
  onLoginRequired?: (response: Response) => void;
  children?: ReactNode;
}

/** Provides a Gatehouse client and the session state to its children. */
export function GatehouseProvider(props: GatehouseProviderProps): ReactElement;

export interface UserState {
  /** The signed-in user, or null. */
  user: User | null;
  /** The user's claims from /bff/user; empty when signed out. */
  claims: Claim[];
  /** true until the first /bff/user answer, and while a reload runs. */
  loading: boolean;
  /** Whether a user is signed in. */
  signedIn: boolean;
  /** The error of the last load (a GatehouseError or a network error), or null. */
  error: unknown;
  /** Reloads the user from /bff/user. */
  refresh(): Promise<void>;
}

/** The signed-in user; reloads when the session changes in this or another tab. */
export function useUser(): UserState;

/** fetch with the anti-forgery header, step-up navigation and 401 handling. */
export type ApiFetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** A fetch for the app's API routes. */
export function useApi(): ApiFetch;

export interface GatehouseActions {
  /** The provider's client. */
  client: Client;
  /** true once an API call through useApi answered 401 (not a step-up), until a user is signed in. */
  loginRequired: boolean;
  /** Navigates to the login endpoint. */
  login(options?: LoginOptions): void;
  /** Navigates to the session's logout URL; other tabs are told first. */
  logout(options?: LogoutOptions): Promise<void>;
  /** Duende BFF's silent login in a hidden iframe. */
  silentLogin(options?: SilentLoginOptions): Promise<boolean>;
}

/** The client and the session actions. */
export function useGatehouse(): GatehouseActions;
