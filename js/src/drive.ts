/**
 * The contents drive of the SWAN suite: JupyterLab's REST drive that sends the storage's version
 * (`etag`) with every save of a document it loaded, so a save never silently replaces a change
 * made elsewhere (docs/storage.md). It owns the versions it has seen, the notebooks they hold (the
 * base of a three-way merge) and the steps after a conflict; what to do about one is asked of an
 * `IConflictResolver`, it shows nothing itself.
 */
import { Contents, Drive, ServerConnection } from '@jupyterlab/services';

import { INotebookMerge, ISaveFields, ISwanModel } from './api';
import { IUploadOptions, streamUpload } from './uploads';

/** What the person chose to do about a save that found another version stored. */
export type ConflictChoice =
  'copy' | 'overwrite' | 'reload' | 'merge' | 'cancel';

/** A save of `path` that was refused because the stored file changed since it was loaded. */
export interface IConflict {
  path: string;
  /** The stored file now (without content); null when it was deleted or moved. */
  theirs: Contents.IModel | null;
  /** The notebook being saved (the person's version), to compare with theirs. */
  mine?: Record<string, unknown>;
  /** The notebook as this tab loaded or last saved it, which both sides started from. */
  base?: Record<string, unknown>;
}

/** The front-end side of a conflict: asks the person, and acts on the open documents. */
export interface IConflictResolver {
  /**
   * Ask what to do; 'reload' and 'copy' are only offered while the file exists, 'merge' only
   * for a notebook with a `base`.
   */
  choose(conflict: IConflict): Promise<ConflictChoice>;
  /** Merge mine with theirs from the base and show the result: null when the person went back. */
  merge(conflict: IConflict): Promise<INotebookMerge | null>;
  /** Put `content` into the documents open at `path`, as an unsaved change. */
  load(path: string, content: Record<string, unknown>): void;
  /** Whether to save a merge at `path` whose conflict markers are still in it. */
  saveUnresolved(path: string): Promise<boolean>;
  /** Load the stored content into the documents open at `path`. */
  reload(path: string): Promise<void>;
  /** Open the file at `path` (the conflict copy) for the person to see. */
  show(path: string): Promise<void>;
}

/** A save of the SWAN contents API: jupyter_server's, maybe conditional. */
type SaveOptions = Partial<Contents.IModel> & ISaveFields;

/** The largest notebook kept as a merge base: the server merges none larger (MAX_BYTES). */
const MAX_BASE_BYTES = 20 * 1024 * 1024;
/** How many bytes of merge bases are kept at most; the least recently kept is forgotten first. */
const MAX_BASES_BYTES = 64 * 1024 * 1024;

export class SwanDrive extends Drive {
  /** Set by the front-end; without one, a conflict is the server's 409 error. */
  resolver: IConflictResolver | null = null;

  async get(
    localPath: string,
    options?: Contents.IFetchOptions
  ): Promise<Contents.IModel> {
    // JupyterLab compares content hashes before each save; the version does that job here and
    // atomically, and a hash costs the server a full read of the file.
    const hashless =
      this._versions.has(localPath) && options?.hash
        ? { ...options, hash: false }
        : options;
    const model = await super.get(localPath, hashless);
    if (options?.content !== false && model.type !== 'directory') {
      this._remember(localPath, model);
      this._rememberBase(localPath, model, model.content);
      this._unresolved.delete(localPath);
    }
    this._noteShareable(model);
    if (model.type === 'directory' && Array.isArray(model.content)) {
      model.content.forEach((child: ISwanModel) => this._noteShareable(child));
    }
    return model;
  }

  /**
   * Whether the storage lets the person share `localPath` on, as its last listing or read
   * said (JupyterLab keeps only the stock fields of a document's model); true when unknown.
   */
  canShare(localPath: string): boolean {
    return this._shareable.get(localPath) !== false;
  }

  /**
   * The stored version (`etag`) the document open at `localPath` was loaded or last saved with;
   * undefined when the drive has not read it (or the storage has no versions).
   */
  versionOf(localPath: string): string | undefined {
    return this._versions.get(localPath);
  }

  async save(
    localPath: string,
    options: SaveOptions = {}
  ): Promise<Contents.IModel> {
    if (!isDocumentSave(options)) {
      return super.save(localPath, options);
    }
    await this._checkResolved(localPath, options);
    const base = this._versions.get(localPath);
    if (base === undefined) {
      return this._saved(
        localPath,
        options,
        await super.save(localPath, options)
      );
    }
    const conditional: SaveOptions = { ...options, etag: base };
    try {
      return this._saved(
        localPath,
        options,
        await super.save(localPath, conditional)
      );
    } catch (error) {
      if (!isConflict(error) || !this.resolver) {
        throw error;
      }
      return this._settle(localPath, options, base, this.resolver);
    }
  }

