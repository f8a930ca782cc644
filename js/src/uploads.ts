/**
 * Uploads from the file browsers (the upload button, files dropped on the listing) streamed to
 * the server in one request each (PUT /swan/api/upload), instead of JupyterLab's 1 MiB base64
 * parts in JSON, where the server offers it (GET /swan/api/info). The questions before an
 * upload (overwrite?), the progress in the status bar and the errors stay JupyterLab's; only
 * how the bytes travel changes. It owns that choice, the request (`streamUpload`) and the one
 * hook into JupyterLab's file browser model (`replaceUploadSender`); the drive sends the
 * upload and tells the file browsers of it as of a save.
 */
import { IChangedArgs, URLExt } from '@jupyterlab/coreutils';
import { FileBrowserModel, IUploadModel } from '@jupyterlab/filebrowser';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';

import { IServerInfo, ISwanModel, IUploadOffer, swanAPI } from './api';
import type { SwanDrive } from './drive';

/** How a file browser model's uploads may be sent instead of its own way. */
interface IUploadSender {
  /** Whether uploads into `folder` (a path of the model) go this way. */
  takes(folder: string): Promise<boolean>;
  /** Send `file` into `folder`, reporting the fraction sent; the saved file's model. */
  send(
    file: File,
    folder: string,
    report: (fraction: number) => void
  ): Promise<Contents.IModel>;
}

/** What JupyterLab's FileBrowserModel (4.x) keeps privately about uploads. */
interface IUploadInternals {
  _upload(
    file: File,
    chunked: boolean,
    path?: string
  ): Promise<Contents.IModel>;
  _shouldUploadLarge(file: File): Promise<boolean>;
  _uploads: IUploadModel[];
  _uploadChanged: {
    emit(change: IChangedArgs<IUploadModel | null, IUploadModel | null>): void;
  };
}

/**
 * Make `model` send its uploads with `sender` where it takes them, keeping JupyterLab's steps
 * before sending (uploads allowed? overwrite?) and its progress reports (the status bar, the
 * warning when leaving the page mid-upload). The large-file question ("Do you still want to
 * upload it?") is skipped where `sender` takes the upload: it is about the cost of the base64
 * parts, which a streamed upload does not pay.
 *
 * JupyterLab 4 has no public seam for how a file browser sends a file, so this replaces the
 * private `_upload` and `_shouldUploadLarge` of this one model and reports through its private
 * `_uploads` and `_uploadChanged`, as its own `_upload` does (@jupyterlab/filebrowser 4.2 to
 * 4.6, lib/model.js). Remove this function, and use the seam instead, once JupyterLab has one
 * (an `upload` of Contents.IDrive, say); where the private names are gone it changes nothing.
 */
function replaceUploadSender(
  model: FileBrowserModel,
  sender: IUploadSender
): void {
  const inner = model as unknown as IUploadInternals;
  if (
    typeof inner._upload !== 'function' ||
    typeof inner._shouldUploadLarge !== 'function' ||
    !Array.isArray(inner._uploads) ||
    typeof inner._uploadChanged?.emit !== 'function'
  ) {
    console.warn(
      "SWAN: this JupyterLab's file browser is not the one known; uploads go its own way"
    );
    return;
  }
  const ownUpload = inner._upload.bind(model);
  const ownQuestion = inner._shouldUploadLarge.bind(model);
  inner._shouldUploadLarge = async file =>
    (await sender.takes(model.path)) || ownQuestion(file);
  inner._upload = async (file, chunked, folder) => {
    const target = folder ?? model.path;
    if (!(await sender.takes(target))) {
      return ownUpload(file, chunked, folder);
    }
    const path = target ? `${target}/${file.name}` : file.name;
    let current: IUploadModel = { path, progress: 0 };
    inner._uploads.push(current);
    inner._uploadChanged.emit({
      name: 'start',
      newValue: current,
      oldValue: null
    });
    const report = (progress: number) => {
      const next = { path, progress };
      inner._uploads.splice(inner._uploads.indexOf(current), 1, next);
      inner._uploadChanged.emit({
        name: 'update',
        newValue: next,
        oldValue: current
      });
      current = next;
    };
    const done = () =>
      inner._uploads.splice(inner._uploads.indexOf(current), 1);
    let saved: Contents.IModel;
    try {
      saved = await sender.send(file, target, report);
    } catch (error) {
      done();
      inner._uploadChanged.emit({
        name: 'failure',
        newValue: current,
        oldValue: null
      });
      throw error;
    }
    done();
    inner._uploadChanged.emit({
      name: 'finish',
      newValue: null,
      oldValue: current
    });
    return saved;
  };
}

/**
 * The streamed uploads of the SWAN drive for every file browser they are given: only for
 * folders of the default drive, and only where the server offers the route.
 */
export class StreamedUploads {
  constructor(
    private readonly drive: SwanDrive,
    private readonly trans: TranslationBundle
  ) {}

  /** Send the uploads of `model` streamed where they can be (once per model). */
  route(model: FileBrowserModel): void {
    if (this._routed.has(model)) {
      return;
    }
    this._routed.add(model);
    replaceUploadSender(model, {
      takes: folder => this._takes(model, folder),
      send: (file, folder, report) => this._send(model, file, folder, report)
    });
  }

