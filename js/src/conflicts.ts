/**
 * The conflict dialog: what the person sees when a save finds that the stored file was changed
 * elsewhere (a sync client, the web drive, another tab), and how the open documents follow the
 * choice. Neither side is ever dropped without the person choosing it; the drive does the saving.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { Widget } from '@lumino/widgets';

import { OpenDocuments } from './documents';
import { h } from './dom';
import { ConflictChoice, IConflict, IConflictResolver } from './drive';

/** Button labels, also what the browser tests click. */
export const KEEP_BOTH = 'Keep both (save mine as a conflict copy)';
export const OVERWRITE = 'Overwrite with mine';
export const RELOAD = 'Reload theirs';
export const SAVE_AGAIN = 'Save mine again';

export class ConflictDialogs implements IConflictResolver {
  constructor(private readonly documents: OpenDocuments) {}

  async choose(conflict: IConflict): Promise<ConflictChoice> {
    const name = PathExt.basename(conflict.path);
    const result =
      conflict.theirs === null
        ? await showDialog({
            title: `“${name}” was deleted or moved elsewhere`,
            body: deletedBody(conflict.path),
            buttons: [
              Dialog.cancelButton(),
              Dialog.okButton({ label: SAVE_AGAIN, actions: ['overwrite'] })
            ],
            hasClose: false
          })
        : await showDialog({
            title: `“${name}” was changed elsewhere`,
            body: changedBody(conflict),
            buttons: [
              Dialog.cancelButton(),
              Dialog.warnButton({ label: RELOAD, actions: ['reload'] }),
              Dialog.warnButton({ label: OVERWRITE, actions: ['overwrite'] }),
              Dialog.okButton({ label: KEEP_BOTH, actions: ['copy'] })
            ],
            defaultButton: 3,
            hasClose: false
          });
    for (const choice of ['copy', 'overwrite', 'reload'] as const) {
      if (result.button.actions.includes(choice)) {
        return choice;
      }
    }
    return 'cancel';
  }

  reload(path: string): Promise<void> {
    return this.documents.reload(path);
  }

  show(path: string): Promise<void> {
    return this.documents.show(path);
  }
}

function changedBody(conflict: IConflict): Widget {
  const when = conflict.theirs?.last_modified
    ? new Date(conflict.theirs.last_modified).toLocaleString()
    : 'meanwhile';
  const body = new Widget({
    node: h(
      'div',
      { class: 'swan-Conflict' },
      h(
        'p',
        {},
        `/${conflict.path} was saved by someone or something else (a sync client, the web ` +
          `drive, another tab) at ${when}, after you opened it here. Your changes are not ` +
          'saved yet, and the stored file has not been touched.'
      ),
      h(
        'dl',
        {},
        h('dt', {}, KEEP_BOTH),
        h(
          'dd',
          {},
          'Your version is saved beside it as a conflict copy and opens in a new tab; this ' +
            'tab then shows theirs. Nothing is lost.'
        ),
        h('dt', {}, OVERWRITE),
        h(
          'dd',
          {},
          'Your version replaces theirs. Their changes are gone unless your storage keeps ' +
            'versions (see Versions…).'
        ),
        h('dt', {}, RELOAD),
        h(
          'dd',
          {},
          'This tab shows theirs; your unsaved changes here are dropped.'
        )
      )
    )
  });
  return body;
}

function deletedBody(path: string): Widget {
  return new Widget({
    node: h(
      'div',
      { class: 'swan-Conflict' },
      h(
        'p',
        {},
        `/${path} was deleted or moved by someone or something else after you opened it ` +
          'here. Your changes are not saved yet.'
      ),
      h(
        'p',
        {},
        `${SAVE_AGAIN} creates the file again with your version; Cancel leaves it as it is ` +
          '(look for it in the Trash, or use Save As).'
      )
    )
  });
}
