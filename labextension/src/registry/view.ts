import { CommandRegistry } from '@lumino/commands';

import { IModelDetail } from '../api';
import { element, MainView } from '../base';
import { CommandIDs } from '../tokens';
import { ModelModel } from './model';

const STAGES = ['None', 'Staging', 'Production', 'Archived'];

/** A stage (or a version number coloured by its stage). */
export function badge(stage: string): HTMLElement {
  return element('span', stage, `jp-mlops-badge jp-mlops-stage-${stage.toLowerCase()}`);
}

/** One model: versions with stage badges and aliases, gates, approvals, actions and history. */
export class ModelView extends MainView<ModelModel> {
  private _status = element('p', '', 'jp-mlops-message');
  private _shown = ''; // what is drawn, as JSON

  constructor(
    model: ModelModel,
    private _commands: CommandRegistry
  ) {
    super(model, 'jp-mlops-ModelView');
  }

  protected render(): void {
    const detail = this.model.data;
    if (detail === null) {
      this.node.textContent = `Could not load ${this.model.name}: ${this.model.error}`;
    } else if (JSON.stringify(detail) !== this._shown) {
      this._shown = JSON.stringify(detail); // a poll that finds nothing new leaves the forms as they are
      this._render(detail);
    }
  }

  /** Run an action; show its error in place (the model refreshes to show its effect). */
  private async _act(action: () => Promise<unknown>, done: string): Promise<void> {
    try {
      await action();
      this._status.textContent = done;
      this._status.classList.remove('jp-mlops-error');
    } catch (error) {
      this._status.textContent = (error as Error).message;
      this._status.classList.add('jp-mlops-error');
    }
  }

  private _render(detail: IModelDetail): void {
    const aliasesOf = (version: number) =>
      Object.entries(detail.aliases)
        .filter(([, v]) => v === version)
        .map(([alias]) => alias);
    const table = element('table', '', 'jp-mlops-table jp-mlops-versions');
    const head = element('tr');
    for (const title of ['Version', 'Stage', 'Aliases', 'Metrics', 'Gates', 'Run', 'By', 'Move to']) {
      head.appendChild(element('th', title));
    }
    table.appendChild(head);
    for (const version of [...detail.versions].reverse()) {
      const row = element('tr');
      row.dataset.version = String(version.version);
      const stageCell = element('td');
      stageCell.appendChild(badge(version.stage));
      const metrics = Object.entries(version.metrics)
        .map(([key, value]) => `${key} ${value === null ? 'NaN' : Number(value.toPrecision(4))}`)
        .join(', ');
      const gates = detail.gates
        .filter(g => g.version === version.version)
        .map(g => `${g.gate} ${g.passed ? '✓' : '✗'}`)
        .join(' ');
      const run = element('td');
      const link = element('a', version.run_id.slice(0, 8), 'jp-mlops-link');
      link.href = '#';
      link.title = 'Open the source run';
      link.addEventListener('click', event => {
        event.preventDefault();
        void this._commands.execute(CommandIDs.openRun, { runId: version.run_id });
      });
      const lineage = element('a', 'lineage', 'jp-mlops-link jp-mlops-lineage-link');
      lineage.href = '#';
      lineage.title = 'The pipeline, steps, data and code that made this version';
      lineage.addEventListener('click', event => {
        event.preventDefault();
        void this._commands.execute(CommandIDs.openLineage, { model: `${detail.model.name}/${version.version}` });
      });
      run.append(link, ' · ', lineage);
      const move = element('td');
      const stage = element('select');
      stage.setAttribute('aria-label', `Stage for version ${version.version}`);
      for (const option of STAGES.filter(s => s !== version.stage)) {
        stage.appendChild(element('option', option)).value = option;
      }
      const comment = element('input', '', 'jp-mlops-comment');
      comment.placeholder = 'why';
      const go = element('button', 'Move', 'jp-mlops-move');
      go.addEventListener('click', () =>
        this._act(
          () => this.model.moveStage(version.version, stage.value, comment.value || null),
          `Version ${version.version} moved to ${stage.value}.`
        )
      );
      const ask = element('button', 'Request approval', 'jp-mlops-request');
      ask.addEventListener('click', () =>
        this._act(
          () => this.model.requestApproval(version.version, comment.value || null),
          `Approval for version ${version.version} requested.`
        )
      );
      move.append(stage, comment, go, ask);
      row.append(
        element('td', String(version.version)),
        stageCell,
        element('td', aliasesOf(version.version).join(', ')),
        element('td', metrics),
        element('td', gates),
        run,
        element('td', version.created_by),
        move
      );
      table.appendChild(row);
    }
    const approvals = element('div', '', 'jp-mlops-approvals');
    for (const approval of [...detail.approvals].reverse()) {
      const line = element('div', '', 'jp-mlops-approval');
      line.dataset.request = approval.id;
      const votes = approval.votes.map(v => `${v.user}: ${v.decision}`).join('; ');
      line.appendChild(
        element(
          'span',
          `Version ${approval.version} → ${approval.stage}, asked by ${approval.requested_by}: ${approval.status}` +
            (votes ? ` (${votes})` : '')
        )
      );
      if (approval.status === 'PENDING') {
        for (const decision of ['approve', 'reject'] as const) {
          const button = element('button', decision === 'approve' ? 'Approve' : 'Reject', `jp-mlops-${decision}`);
          button.addEventListener('click', () =>
            this._act(() => this.model.vote(approval.id, decision), `Request ${decision}d.`)
          );
          line.appendChild(button);
        }
      }
      approvals.appendChild(line);
    }
    const history = element('table', '', 'jp-mlops-table jp-mlops-history');
    for (const event of [...detail.history].reverse()) {
      const p = event.payload;
      const change = p.from !== undefined || p.to !== undefined ? `${p.from ?? ''} → ${p.to ?? ''}` : '';
      const what = [
        p.version !== undefined ? `v${p.version}` : '',
        p.alias ? `alias ${p.alias}` : '',
        p.grantee ? `${p.grantee}:` : '', // a permission's change: whose
        change
      ]
        .filter(Boolean)
        .join(' ');
      const tr = element('tr');
      tr.append(
        element('td', new Date(event.time).toLocaleString()),
        element('td', event.user),
        element('td', event.kind),
        element('td', what),
        element('td', String(p.comment ?? ''))
      );
      history.appendChild(tr);
    }
    const production = detail.model.production_version;
    this.node.replaceChildren(
      element('h2', detail.model.name),
      element(
        'p',
        `Production: ${production ? `version ${production}` : 'none'}. Production needs ` +
          `${detail.model.required_approvals_effective} approval(s) by someone other than the requester.`
      ),
      this._status,
      table,
      element('h3', 'Approvals'),
      approvals.childElementCount ? approvals : element('p', 'No approval requests.', 'jp-mlops-message'),
      element('h3', 'History'),
      history
    );
  }
}
