/**
 * The client of the user server's /swan/api/ (see swan_share_ext/openapi.yaml). It owns the
 * request plumbing and the error messages; it never changes anything the server did not say.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';

/** A share as /swan/api/ answers it. */
export interface IShare {
  id: string;
  kind: 'user' | 'group' | 'link' | 'email' | 'federated' | 'other';
  path: string;
  item_type: 'file' | 'folder';
  permissions: number;
  share_with: string | null;
  share_with_name: string | null;
  owner: string;
  owner_name: string;
  expiration: string | null;
  url: string | null;
  password_protected: boolean;
  name: string;
  created: number | null;
  state: 'accepted' | 'pending' | 'declined' | null;
  location: string | null;
}

/** Someone to share with. */
export interface ISharee {
  kind: string;
  share_with: string;
  name: string;
  info: string;
}

/** What a new share asks for. */
export interface INewShare {
  path: string;
  kind: 'user' | 'group' | 'link' | 'federated';
  share_with?: string;
  permissions: number;
  password?: string;
  expiration?: string;
  name?: string;
}

export const READ = 1;
export const UPDATE = 2;
export const CREATE = 4;
export const DELETE = 8;

/** The permissions of "can edit": a file can be changed, a folder also filled and emptied. */
export function editPermissions(itemType: 'file' | 'folder'): number {
  return itemType === 'folder'
    ? READ | UPDATE | CREATE | DELETE
    : READ | UPDATE;
}

/** Whether permissions allow more than reading. */
export function canEdit(permissions: number): boolean {
  return (permissions & UPDATE) !== 0;
}

/** An answer of the API that is not a success; `message` is written for people. */
export class SwanAPIError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

/**
 * Call /swan/api/<endpoint>; JSON in and out, errors as SwanAPIError (the server's message, or
 * one of ours in the person's language).
 */
export async function swanAPI<T>(
  trans: TranslationBundle,
  endpoint: string,
  init: RequestInit = {},
  query: Record<string, string> = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const search = new URLSearchParams(query).toString();
  const url =
    URLExt.join(settings.baseUrl, 'swan', 'api', endpoint) +
    (search ? `?${search}` : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new SwanAPIError(
      0,
      trans.__('The notebook server cannot be reached: %1', String(error))
    );
  }
  const text = await response.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!response.ok) {
    const message =
      (body && typeof body === 'object' && body.message) ||
      `${response.status} ${response.statusText}`;
    throw new SwanAPIError(response.status, message);
  }
  return body as T;
}

export function jsonBody(method: string, body: unknown): RequestInit {
  return { method, body: JSON.stringify(body) };
}

/** One version of a file (GET /swan/api/versions). */
export interface IVersion {
  id: string;
  /** Seconds since the epoch. */
  last_modified: number;
  size: number | null;
  source: 'swan' | 'eos' | 'server';
  read_only: boolean;
}

/** A deleted file or folder that can be restored (GET /swan/api/trash). */
export interface ITrashItem {
  id: string;
  name: string;
  /** Where it was in the user's space. */
  path: string;
  /** Seconds since the epoch. */
  deleted: number;
  size: number | null;
  type: 'file' | 'directory';
}

/** A contents model as the restore endpoints answer it (only what the UI reads). */
export interface IRestored {
  path: string;
  type: 'file' | 'notebook' | 'directory';
}

/** The open-in link of a path and its badge (POST /swan/api/links). */
export interface ILinks {
  link: string;
  badge: string;
  markdown: string;
  html: string;
}
