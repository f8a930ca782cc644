/**
 * The client of the user server's /swan/api/ and the types of what it sends and receives, one
 * interface per schema of swan_share_ext/openapi.yaml (tests/test_api_types.py holds them to
 * it). It owns the request plumbing and the error messages; it never changes anything the
 * server did not say.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';

/** Whether kernels and terminals see the files of the file browser (GET /swan/api/info). */
export interface IFilesForCode {
  mounted: boolean | null;
  notice: string;
  /** Whether GET /swan/api/refused-uploads lists what the storage refuses of code's writes. */
  refused_uploads: boolean;
}

/** A file code wrote that the storage refuses to take, and the storage's reason. */
export interface IRefusedUpload {
  path: string;
  why: string;
}

/** A file code wrote of which only the part written before the disk was full went up. */
export interface ICutUpload {
  path: string;
}

/** GET /swan/api/refused-uploads */
export interface IRefusedUploads {
  refused: IRefusedUpload[];
  cut: ICutUpload[];
}

/** That the server takes streamed uploads (PUT /swan/api/upload/<path>), and up to what size. */
export interface IUploadOffer {
  /** The largest file in bytes; 0 for no limit. */
  max_size: number;
}

/** What the browser reads of GET /swan/api/info. */
export interface IServerInfo {
  files_for_code: IFilesForCode;
  /** Null where the server has no upload route (another contents manager). */
  upload: IUploadOffer | null;
  trash: boolean;
  /** Whether the user can invite people of other sites (POST /swan/api/invites). */
  invites: boolean;
}

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
  /** A share of another site: its view-only page there (OCM webapp). */
  view_url: string | null;
}

/** Someone to share with (GET /swan/api/sharees). */
export interface ISharee {
  kind: string;
  share_with: string;
  name: string;
  info: string;
}

/** An invite for a person of another site (POST /swan/api/invites). */
export interface IInvite {
  token: string;
  /** This site's address (host[:port]), to type at the other site with the token. */
  provider: string;
  /** Until when it can be accepted (ISO 8601, UTC). */
  expiration: string;
  /** The link to this site's page where the person invited picks their own site. */
  link: string | null;
}

/** What a new share asks for (POST /swan/api/shares). */
export interface INewShare {
  path: string;
  kind: 'user' | 'group' | 'link' | 'federated';
  share_with?: string;
  permissions: number;
  password?: string;
  expiration?: string;
  name?: string;
}

/** A change of a share (PATCH /swan/api/shares/<id>); null or "" removes a field. */
export interface IShareChanges {
  permissions?: number;
  expiration?: string | null;
  password?: string | null;
  name?: string | null;
}

/** Where to clone a received share (POST /swan/api/shared-with-me/<id>/clone). */
export interface ICloneRequest {
  /** The folder to copy into ("" is the root of the space). */
  destination?: string;
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

/**
 * Whether the storage lets the person share `model` on: false on received shares without
 * re-share rights; null where the storage does not say, and then sharing is offered and the
 * storage decides.
 */
export function canShare(
  model: Partial<ISwanModel> | null | undefined
): boolean {
  return model?.shareable !== false;
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

/** A request with `body` as JSON; name its type (`jsonBody<INewShare>`) to have it checked. */
export function jsonBody<T>(method: string, body: T): RequestInit {
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

/** The versions of a file (GET /swan/api/versions), newest first. */
export interface IVersions {
  path: string;
  versions: IVersion[];
}

/** Which version to restore (POST /swan/api/versions/restore). */
export interface IVersionRestore {
  path: string;
  id: string;
}

/** What to compare the notebook at `path` with (POST /swan/api/diff): exactly one of
 * `version`, `other` (another notebook's path) or `content` (a notebook held here). */
export interface IDiffRequest {
  path: string;
  version?: string;
  other?: string;
  content?: Record<string, unknown>;
}

/** One cell of a notebook diff, as a person reads it; `lines` are [mark, text], the mark
 * " " (kept), "-" (only in the notebook at `path`) or "+" (only on the other side). */
export interface IDiffCell {
  status: 'added' | 'removed' | 'changed' | 'unchanged';
  cell_type: string;
  lines: string[][];
  outputs_changed?: boolean;
  metadata_changed?: boolean;
}

/** A notebook-aware diff (POST /swan/api/diff): nbdime's `diff` of `base` and its reading. */
export interface INotebookDiff {
  path: string;
  against: Record<string, unknown>;
  base: Record<string, unknown>;
  diff: Record<string, unknown>[];
  cells: IDiffCell[];
  metadata_changed: boolean;
}

/** What to merge (POST /swan/api/merge): `mine` with the stored notebook at `path`, both
 * changed from `base`. */
export interface IMergeRequest {
  path: string;
  base: Record<string, unknown>;
  mine: Record<string, unknown>;
}

/** What a merge did to one cell of the base (numbered from 1; null: the notebook's metadata). */
export interface IMergeCell {
  cell: number | null;
  by: 'mine' | 'theirs' | 'both';
  conflict: boolean;
}

/** A three-way merge (POST /swan/api/merge): `merged`, to save over the stored `etag`. */
export interface INotebookMerge {
  path: string;
  merged: Record<string, unknown>;
  conflicts: number;
  etag: string | null;
  cells: IMergeCell[];
}

/** The trash of the space (GET /swan/api/trash); without one, `supported` is false. */
export interface ITrash {
  supported: boolean;
  items: ITrashItem[];
}

/** Which entry to restore, and where if not at its old place (POST /swan/api/trash/restore). */
export interface ITrashRestore {
  id: string;
  path?: string;
}

/**
 * A contents model as the restore and clone endpoints answer it (only what the UI reads); see
 * drive.ts for the whole one.
 */
export interface IContentsModel {
  path: string;
  type: 'file' | 'notebook' | 'directory';
}

/** What an open-in link opens: a path in a space, or a source on the web. */
export interface ILinkQuery {
  path?: string;
  /** Whose space `path` is in (default the caller's). */
  owner?: string;
  url?: string;
  projurl?: string;
  kind?: 'git' | 'file';
  branch?: string;
  /** The file to open inside a fetched project. */
  open?: string;
}

/** The open-in link of a path and its badge (POST /swan/api/links). */
export interface ILinks {
  link: string;
  badge: string;
  markdown: string;
  html: string;
}

/**
 * A contents model of the SWAN contents manager: jupyter_server's, with the version and
 * whether the storage lets the person share it on.
 */
export interface ISwanModel extends Contents.IModel {
  readonly etag?: string | null;
  readonly shareable?: boolean | null;
}

/** The fields a save may add to jupyter_server's model (SaveModel): a conditional save. */
export interface ISaveFields {
  etag?: string;
  if_none_match?: '*';
  on_conflict?: 'fail' | 'copy';
}
