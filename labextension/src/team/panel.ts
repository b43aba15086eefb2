import { createToken, ITeam, ITeamPermission, revokeToken, setPermission } from '../api';
import { element, SidebarPanel } from '../base';
import { TeamModel } from './model';

const LEVELS = ['READ', 'EDIT', 'MANAGE', 'NONE'];

function when(ms: number | null): string {
  return ms === null ? '' : new Date(ms).toLocaleDateString();
}

function labelled<E extends HTMLElement>(label: string, input: E): E {
  input.setAttribute('aria-label', label);
  return input;
}

/** The Team section: who one is on the team server, one's tokens, who may do what, the team's users. */
export class TeamPanel extends SidebarPanel<TeamModel> {
  private _content = element('div', '', 'jp-mlops-team');
  private _created = element('div', '', 'jp-mlops-team-created');
  private _shown: string | null = null;

  constructor(model: TeamModel) {
    super(model, 'Team', 'jp-mlops-team-table');
    this.addClass('jp-mlops-TeamPanel');
    this.table.replaceWith(this._content); // sections of their own in the panel's scrolling area
  }

  protected render(): void {
    const team = this.model.data;
    this.showMessage(this.model.error ?? '', this.model.error !== null);
    if (team === null || this.model.error !== null) {
      return;
    }
    const shown = JSON.stringify(team);
    if (shown === this._shown) {
      return; // unchanged: forms keep what is typed in them
    }
    this._shown = shown;
    if (team.server === null) {
      this._content.replaceChildren(
        element(
          'p',
          'This lab keeps its runs in its own store. A team server adds people, tokens and permissions: see docs/teams.md (MLOPS_LAB_TRACKING_URI).',
          'jp-mlops-message'
        )
      );
      return;
    }
    const who = team.whoami!;
    this._content.replaceChildren(
      element('p', `${who.user}${who.admin ? ' (admin)' : ''} on ${team.server}`, 'jp-mlops-team-who'),
      element('h3', 'Your tokens'),
      this._tokens(team),
      this._tokenForm(),
      this._created,
      element('h3', 'Permissions'),
      this._permissions(team),
      this._grantForm(),
      ...(team.users ? [element('h3', 'Users'), this._users(team)] : [])
    );
  }

  private _tokens(team: ITeam): HTMLElement {
    const table = element('table', '', 'jp-mlops-table jp-mlops-team-tokens');
    const head = element('tr');
    ['Token', 'Expires', ''].forEach(title => head.appendChild(element('th', title)));
    table.appendChild(head);
    for (const token of team.tokens ?? []) {
      const row = element('tr');
      row.dataset.token = token.id;
      const name = element('td', token.id, 'jp-mlops-team-token');
      if (token.note) {
        name.appendChild(element('div', token.note, 'jp-mlops-owner'));
      }
      const action = element('td');
      if (token.revoked_at === null) {
        const revoke = element('button', 'Revoke', 'jp-mlops-button jp-mod-styled');
        revoke.addEventListener('click', () => void this._act(() => revokeToken(token.id), `Revoked ${token.id}.`));
        action.appendChild(revoke);
      } else {
        action.textContent = 'revoked';
      }
      row.append(name, element('td', when(token.expires_at)), action);
      table.appendChild(row);
    }
    return table;
  }

  private _tokenForm(): HTMLElement {
    const form = element('div', '', 'jp-mlops-team-form');
    const note = labelled('Token note', element('input'));
    note.placeholder = 'what for (a laptop, CI)';
    const days = labelled('Expires in days', element('input'));
    days.type = 'number';
    days.min = '1';
    days.placeholder = 'days';
    const create = element('button', 'New token', 'jp-mlops-button jp-mod-styled');
    create.addEventListener('click', async () => {
      try {
        const made = await createToken(note.value, days.value ? Number(days.value) : null);
        const secret = labelled('New token', element('input'));
        secret.readOnly = true;
        secret.value = made.token;
        this._created.replaceChildren(element('div', 'Shown once: copy it now (MLOPS_LAB_TOKEN).'), secret);
        await this.model.refresh();
      } catch (error) {
        this._created.replaceChildren(element('p', (error as Error).message, 'jp-mlops-message jp-mlops-error'));
      }
    });
    form.append(note, days, create);
    return form;
  }

  private _permissions(team: ITeam): HTMLElement {
    const table = element('table', '', 'jp-mlops-table jp-mlops-team-permissions');
    const head = element('tr');
    ['On', 'Who', 'Level'].forEach(title => head.appendChild(element('th', title)));
    table.appendChild(head);
    for (const grant of team.permissions ?? []) {
      const row = element('tr');
      row.append(
        element('td', `${grant.kind} ${grant.name}`),
        element('td', grant.grantee),
        element('td', grant.level)
      );
      table.appendChild(row);
    }
    return table;
  }

  private _grantForm(): HTMLElement {
    const form = element('div', '', 'jp-mlops-team-form');
    const kind = labelled('Grant on', element('select'));
    ['experiment', 'model'].forEach(k => (kind.appendChild(element('option', k)).value = k));
    const name = labelled('Experiment or model', element('input'));
    name.placeholder = 'name';
    const grantee = labelled('Grantee', element('input'));
    grantee.placeholder = 'user or group:name';
    const level = labelled('Level', element('select'));
    LEVELS.forEach(l => (level.appendChild(element('option', l)).value = l));
    const grant = element('button', 'Grant', 'jp-mlops-button jp-mod-styled');
    grant.addEventListener('click', () => {
      const change: ITeamPermission = {
        kind: kind.value as 'experiment' | 'model',
        name: name.value,
        grantee: grantee.value,
        level: level.value
      };
      void this._act(
        () => setPermission(change),
        `${change.grantee}: ${change.level} on ${change.kind} ${change.name}.`
      );
    });
    form.append(kind, name, grantee, level, grant);
    return form;
  }

  private _users(team: ITeam): HTMLElement {
    const list = element('ul', '', 'jp-mlops-team-users');
    for (const user of team.users ?? []) {
      list.appendChild(element('li', `${user.name}${user.is_admin ? ' (admin)' : ''}`));
    }
    return list;
  }

  private async _act(action: () => Promise<unknown>, done: string): Promise<void> {
    try {
      await action();
      this._created.replaceChildren(element('p', done, 'jp-mlops-message'));
      await this.model.refresh();
    } catch (error) {
      this._created.replaceChildren(element('p', (error as Error).message, 'jp-mlops-message jp-mlops-error'));
    }
  }
}
