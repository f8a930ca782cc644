/**
 * The conflict dialog: what the person sees when a save finds that the stored file was changed
 * elsewhere (a sync client, the web drive, another tab), and how the open documents follow the
 * choice. Neither side is ever dropped without the person choosing it; the drive does the saving.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { OpenDocuments } from './documents';
import { h } from './dom';
import { ConflictChoice, IConflict, IConflictResolver } from './drive';
import { NotebookDiffView } from './notebookDiff';

/** The labels of the choices, the buttons the browser tests click. */
interface IChoiceLabels {
  keepBoth: string;
  overwrite: string;
  reload: string;
  saveAgain: string;
}

function choiceLabels(trans: TranslationBundle): IChoiceLabels {
  return {
    keepBoth: trans.__('Keep both (save mine as a conflict copy)'),
    overwrite: trans.__('Overwrite with mine'),
    reload: trans.__('Reload theirs'),
    saveAgain: trans.__('Save mine again')
  };
}

export class ConflictDialogs implements IConflictResolver {
  constructor(
    private readonly documents: OpenDocuments,
    private readonly trans: TranslationBundle
  ) {}

  async choose(conflict: IConflict): Promise<ConflictChoice> {
    const trans = this.trans;
    const labels = choiceLabels(trans);
    const name = PathExt.basename(conflict.path);
    const result =
      conflict.theirs === null
        ? await showDialog({
            title: trans.__('“%1” was deleted or moved elsewhere', name),
            body: deletedBody(conflict.path, labels, trans),
            buttons: [
              Dialog.cancelButton({ label: trans.__('Cancel') }),
              Dialog.okButton({
                label: labels.saveAgain,
                actions: ['overwrite']
              })
            ],
            hasClose: false
          })
        : await showDialog({
            title: trans.__('“%1” was changed elsewhere', name),
            body: changedBody(conflict, labels, trans),
            buttons: [
              Dialog.cancelButton({ label: trans.__('Cancel') }),
              Dialog.warnButton({ label: labels.reload, actions: ['reload'] }),
              Dialog.warnButton({
                label: labels.overwrite,
                actions: ['overwrite']
              }),
              Dialog.okButton({ label: labels.keepBoth, actions: ['copy'] })
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

function changedBody(
  conflict: IConflict,
  labels: IChoiceLabels,
  trans: TranslationBundle
): Widget {
  const when = conflict.theirs?.last_modified
    ? new Date(conflict.theirs.last_modified).toLocaleString()
    : trans.__('meanwhile');
  const body = new Widget({
    node: h(
      'div',
      { class: 'swan-Conflict' },
      h(
        'p',
        {},
        trans.__(
          '/%1 was saved by someone or something else (a sync client, the web drive, another tab) at %2, after you opened it here. Your changes are not saved yet, and the stored file has not been touched.',
          conflict.path,
          when
        )
      ),
      compareMine(conflict, trans),
      h(
        'dl',
        {},
        h('dt', {}, labels.keepBoth),
        h(
          'dd',
          {},
          trans.__(
            'Your version is saved beside it as a conflict copy and opens in a new tab; this tab then shows theirs. Nothing is lost.'
          )
        ),
        h('dt', {}, labels.overwrite),
        h(
          'dd',
          {},
          trans.__(
            'Your version replaces theirs. Their changes are gone unless your storage keeps versions (see Versions…).'
          )
        ),
        h('dt', {}, labels.reload),
        h(
          'dd',
          {},
          trans.__(
            'This tab shows theirs; your unsaved changes here are dropped.'
          )
        )
      )
    )
  });
  return body;
}

/** A "Compare" button and the comparison of theirs (stored) with mine, for a notebook. */
function compareMine(
  conflict: IConflict,
  trans: TranslationBundle
): HTMLElement | null {
  const mine = conflict.mine;
  if (!mine || !conflict.path.endsWith('.ipynb')) {
    return null;
  }
  const view = new NotebookDiffView(trans);
  const button = h(
    'button',
    { class: 'jp-mod-styled swan-Conflict-compare', type: 'button' },
    trans.__('Compare theirs with mine')
  );
  button.addEventListener('click', () => {
    button.disabled = true;
    void view.compare(
      { path: conflict.path, content: mine },
      { left: trans.__('theirs (stored)'), right: trans.__('mine (not saved)') }
    );
  });
  return h('div', {}, button, view.node);
}

function deletedBody(
  path: string,
  labels: IChoiceLabels,
  trans: TranslationBundle
): Widget {
  return new Widget({
    node: h(
      'div',
      { class: 'swan-Conflict' },
      h(
        'p',
        {},
        trans.__(
          '/%1 was deleted or moved by someone or something else after you opened it here. Your changes are not saved yet.',
          path
        )
      ),
      h(
        'p',
        {},
        trans.__(
          '%1 creates the file again with your version; Cancel leaves it as it is (look for it in the Trash, or use Save As).',
          labels.saveAgain
        )
      )
    )
  });
}
