/**
 * The conflict dialog: what the person sees when a save finds that the stored file was changed
 * elsewhere (a sync client, the web drive, another tab), and how the open documents follow the
 * choice, and the readable result of a three-way merge. Neither side is ever dropped without the
 * person choosing it; the drive does the saving.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import {
  IMergeCell,
  IMergeRequest,
  INotebookMerge,
  jsonBody,
  swanAPI
} from './api';
import { OpenDocuments } from './documents';
import { h, StatusLine } from './dom';
import { ConflictChoice, IConflict, IConflictResolver } from './drive';
import { NotebookDiffView } from './notebookDiff';

/** The labels of the choices, the buttons the browser tests click. */
interface IChoiceLabels {
  keepBoth: string;
  overwrite: string;
  reload: string;
  merge: string;
  saveAgain: string;
}

function choiceLabels(trans: TranslationBundle): IChoiceLabels {
  return {
    keepBoth: trans.__('Keep both (save mine as a conflict copy)'),
    overwrite: trans.__('Overwrite with mine'),
    reload: trans.__('Reload theirs'),
    merge: trans.__('Merge'),
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
    const changedButtons = [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.warnButton({ label: labels.reload, actions: ['reload'] }),
      Dialog.warnButton({ label: labels.overwrite, actions: ['overwrite'] }),
      ...(canMerge(conflict)
        ? [Dialog.okButton({ label: labels.merge, actions: ['merge'] })]
        : []),
      Dialog.okButton({ label: labels.keepBoth, actions: ['copy'] })
    ];
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
            buttons: changedButtons,
            defaultButton: changedButtons.length - 1,
            hasClose: false
          });
    for (const choice of ['copy', 'overwrite', 'reload', 'merge'] as const) {
      if (result.button.actions.includes(choice)) {
        return choice;
      }
    }
    return 'cancel';
  }

  async merge(conflict: IConflict): Promise<INotebookMerge | null> {
    const trans = this.trans;
    if (!conflict.base || !conflict.mine) {
      return null;
    }
    let merge: INotebookMerge | null = null;
    const status = new StatusLine('swan-Dialog-status');
    try {
      merge = await swanAPI<INotebookMerge>(
        trans,
        'merge',
        jsonBody<IMergeRequest>('POST', {
          path: conflict.path,
          base: conflict.base,
          mine: conflict.mine
        })
      );
    } catch (error) {
      status.say(error, true);
    }
    const result = await showDialog({
      title: trans.__(
        'Merge your changes with theirs in “%1”',
        PathExt.basename(conflict.path)
      ),
      body: new Widget({
        node: merge ? mergeSummary(merge, trans) : h('div', {}, status.node)
      }),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Back') }),
        ...(merge === null
          ? []
          : [
              Dialog.okButton({
                label:
                  merge.conflicts > 0
                    ? trans.__('Open the merge to resolve')
                    : trans.__('Save the merge'),
                actions: ['merge']
              })
            ])
      ],
      hasClose: false
    });
    return result.button.actions.includes('merge') ? merge : null;
  }

  load(path: string, content: Record<string, unknown>): void {
    this.documents.load(path, content);
  }

  async saveUnresolved(path: string): Promise<boolean> {
    const trans = this.trans;
    const result = await showDialog({
      title: trans.__(
        '“%1” still has conflicts to resolve',
        PathExt.basename(path)
      ),
      body: trans.__(
        'Cells of the merge still hold both versions, between “<<<<<<< local” (yours) and “>>>>>>> remote” (theirs) lines. Keep what you want and remove the markers before you save, or save the notebook as it is: nothing is lost either way.'
      ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Not yet') }),
        Dialog.warnButton({
          label: trans.__('Save with the markers'),
          actions: ['save']
        })
      ],
      hasClose: false
    });
    return result.button.actions.includes('save');
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
        ...(canMerge(conflict)
          ? [
              h('dt', {}, labels.merge),
              h(
                'dd',
                {},
                trans.__(
                  'Your changes and theirs are combined, from the version you opened or last saved: you see what comes from each side before it is saved. Where both changed the same cell, it is marked for you to resolve.'
                )
              )
            ]
          : []),
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

/** Whether a merge can be offered: a notebook whose starting point this tab still knows. */
function canMerge(conflict: IConflict): boolean {
  return (
    conflict.theirs !== null &&
    conflict.mine !== undefined &&
    conflict.base !== undefined
  );
}

/** Cell numbers as a person reads them: "cells 1, 4" or "the notebook's metadata". */
function cellNames(cells: IMergeCell[], trans: TranslationBundle): string {
  const numbers = cells.filter(c => c.cell !== null).map(c => String(c.cell));
  const names = numbers.length
    ? [trans._n('cell %2', 'cells %2', numbers.length, numbers.join(', '))]
    : [];
  if (cells.some(c => c.cell === null)) {
    names.push(trans.__("the notebook's metadata"));
  }
  return names.join(trans.__(' and '));
}

/** What a merge takes from each side and what conflicts, before the person accepts it. */
function mergeSummary(
  merge: INotebookMerge,
  trans: TranslationBundle
): HTMLElement {
  const groups: [string, IMergeCell[]][] = [
    [
      trans.__('Your changes'),
      merge.cells.filter(c => !c.conflict && c.by === 'mine')
    ],
    [
      trans.__('Their changes'),
      merge.cells.filter(c => !c.conflict && c.by === 'theirs')
    ],
    [
      trans.__('Made the same way on both sides'),
      merge.cells.filter(c => !c.conflict && c.by === 'both')
    ],
    [trans.__('Conflicts'), merge.cells.filter(c => c.conflict)]
  ];
  const list = h('ul', { class: 'swan-Merge-summary' });
  for (const [what, cells] of groups) {
    if (cells.length > 0) {
      list.append(
        h(
          'li',
          { 'data-count': String(cells.length) },
          `${what}: ${cellNames(cells, trans)}`
        )
      );
    }
  }
  const outcome =
    merge.conflicts > 0
      ? trans._n(
          'Both sides changed %1 place differently. The merge opens in this tab, not saved: the marked cells hold both versions, yours between “<<<<<<< local” and “=======”, theirs between “=======” and “>>>>>>> remote”. Keep what you want, remove the markers, then save.',
          'Both sides changed %1 places differently. The merge opens in this tab, not saved: the marked cells hold both versions, yours between “<<<<<<< local” and “=======”, theirs between “=======” and “>>>>>>> remote”. Keep what you want, remove the markers, then save.',
          merge.conflicts
        )
      : trans.__(
          'No conflicts: saving stores the merge in place of theirs, with your changes and theirs. If the file changes once more meanwhile, you are asked again.'
        );
  return h(
    'div',
    { class: 'swan-Conflict swan-Merge' },
    merge.cells.length > 0
      ? list
      : h('p', {}, trans.__('Neither side changed anything.')),
    h('p', { class: 'swan-Merge-outcome' }, outcome)
  );
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