  /**
   * Upload `file` to `localPath` streamed in one request (PUT /swan/api/upload); the file
   * browsers hear of it as of a save. The version of a document open at that path stays the
   * one it loaded, so its next save finds the upload and asks what to do.
   */
  async upload(
    localPath: string,
    file: Blob,
    options: IUploadOptions = {}
  ): Promise<ISwanModel> {
    const model = await streamUpload(
      this.serverSettings,
      localPath,
      file,
      options
    );
    // `fileChanged` is the drive's own Signal, typed read-only for its listeners
    (
      this.fileChanged as unknown as {
        emit(change: Contents.IChangedArgs): void;
      }
    ).emit({ type: 'save', oldValue: null, newValue: model });
    return model;
  }

  async rename(oldPath: string, newPath: string): Promise<Contents.IModel> {
    const model = await super.rename(oldPath, newPath);
    // The documents follow the move with the versions they loaded, not the one stored now: a
    // change made elsewhere before the move must still be caught at their next save.
    for (const known of [this._versions, this._bases]) {
      for (const [path, value] of [...known]) {
        if (isAtOrUnder(path, oldPath)) {
          known.delete(path);
          (known as Map<string, unknown>).set(
            newPath + path.slice(oldPath.length),
            value
          );
        }
      }
    }
    for (const path of [...this._unresolved]) {
      if (isAtOrUnder(path, oldPath)) {
        this._unresolved.delete(path);
        this._unresolved.add(newPath + path.slice(oldPath.length));
      }
    }
    return model;
  }

  async delete(localPath: string): Promise<void> {
    await super.delete(localPath);
    for (const known of [this._versions, this._bases, this._unresolved]) {
      for (const path of [...known.keys()]) {
        if (isAtOrUnder(path, localPath)) {
          known.delete(path);
        }
      }
    }
  }

  /** Carry out what the person chose about a refused save of `localPath`. */
  private async _settle(
    localPath: string,
    options: SaveOptions,
    base: string,
    resolver: IConflictResolver
  ): Promise<Contents.IModel> {
    if (this._asking.has(localPath)) {
      // an autosave while the dialog is open: JupyterLab drops it quietly
      throw namedError('ModalDuplicateError', 'The conflict dialog is open');
    }
    this._asking.add(localPath);
    let theirs: Contents.IModel | null;
    let choice: ConflictChoice;
    let merge: INotebookMerge | null = null;
    try {
      theirs = await this._stored(localPath);
      const mine =
        options.type === 'notebook' && options.content
          ? (options.content as Record<string, unknown>)
          : undefined;
      const conflict: IConflict = { path: localPath, theirs, mine };
      if (mine && theirs !== null) {
        conflict.base = this._bases.get(localPath)?.content;
      }
      choice = await resolver.choose(conflict);
      while (choice === 'merge' && merge === null) {
        merge = await resolver.merge(conflict);
        if (merge === null) {
          choice = await resolver.choose(conflict); // the person went back
        }
      }
    } finally {
      this._asking.delete(localPath);
    }
    if (merge !== null) {
      return this._saveMerged(localPath, options, merge, resolver);
    }
    if (choice === 'overwrite') {
      if (theirs === null) {
        // Save mine again, as a new file: never over one made meanwhile, which asks again.
        this._versions.delete(localPath);
        const anew: SaveOptions = { ...options, if_none_match: '*' };
        try {
          return this._saved(
            localPath,
            options,
            await super.save(localPath, anew)
          );
        } catch (error) {
          if (!isConflict(error)) {
            throw error;
          }
          return this._settle(localPath, options, base, resolver);
        }
      }
      // Overwrite exactly the version the person was shown; a newer one asks again.
      this._remember(localPath, theirs);
      return this.save(localPath, options);
    }
    if (choice === 'cancel' || theirs === null) {
      throw namedError('ModalCancelError', 'Cancel');
    }
    if (choice === 'copy') {
      const asCopy: SaveOptions = {
        ...options,
        etag: base,
        on_conflict: 'copy'
      };
      const copy = await super.save(localPath, asCopy);
      if (copy.path === localPath) {
        // the stored file was back at our version: it was simply saved
        return this._saved(localPath, options, copy);
      }
      await resolver.reload(localPath);
      await resolver.show(copy.path);
      return theirs;
    }
    await resolver.reload(localPath);
    return theirs;
  }

  /**
   * Put a merged notebook into the editor, as the stored version it was merged with, and save
   * it over exactly that version (a third writer meanwhile asks again). With conflicts it is
   * not saved: the editor holds it, unsaved, for the person to resolve the marked cells.
   */
  private async _saveMerged(
    localPath: string,
    options: SaveOptions,
    merge: INotebookMerge,
    resolver: IConflictResolver
  ): Promise<Contents.IModel> {
    resolver.load(localPath, merge.merged);
    this._remember(localPath, { etag: merge.etag ?? undefined });
    if (merge.conflicts > 0) {
      // the tab now starts from theirs, whose content this drive never read
      this._bases.delete(localPath);
      this._unresolved.add(localPath);
      throw namedError(
        'ModalCancelError',
        'The merge has conflicts to resolve'
      );
    }
    return this.save(localPath, { ...options, content: merge.merged });
  }

