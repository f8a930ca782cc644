/**
 * The one-time notice that code sees only the server's local folder: where the spawner could
 * not mount the storage, kernels and terminals cannot open the files of the file browser by
 * their path. It reads GET /swan/api/info once and changes nothing on the server.
 */
import { Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';

import { IServerInfo, swanAPI } from './api';

/** Shown once per server and browser: the key remembers that it was. */
function shownKey(): string {
  return `swan:files-for-code-notice:${ServerConnection.makeSettings().baseUrl}`;
}

/** Show the server's notice, if it has one and this browser has not shown it yet. */
export async function noticeFilesForCode(
  trans: TranslationBundle
): Promise<void> {
  const key = shownKey();
  if (window.localStorage.getItem(key)) {
    return;
  }
  let info: IServerInfo;
  try {
    info = await swanAPI<IServerInfo>(trans, 'info');
  } catch {
    return; // an older server, or none: nothing to say
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
