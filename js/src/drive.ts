/**
 * The contents drive of the SWAN suite: JupyterLab's REST drive that sends the storage's version
 * (`etag`) with every save of a document it loaded, so a save never silently replaces a change
 * made elsewhere (docs/storage.md). It owns the versions it has seen and the steps after a
 * conflict; what to do about one is asked of an `IConflictResolver`, it shows nothing itself.
 */
import { Contents, Drive, ServerConnection } from '@jupyterlab/services';

import { ISaveFields, ISwanModel } from './api';
import { IUploadOptions, streamUpload } from './uploads';

/** What the person chose to do about a save that found another version stored. */
export type ConflictChoice = 'copy' | 'overwrite' | 'reload' | 'cancel';

/** A save of `path` that was refused because the stored file changed since it was loaded. */
export interface IConflict {
  path: string;
  /** The stored file now (without content); null when it was deleted or moved. */
  theirs: Contents.IModel | null;
  /** The notebook being saved (the person's version), to compare with theirs. */
  mine?: Record<string, unknown>;
}

/** The front-end side of a conflict: asks the person, and acts on the open documents. */
export interface IConflictResolver {
  /** Ask what to do; 'reload' and 'copy' are only offered while the file exists. */
  choose(conflict: IConflict): Promise<ConflictChoice>;
  /** Load the stored content into the documents open at `path`. */
  reload(path: string): Promise<void>;
  /** Open the file at `path` (the conflict copy) for the person to see. */
  show(path: string): Promise<void>;
}

/** A save of the SWAN contents API: jupyter_server's, maybe conditional. */
type SaveOptions = Partial<Contents.IModel> & ISaveFields;

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
    const base = this._versions.get(localPath);
    if (base === undefined) {
      return this._remember(localPath, await super.save(localPath, options));
    }
    const conditional: SaveOptions = { ...options, etag: base };
    try {
      return this._remember(
        localPath,
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
    for (const [path, version] of [...this._versions]) {
      if (path === oldPath || path.startsWith(`${oldPath}/`)) {
        this._versions.delete(path);
        this._versions.set(newPath + path.slice(oldPath.length), version);
      }
    }
    return model;
  }

  async delete(localPath: string): Promise<void> {
    await super.delete(localPath);
    for (const path of [...this._versions.keys()]) {
      if (path === localPath || path.startsWith(`${localPath}/`)) {
        this._versions.delete(path);
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
    try {
      theirs = await this._stored(localPath);
      const mine =
        options.type === 'notebook' && options.content
          ? (options.content as Record<string, unknown>)
          : undefined;
      choice = await resolver.choose({ path: localPath, theirs, mine });
    } finally {
      this._asking.delete(localPath);
    }
    if (choice === 'overwrite') {
      if (theirs === null) {
        // Save mine again, as a new file: never over one made meanwhile, which asks again.
        this._versions.delete(localPath);
        const anew: SaveOptions = { ...options, if_none_match: '*' };
        try {
          return this._remember(localPath, await super.save(localPath, anew));
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
        return this._remember(localPath, copy);
      }
      await resolver.reload(localPath);
      await resolver.show(copy.path);
      return theirs;
    }
    await resolver.reload(localPath);
    return theirs;
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
