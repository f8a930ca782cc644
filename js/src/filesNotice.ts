/**
 * The one-time notice that code sees only the server's local folder: where the spawner could
 * not mount the storage, kernels and terminals cannot open the files of the file browser by
 * their path. It reads GET /swan/api/info once and changes nothing on the server. The same
 * answer says whether deletes go to a trash, so JupyterLab's delete dialog says "move to
 * trash" rather than "permanently delete".
 */
import { Notification } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';

import { IServerInfo, swanAPI } from './api';

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