  /** The server's offer, asked once: null for a server without the route. */
  private _offer(): Promise<IUploadOffer | null> {
    this._offered ??= swanAPI<IServerInfo>(this.trans, 'info').then(
      info => info.upload ?? null,
      () => null
    );
    return this._offered;
  }

  private async _takes(
    model: FileBrowserModel,
    folder: string
  ): Promise<boolean> {
    const contents = model.manager.services.contents;
    return (
      model.driveName === '' &&
      contents.driveName(folder) === '' &&
      (await this._offer()) !== null
    );
  }

  private async _send(
    model: FileBrowserModel,
    file: File,
    folder: string,
    report: (fraction: number) => void
  ): Promise<Contents.IModel> {
    const offer = await this._offer();
    if (offer?.max_size && file.size > offer.max_size) {
      const mb = (bytes: number) => Math.ceil(bytes / (1024 * 1024));
      throw new Error(
        this.trans.__(
          '%1 is %2 MB; this server takes files of at most %3 MB. Upload it with a sync client instead.',
          file.name,
          mb(file.size),
          mb(offer.max_size)
        )
      );
    }
    const path = folder ? `${folder}/${file.name}` : file.name;
    return this.drive.upload(path, file, {
      ...conditionOf(model, folder, file.name),
      progress: report
    });
  }

  private _offered: Promise<IUploadOffer | null> | null = null;
  private readonly _routed = new WeakSet<FileBrowserModel>();
}

/**
 * What an upload into the folder the browser shows is conditional on: replacing exactly the
 * version of the file the person agreed to overwrite (listed a moment before JupyterLab
 * asked), or, where none was listed, creating only; a change by someone else meanwhile is a
 * 409 shown as the upload's error, never a silent overwrite. Uploads into another folder
 * (files dropped on a subfolder) replace whatever is there, as JupyterLab's do.
 */
function conditionOf(
  model: FileBrowserModel,
  folder: string,
  name: string
): IUploadOptions {
  if (folder !== model.path) {
    return {};
  }
  const listed = Array.from(model.items()).find(item => item.name === name) as
    ISwanModel | undefined;
  if (listed === undefined) {
    return { createOnly: true };
  }
  return typeof listed.etag === 'string' && listed.etag
    ? { ifMatch: listed.etag }
    : {};
}

/** What a streamed upload is conditional on, and who hears of its progress. */
export interface IUploadOptions {
  /** Replace only this version of the file (the etag the person was shown). */
  ifMatch?: string;
  /** Create only: refuse (409) if a file of that name exists. */
  createOnly?: boolean;
  /** Called with the fraction of the file sent so far (0 to 1). */
  progress?: (fraction: number) => void;
}

/** The last value of a cookie, as the server reads duplicates (see ServerConnection). */
function cookie(name: string): string | undefined {
  let value: string | undefined;
  for (const part of document.cookie.split(';')) {
    const trimmed = part.trim();
    if (trimmed.startsWith(`${name}=`)) {
      value = trimmed.substring(name.length + 1);
    }
  }
  return value;
}

/**
 * PUT `file` to /swan/api/upload/<path> as the request body itself, streamed by the browser
 * from disk (XMLHttpRequest: the only request of browsers that reports upload progress).
 * Authenticated as ServerConnection.makeRequest does it: the token where the page has one,
 * the `_xsrf` cookie as X-XSRFToken. Resolves to the file's model; rejects with a
 * ResponseError carrying the server's message, or a NetworkError.
 */
export function streamUpload(
  settings: ServerConnection.ISettings,
  path: string,
  file: Blob,
  options: IUploadOptions = {}
): Promise<ISwanModel> {
  const url = URLExt.join(
    settings.baseUrl,
    'swan/api/upload',
    URLExt.encodeParts(path)
  );
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    if (settings.token) {
      xhr.setRequestHeader('Authorization', `token ${settings.token}`);
    }
    const xsrf = cookie('_xsrf');
    if (xsrf !== undefined) {
      xhr.setRequestHeader('X-XSRFToken', xsrf);
    }
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    if (options.ifMatch) {
      xhr.setRequestHeader('If-Match', options.ifMatch);
    }
    if (options.createOnly) {
      xhr.setRequestHeader('If-None-Match', '*');
    }
    xhr.upload.onprogress = event => {
      if (event.lengthComputable && event.total > 0) {
        options.progress?.(event.loaded / event.total);
      }
    };
    xhr.onload = () => {
      let body: any = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 200 || xhr.status === 201) {
        resolve(body as ISwanModel);
        return;
      }
      const response = new Response(xhr.responseText, {
        status: xhr.status,
        statusText: xhr.statusText
      });
      const message =
        (body && typeof body === 'object' && body.message) ||
        `${xhr.status} ${xhr.statusText}`;
      reject(new ServerConnection.ResponseError(response, message));
    };
    xhr.onerror = () =>
      reject(
        new ServerConnection.NetworkError(
          new TypeError(`The upload of ${path} broke off`)
        )
      );
    xhr.send(file);
  });
}
