/**
 * "Invite someone of another site…": asks the server for a new invite (POST /swan/api/invites,
 * made by the storage) and shows what to send to the person: the link, or the token and this
 * site's address to type at their own site, each copyable, and how long it is valid. Accepted,
 * each of the two is the other's contact, offered in the share dialog.
 */
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IInvite, swanAPI } from './api';
import { copyField, h, StatusLine } from './dom';

/** Make an invite and show it; a refusal is shown with the storage's words. */
export async function openInviteDialog(
  trans: TranslationBundle
): Promise<void> {
  let invite: IInvite;
  try {
    invite = await swanAPI<IInvite>(trans, 'invites', { method: 'POST' });
  } catch (error) {
    await showErrorMessage(trans.__('No invite was made'), error as Error);
    return;
  }
  await showDialog({
    title: trans.__('Invite someone of another site'),
    body: new InviteBody(invite, trans),
    buttons: [Dialog.okButton({ label: trans.__('Done') })],
    hasClose: true
  });
}

export class InviteBody extends Widget {
  constructor(invite: IInvite, trans: TranslationBundle) {
    super();
    this.addClass('swan-Invite');
    const until = new Date(invite.expiration);
    const days = Math.round((until.getTime() - Date.now()) / 86_400_000);
    const status = new StatusLine('swan-Dialog-status');
    this.node.append(
      h(
        'p',
        {},
        invite.link
          ? trans.__(
              "Send this link to one person of another trusted site, by mail or chat. Whoever opens it picks their own site and accepts there; then each of you is the other's contact, and you can share with each other by name."
            )
          : trans.__(
              "Send the token and your site to one person of another trusted site, by mail or chat: they accept at their own site, and then each of you is the other's contact."
            )
      ),
      ...(invite.link
        ? [
            copyField(
              trans.__('Link'),
              'swan-Invite-link',
              invite.link,
              status,
              trans
            )
          ]
        : []),
      copyField(
        trans.__('Token'),
        'swan-Invite-token',
        invite.token,
        status,
        trans
      ),
      copyField(
        trans.__('Your site'),
        'swan-Invite-site',
        invite.provider,
        status,
        trans
      ),
      h(
        'p',
        { class: 'swan-Invite-valid' },
        trans._n(
          'Valid for %1 day, until %2, for one person, once.',
          'Valid for %1 days, until %2, for one person, once.',
          days,
          until.toLocaleString()
        )
      ),
      status.node
    );
  }
}
