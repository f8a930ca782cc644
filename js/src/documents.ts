/**
 * The documents open in the application, as the SWAN features need them: is one unsaved, load
 * the stored content or a merge into it, open a file, which file a widget shows. It only asks
 * JupyterLab's document manager; it keeps no state of its own.
 */
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { ReadonlyPartialJSONValue } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

export class OpenDocuments {
  constructor(private readonly manager: IDocumentManager) {}

  /** Whether a document open at `path` has unsaved changes. */
  isDirty(path: string): boolean {
    return this.context(path)?.model.dirty ?? false;
  }

  /** Load the stored content into the document open at `path`, if one is. */
  async reload(path: string): Promise<void> {
    await this.context(path)?.revert();
  }

  /** Put `content` into the document open at `path`, if one is, as an unsaved change. */
  load(path: string, content: Record<string, unknown>): void {
    const model = this.context(path)?.model;
    if (model) {
      model.fromJSON(content as ReadonlyPartialJSONValue);
      model.dirty = true;
    }
  }

  /** Open `path` in its default editor, or bring its tab forward. */
  async show(path: string): Promise<void> {
    this.manager.openOrReveal(path);
  }

  /** The path of the document `widget` shows, if it shows one. */
  pathOf(widget: Widget | null): string | undefined {
    return widget ? this.manager.contextForWidget(widget)?.path : undefined;
  }

  private context(path: string): DocumentRegistry.Context | undefined {
    const widget = this.manager.findWidget(path, null);
    return widget ? this.manager.contextForWidget(widget) : undefined;
  }
}
