/**
 * The "a newer version is available" notice: when the stored file of an open document changes
 * elsewhere (a teacher updates a shared notebook, a sync client writes it), its `etag` differs
 * from the one the document was loaded with. The check is one `GET /api/contents/<path>?content=0`
 * per open document, when the window gets the focus back and every `intervalSeconds`. The notice
 * never reloads by itself, and Reload asks first when the document has unsaved edits.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { ISwanModel } from './api';
import { everyVisible } from './dom';
import { SwanDrive } from './drive';

/** How often the open documents are checked while the window keeps the focus. */
export const NEWER_VERSION_SECONDS = 45;

export class NewerVersionWatcher {
  constructor(
    private readonly drive: SwanDrive,
    private readonly manager: IDocumentManager,
    private readonly openWidgets: () => Iterable<Widget>,
    private readonly trans: TranslationBundle,
    intervalSeconds = NEWER_VERSION_SECONDS
  ) {
    window.addEventListener('focus', () => void this.check());
    everyVisible(intervalSeconds, () => void this.check());
  }

  /** Compare the stored version of every open document with the one it was loaded with. */
  async check(): Promise<void> {
    if (this._checking) {
      return; // a focus during the interval's check: one at a time
    }
    this._checking = true;
    try {
      await Promise.all(
        [...this.openContexts()].map(context => this.checkOne(context))
      );
    } finally {
      this._checking = false;
    }
  }

  /** The contexts of the documents in the main area, one per path. */
  private *openContexts(): Iterable<DocumentRegistry.Context> {
    const seen = new Set<string>();
    for (const widget of this.openWidgets()) {
      const context = this.manager.contextForWidget(widget);
      if (context && context.isReady && !seen.has(context.path)) {
        seen.add(context.path);
        yield context;
      }
    }
  }

  private async checkOne(context: DocumentRegistry.Context): Promise<void> {
    const path = context.path;
    const loaded = this.drive.versionOf(path);
    if (loaded === undefined) {
      return; // a storage without versions, or a document this drive did not load
    }
    let stored: ISwanModel;
    try {
      stored = await this.drive.get(path, { content: false });
    } catch {
      return; // gone or unreachable: the next save says so, with its own dialog
    }
    const now = stored.etag;
    const shown = this._shown.get(path);
    // read again: the document may have been saved or reloaded during the request
    if (!now || now === this.drive.versionOf(path)) {
      if (shown) {
        Notification.dismiss(shown.id);
        this._shown.delete(path);
      }
      return;
    }
    if (shown?.etag === now) {
      return; // already said for this version
    }
    if (shown) {
      Notification.dismiss(shown.id);
    }
    this._shown.set(path, { etag: now, id: this.notify(context) });
  }

  /** Show the notice for `context`, which stays until acted on or dismissed. */
  private notify(context: DocumentRegistry.Context): string {
    const trans = this.trans;
    const name = context.path.split('/').pop() ?? context.path;
    const message = context.model.dirty
      ? trans.__(
          'A newer version of %1 is available. You have unsaved edits in this tab: Reload would replace them.',
          name
        )
      : trans.__('A newer version of %1 is available.', name);
    return Notification.info(message, {
      autoClose: false,
      data: { path: context.path },
      actions: [
        {
          label: trans.__('Reload'),
          caption: trans.__('Show the stored version in this tab'),
          displayType: 'accent',
          callback: () => void this.reload(context)
        }
      ]
    });
  }

  /** Load the stored version, after asking when that would replace unsaved edits. */
  private async reload(context: DocumentRegistry.Context): Promise<void> {
    if (context.isDisposed) {
      return;
    }
    if (context.model.dirty) {
      // kept edits: this version is not announced again, the next save asks what to do
      const answer = await showDialog({
        title: this.trans.__('Replace your unsaved edits?'),
        body: this.trans.__(
          'Reloading shows the newer version of %1 and drops the edits you have not saved. To keep them, cancel and save a copy first (File → Save As…).',
          context.path
        ),
        buttons: [
          Dialog.cancelButton({ label: this.trans.__('Keep my edits') }),
          Dialog.warnButton({ label: this.trans.__('Reload and drop them') })
        ]
      });
      if (!answer.button.accept || context.isDisposed) {
        return;
      }
    }
    this._shown.delete(context.path);
    await context.revert();
  }

  private _checking = false;
  /** The notice shown per path, and for which stored version. */
  private readonly _shown = new Map<string, { etag: string; id: string }>();
}