  /**
   * A save of a merge that still holds conflict markers (an autosave, or Ctrl+S before the
   * marked cells were resolved) goes ahead only when the person says so.
   */
  private async _checkResolved(
    localPath: string,
    options: SaveOptions
  ): Promise<void> {
    if (
      !this.resolver ||
      !this._unresolved.has(localPath) ||
      !hasConflictMarkers(options.content)
    ) {
      return;
    }
    if (this._asking.has(localPath)) {
      throw namedError('ModalDuplicateError', 'The conflict dialog is open');
    }
    this._asking.add(localPath);
    let saveAnyway: boolean;
    try {
      saveAnyway = await this.resolver.saveUnresolved(localPath);
    } finally {
      this._asking.delete(localPath);
    }
    if (!saveAnyway) {
      throw namedError('ModalCancelError', 'Cancel');
    }
  }

  /** The stored file's model without content, or null when there is none. */
  private async _stored(localPath: string): Promise<Contents.IModel | null> {
    try {
      return await this.get(localPath, { content: false });
    } catch (error) {
      if (
        error instanceof ServerConnection.ResponseError &&
        error.response.status === 404
      ) {
        return null;
      }
      throw error;
    }
  }

  private _remember<T extends Partial<ISwanModel>>(path: string, model: T): T {
    if (typeof model.etag === 'string' && model.etag) {
      this._versions.set(path, model.etag);
    } else {
      this._versions.delete(path);
    }
    return model;
  }

  /** A document's save succeeded: its version, and for a notebook the content sent. */
  private _saved<T extends Partial<ISwanModel>>(
    path: string,
    options: SaveOptions,
    model: T
  ): T {
    this._rememberBase(path, model, options.content);
    this._unresolved.delete(path);
    return this._remember(path, model);
  }

  /**
   * Keep a notebook as the base of a later merge at `path`, when it is small enough for the
   * server to merge (the model's `size`); the least recently kept go past MAX_BASES_BYTES.
   */
  private _rememberBase(
    path: string,
    model: Partial<Contents.IModel>,
    content: unknown
  ): void {
    this._bases.delete(path);
    const size = model.size;
    if (
      model.type !== 'notebook' ||
      !content ||
      typeof content !== 'object' ||
      typeof size !== 'number' ||
      size > MAX_BASE_BYTES
    ) {
      return;
    }
    this._bases.set(path, {
      content: content as Record<string, unknown>,
      size
    });
    let kept = 0;
    for (const { size } of this._bases.values()) {
      kept += size;
    }
    for (const [oldest, { size }] of this._bases) {
      if (kept <= MAX_BASES_BYTES) {
        break;
      }
      this._bases.delete(oldest);
      kept -= size;
    }
  }

  private _noteShareable(model: Partial<ISwanModel>): void {
    if (typeof model.path !== 'string') {
      return;
    }
    if (typeof model.shareable === 'boolean') {
      this._shareable.set(model.path, model.shareable);
    } else if (model.shareable === null) {
      // a save's answer does not say: keep what the listing or read said
      return;
    } else {
      this._shareable.delete(model.path);
    }
  }

  private readonly _versions = new Map<string, string>();
  /** Per notebook path, the notebook last loaded or saved there (in insertion order). */
  private readonly _bases = new Map<
    string,
    { content: Record<string, unknown>; size: number }
  >();
  /** Paths whose tab holds a merge with conflict markers, not saved since. */
  private readonly _unresolved = new Set<string>();
  private readonly _shareable = new Map<string, boolean>();
  private readonly _asking = new Set<string>();
}

/**
 * Whether a save writes a document's content (what a version protects). Uploads carry the
 * file's `name` (and `chunk` for large ones) and have asked "overwrite?" already; folders have
 * no content.
 */
function isDocumentSave(options: SaveOptions): boolean {
  return (
    options.content !== undefined &&
    options.type !== 'directory' &&
    !('name' in options) &&
    !('chunk' in options)
  );
}

/** The lines nbdime's inline merge marks a conflict with (in a source, or a marker cell). */
const CONFLICT_MARKERS =
  /^(?:<<<<<<< local|>>>>>>> remote)|<b><<<<<<< local<\/b>/m;

/** Whether a notebook's cells still hold the markers of a merge's conflicts. */
function hasConflictMarkers(content: unknown): boolean {
  const cells = (content as { cells?: unknown } | null)?.cells;
  if (!Array.isArray(cells)) {
    return false;
  }
  return cells.some(cell => {
    const source = (cell as { source?: unknown })?.source;
    const text = Array.isArray(source) ? source.join('') : String(source ?? '');
    return CONFLICT_MARKERS.test(text);
  });
}

function isAtOrUnder(path: string, folder: string): boolean {
  return path === folder || path.startsWith(`${folder}/`);
}

function isConflict(error: unknown): boolean {
  return (
    error instanceof ServerConnection.ResponseError &&
    error.response.status === 409
  );
}

/** The errors JupyterLab's document context passes on without an error dialog. */
function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}
