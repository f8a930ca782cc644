/**
 * A notebook-aware comparison (POST /swan/api/diff, nbdime's diff read cell by cell): cells
 * added, removed and changed, a changed cell's source line by line, and whether its outputs
 * changed. It only shows; it saves and restores nothing.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import {
  IDiffCell,
  IDiffRequest,
  INotebookDiff,
  jsonBody,
  swanAPI
} from './api';
import { h, StatusLine } from './dom';

/** What the two sides are called, e.g. "current file" and "version of 4 Dec, 10:32". */
export interface IDiffSides {
  left: string;
  right: string;
}

/** The comparison's place in a dialog: hidden until `compare` is called. */
export class NotebookDiffView {
  readonly node: HTMLElement;

  constructor(private readonly trans: TranslationBundle) {
    this.node = h(
      'section',
      { class: 'swan-Diff', hidden: true },
      this.heading,
      this.status.node,
      this.cells
    );
  }

  /** Ask the server for the diff of `request` and show it; a refusal shows its sentence. */
  async compare(request: IDiffRequest, sides: IDiffSides): Promise<void> {
    const trans = this.trans;
    this.node.hidden = false;
    this.cells.replaceChildren();
    this.heading.replaceChildren(
      h('span', { class: 'swan-Diff-removed' }, `− ${sides.left}`),
      ' ',
      h('span', { class: 'swan-Diff-added' }, `+ ${sides.right}`)
    );
    this.status.say(trans.__('Comparing…'));
    try {
      const answer = await swanAPI<INotebookDiff>(
        trans,
        'diff',
        jsonBody<IDiffRequest>('POST', request)
      );
      this.render(answer);
    } catch (error) {
      this.status.say(error, true);
    }
  }

  private render(answer: INotebookDiff): void {
    const trans = this.trans;
    const changes = answer.cells.filter(c => c.status !== 'unchanged').length;
    this.status.say(
      changes === 0
        ? answer.metadata_changed
          ? trans.__(
              'The cells are the same; only the notebook metadata differs.'
            )
          : trans.__('The two notebooks have the same cells.')
        : trans._n('%1 cell differs.', '%1 cells differ.', changes)
    );
    let unchanged = 0;
    const flush = () => {
      if (unchanged > 0) {
        this.cells.append(
          h(
            'li',
            { class: 'swan-Diff-cell swan-Diff-same' },
            trans._n('%1 unchanged cell', '%1 unchanged cells', unchanged)
          )
        );
      }
      unchanged = 0;
    };
    for (const cell of answer.cells) {
      if (cell.status === 'unchanged') {
        unchanged += 1;
        continue;
      }
      flush();
      this.cells.append(this.renderCell(cell));
    }
    flush();
  }

  private renderCell(cell: IDiffCell): HTMLElement {
    const trans = this.trans;
    const what: Record<IDiffCell['status'], string> = {
      added: trans.__('%1 cell only on the + side', cell.cell_type),
      removed: trans.__('%1 cell only on the − side', cell.cell_type),
      changed: trans.__('%1 cell changed', cell.cell_type),
      unchanged: ''
    };
    const notes = [
      cell.outputs_changed ? trans.__('outputs changed') : '',
      cell.metadata_changed ? trans.__('metadata changed') : ''
    ].filter(Boolean);
    const lines = h('pre', { class: 'swan-Diff-source' });
    for (const [mark, text] of cell.lines) {
      const kind =
        mark === '+'
          ? 'swan-Diff-added'
          : mark === '-'
            ? 'swan-Diff-removed'
            : 'swan-Diff-kept';
      const sign = mark === '-' ? '−' : mark;
      lines.append(
        h('div', { class: `swan-Diff-line ${kind}` }, `${sign} ${text}`)
      );
    }
    return h(
      'li',
      {
        class: `swan-Diff-cell swan-Diff-${cell.status}`,
        'data-status': cell.status
      },
      h(
        'div',
        { class: 'swan-Diff-what' },
        [what[cell.status], ...notes].join(' · ')
      ),
      lines
    );
  }

  private readonly heading = h('p', { class: 'swan-Diff-sides' });
  private readonly cells = h('ul', { class: 'swan-Diff-cells' });
  private readonly status = new StatusLine('swan-Dialog-status');
}
