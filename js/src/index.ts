/**
 * The SWAN suite's JupyterLab 4 / Notebook 7 plugins: the contents drive that saves
 * conditionally and its conflict dialog; the "Share…" command and the "Shared with me" side
 * panel. This module wires commands, menus and
 * widgets into the application; what they do lives in their own modules.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import {
  Contents,
  IDefaultDrive,
  IServerSettings,
  ServerConnection,
  ServiceManagerPlugin
} from '@jupyterlab/services';
import { shareIcon, usersIcon } from '@jupyterlab/ui-components';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { ConflictDialogs } from './conflicts';
import { OpenDocuments } from './documents';
import { SwanDrive } from './drive';
import { openShareDialog } from './shareDialog';
import { SharedWithMePanel } from './sharedWithMe';

const SHARE_COMMAND = 'swan:share';
const PANEL_COMMAND = 'swan:shared-with-me';

/** Adds a Share button to every notebook's toolbar. */
class NotebookShareButton
  implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel>
{
  createNew(panel: NotebookPanel): IDisposable {
    const button = new ToolbarButton({
      className: 'swan-ShareButton',
      icon: shareIcon,
      label: 'Share',
      tooltip: 'Share this notebook',
      onClick: () => void openShareDialog({ path: panel.context.path, itemType: 'file' })
    });
    panel.toolbar.insertAfter('cellType', 'swan-share', button);
    return new DisposableDelegate(() => button.dispose());
  }
}

/**
 * Replaces JupyterLab's default drive (disabled in package.json) with the same REST drive that
 * also sends the stored version with each save.
 */
const drivePlugin: ServiceManagerPlugin<Contents.IDrive> = {
  id: '@swan-suite/labextension:drive',
  description: 'The contents drive that never overwrites a change made elsewhere.',
  autoStart: true,
  provides: IDefaultDrive,
  optional: [IServerSettings],
  activate: (_: null, serverSettings: ServerConnection.ISettings | null) =>
    new SwanDrive({ serverSettings: serverSettings ?? undefined })
};

const conflictsPlugin: JupyterFrontEndPlugin<void> = {
  id: '@swan-suite/labextension:conflicts',
  description: 'Asks what to do when a save finds the file changed elsewhere.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [IDefaultDrive],
  activate: (
    _app: JupyterFrontEnd,
    documentManager: IDocumentManager,
    drive: Contents.IDrive | null
  ) => {
    if (drive instanceof SwanDrive) {
      drive.resolver = new ConflictDialogs(new OpenDocuments(documentManager));
    }
  }
};

const sharingPlugin: JupyterFrontEndPlugin<void> = {
  id: '@swan-suite/labextension:sharing',
  description: 'Share files and folders through the storage, and open what others share.',
  autoStart: true,
  optional: [IDefaultFileBrowser, ICommandPalette, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    fileBrowser: IDefaultFileBrowser | null,
    palette: ICommandPalette | null
  ) => {
    app.commands.addCommand(SHARE_COMMAND, {
      label: 'Share…',
      caption: 'Share with people, groups or by a public link',
      icon: shareIcon,
      isEnabled: () => !!fileBrowser?.selectedItems().next()?.value,
      execute: async args => {
        let path = args.path as string | undefined;
        let itemType = args.itemType as 'file' | 'folder' | undefined;
        if (!path && fileBrowser) {
          const item = fileBrowser.selectedItems().next()?.value;
          if (!item) {
            return;
          }
          path = item.path;
          itemType = item.type === 'directory' ? 'folder' : 'file';
        }
        if (path) {
          await openShareDialog({ path, itemType: itemType ?? 'file' });
        }
      }
    });
    app.contextMenu.addItem({
      command: SHARE_COMMAND,
      selector: '.jp-DirListing-item[data-isdir]',
      rank: 3
    });
    app.docRegistry.addWidgetExtension('Notebook', new NotebookShareButton());

    const panel = new SharedWithMePanel({
      open: async (path, itemType) => {
        if (itemType === 'folder') {
          await app.commands.execute('filebrowser:go-to-path', { path });
          await app.commands.execute('filebrowser:activate', {});
        } else {
          await app.commands.execute('docmanager:open', { path });
        }
      }
    });
    panel.title.icon = usersIcon;
    app.shell.add(panel, 'left', { rank: 200 });

    app.commands.addCommand(PANEL_COMMAND, {
      label: 'Shared with Me',
      caption: 'Show what other people share with you',
      execute: () => {
        app.shell.activateById(panel.id);
        void panel.refresh();
      }
    });
    palette?.addItem({ command: PANEL_COMMAND, category: 'Sharing' });
  }
};

export default [drivePlugin, conflictsPlugin, sharingPlugin];
