/**
 * The one-time notice that code sees only the server's local folder: where the spawner could
 * not mount the storage, kernels and terminals cannot open the files of the file browser by
 * their path. It reads GET /swan/api/info once and changes nothing on the server. The same
 * answer says whether deletes go to a trash, so JupyterLab's delete dialog says "move to
 * trash" rather than "permanently delete".
 *
 * Where the storage is mounted, a file code wrote that the storage refuses (over quota, a name
 * it forbids, a folder no longer writable) stays in the mount while its upload is tried again:
 * `RefusedUploadsWatcher` tells the user of each such file once, and takes the notice back when
 * an upload of it went through. It does the same for a file cut short: the disk where the mount
 * stages writes was full, code's write failed, and the part written before went up.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IRefusedUploads, IServerInfo, swanAPI } from './api';
import { everyVisible, h } from './dom';

/** Shown once per server and browser: the key remembers that it was. */
function shownKey(): string {
  return `swan:files-for-code-notice:${ServerConnection.makeSettings().baseUrl}`;
}

/** What the server says of itself (GET /swan/api/info); null from an older server or none. */
export async function serverInfo(
  trans: TranslationBundle
): Promise<IServerInfo | null> {
  try {
    return await swanAPI<IServerInfo>(trans, 'info');
  } catch {
    return null;
  }
}

/** Show the server's notice, if it has one and this browser has not shown it yet. */
export function noticeFilesForCode(
  info: IServerInfo | null,
  trans: TranslationBundle
): void {
  const key = shownKey();
  if (!info || window.localStorage.getItem(key)) {
    return;
  }
  if (info.files_for_code?.mounted === false) {
    window.localStorage.setItem(key, '1');
    Notification.warning(
      trans.__(
        "Code sees only this server's local folder: kernels and terminals cannot open the file browser's files and shares by path."
      ),
      { autoClose: false }
    );
  }
}

/**
 * Tell JupyterLab's file browser whether a delete moves to a trash (it reads the page option
 * `delete_to_trash` when it asks before deleting).
 */
export function sayWhereDeletesGo(info: IServerInfo | null): void {
  if (info && typeof info.trash === 'boolean') {
    PageConfig.setOption('delete_to_trash', info.trash ? 'true' : 'false');
  }
}

/** How often the list of refused uploads is read while the page is visible. */
export const REFUSED_UPLOADS_SECONDS = 5;

/** A file code wrote whose upload went wrong: refused (with the storage's reason) or cut short. */
interface IWentWrong {
  path: string;
  why: string | null;
}

/**
 * Tells the user of each file code wrote whose upload went wrong (GET /swan/api/refused-uploads):
 * one the storage refuses, or one cut short because the disk where the mount stages writes was full.
 */
export class RefusedUploadsWatcher {
  constructor(
    private readonly trans: TranslationBundle,
    intervalSeconds = REFUSED_UPLOADS_SECONDS
  ) {
    void this.check();
    everyVisible(intervalSeconds, () => void this.check());
  }

  /** Read the list once: a notice for each file newly in it, none any more for those gone. */
  async check(): Promise<void> {
    if (this._checking) {
      return;
    }
    this._checking = true;
    try {
      let answer: IRefusedUploads;
      try {
        answer = await swanAPI<IRefusedUploads>(this.trans, 'refused-uploads');
      } catch {
        return; // the server away for a moment: the next look says it
      }
      const now = new Map<string, IWentWrong>();
      for (const item of answer.refused) {
        now.set(`refused:${item.path}`, { path: item.path, why: item.why });
      }
      for (const item of answer.cut ?? []) {
        now.set(`cut:${item.path}`, { path: item.path, why: null });
      }
      for (const [key, id] of this._shown) {
        if (!now.has(key)) {
          Notification.dismiss(id);
          this._shown.delete(key);
        }
      }
      for (const [key, item] of now) {
        if (!this._shown.has(key)) {
          this._shown.set(key, this.notify(item));
        }
      }
    } finally {
      this._checking = false;
    }
  }

  /** A notice that stays until the file is stored whole; its Details tell the whole story. */
  private notify(item: IWentWrong): string {
    const message =
      item.why === null
        ? this.trans.__(
            'Only part of %1, which code wrote, reached the storage: the disk for uploads was full',
            item.path
          )
        : this.trans.__(
            'The storage refuses %1, which code wrote: %2',
            item.path,
            item.why
          );
    return Notification.warning(message, {
      autoClose: false,
      actions: [
        {
          label: this.trans.__('Details'),
          callback: event => {
            event.preventDefault(); // the notice stays until the file went up
            void this.explain(item);
          }
        }
      ]
    });
  }

  /** The whole story of one file (a notice shows 140 characters at most). */
  private async explain(item: IWentWrong): Promise<void> {
    const texts =
      item.why === null
        ? [
            this.trans.__(
              'Code wrote %1, but the disk where writes wait for their upload was full, so the write failed part way.',
              item.path
            ),
            this.trans.__(
              'The part written before went up and replaced the stored file. The storage keeps the file as it was before as a version: restore it from its versions if you need it.'
            ),
            this.trans.__(
              'Write the file again, smaller or once there is room (ask whoever runs this service). This notice goes away once the file is stored whole, or once code removes it.'
            )
          ]
        : [
            this.trans.__(
              'Code wrote %1, and the storage refuses to take it: %2',
              item.path,
              item.why
            ),
            this.trans.__(
              'Code still sees the file, but it is not stored: other devices and the file browser do not have it. Its upload is tried again until the storage takes it.'
            ),
            this.trans.__(
              'Make room (over quota), rename the file (a name the storage forbids) or write it elsewhere (a folder you may no longer change). This notice goes away once the file is stored.'
            )
          ];
    const body = h('div', {}, ...texts.map(text => h('p', {}, text)));
    await showDialog({
      title:
        item.why === null
          ? this.trans.__('A file code wrote was cut short')
          : this.trans.__('A file code wrote is not stored'),
      body: new Widget({ node: body }),
      buttons: [Dialog.okButton({ label: this.trans.__('OK') })]
    });
  }

  private _checking = false;
  /** `<kind>:<path>` -> the id of its notice */
  private readonly _shown = new Map<string, string>();
}

/** Watch for refused uploads where the server lists them. */
export function watchRefusedUploads(
  info: IServerInfo | null,
  trans: TranslationBundle
): void {
  if (info?.files_for_code?.refused_uploads) {
    new RefusedUploadsWatcher(trans);
  }
}
