import { Widget } from '@lumino/widgets';

import { element, OpenInMain, PollingModel, SidebarPanel } from './base';
import { CompareView } from './compare';
import { requestAPI } from './request';

interface IVersionSummary {
  version: number;
  stage: string;
  run_id: string;
  created_by: string;
}

interface IModelSummary {
  name: string;
  production_version: number | null;
  aliases: Record<string, number>;
  versions: IVersionSummary[];
}

interface IVersion extends IVersionSummary {
  created_at: number;
  flavor: string;
  max_difference: number | null;
  metrics: Record<string, number | null>;
}

interface IApproval {
  id: string;
  version: number;
  stage: string;
  requested_by: string;
  status: string;
  comment: string | null;
  votes: { user: string; decision: string; comment: string | null }[];
}

interface IEvent {
  kind: string;
  user: string;
  time: number;
  payload: Record<string, unknown>;
}

interface IModelDetail {
  model: { name: string; production_version: number | null; required_approvals_effective: number };
  versions: IVersion[];
  aliases: Record<string, number>;
  approvals: IApproval[];
  gates: { version: number; gate: string; passed: boolean; created_at: number }[];
  history: IEvent[];
}

const STAGES = ['None', 'Staging', 'Production', 'Archived'];

function post<T>(path: string, body: object): Promise<T> {
  return requestAPI<T>(path, { method: 'POST', body: JSON.stringify(body) });
}

function badge(stage: string): HTMLElement {
  return element('span', stage, `jp-mlops-badge jp-mlops-stage-${stage.toLowerCase()}`);
}

/** Registered models, polled while the panel is visible. */
export class ModelsModel extends PollingModel<IModelSummary[]> {
  constructor(intervalMs = 5000) {
    super([], intervalMs);
  }

  protected async fetch(): Promise<IModelSummary[]> {
    return (await requestAPI<{ models: IModelSummary[] }>('models')).models;
  }
}

/** One model: versions with stage badges and aliases, gates, approvals, actions and history. */
export class ModelView extends Widget {
  private _status = element('p', '', 'jp-mlops-message');

  constructor(
    readonly name: string,
    private _open: OpenInMain
  ) {
    super();
    this.addClass('jp-mlops-MainView');
    this.addClass('jp-mlops-ModelView');
    this.node.textContent = 'Loading…';
    void this.reload();
  }

  async reload(): Promise<void> {
    try {
      this._render(await requestAPI<IModelDetail>(`models/${encodeURIComponent(this.name)}`));
    } catch (error) {
      this.node.textContent = `Could not load ${this.name}: ${(error as Error).message}`;
    }
  }

  /** Run an action; show its error in place, or reload to show its effect. */
  private async _act(action: () => Promise<unknown>, done: string): Promise<void> {
    try {
      await action();
      await this.reload();
      this._status.textContent = done;
      this._status.classList.remove('jp-mlops-error');
    } catch (error) {
      this._status.textContent = (error as Error).message;
      this._status.classList.add('jp-mlops-error');
    }
  }

  private _render(detail: IModelDetail): void {
    const name = encodeURIComponent(this.name);
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
        this._open(new CompareView([version.run_id]), `mlops-run-${version.run_id}`, `Run ${version.run_id.slice(0, 8)}`);
      });
      run.appendChild(link);
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
          () => post(`models/${name}/versions/${version.version}/stage`, { stage: stage.value, comment: comment.value || null }),
          `Version ${version.version} moved to ${stage.value}.`
        )
      );
      const ask = element('button', 'Request approval', 'jp-mlops-request');
      ask.addEventListener('click', () =>
        this._act(
          () => post(`models/${name}/versions/${version.version}/approvals`, { comment: comment.value || null }),
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
        for (const decision of ['approve', 'reject']) {
          const button = element('button', decision === 'approve' ? 'Approve' : 'Reject', `jp-mlops-${decision}`);
          button.addEventListener('click', () =>
            this._act(() => post(`approvals/${approval.id}`, { decision }), `Request ${decision}d.`)
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
      const what = [p.version !== undefined ? `v${p.version}` : '', p.alias ? `alias ${p.alias}` : '', change]
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

/** The sidebar list of registered models; a click opens one. */
export class ModelsPanel extends SidebarPanel<ModelsModel> {
  constructor(
    model: ModelsModel,
    private _open: OpenInMain
  ) {
    super(model, 'Models', 'jp-mlops-models-list');
    this.addClass('jp-mlops-ModelsPanel');
  }

  protected render(): void {
    const models = this.model.data;
    const error = this.model.error;
    this.showMessage(error ?? (models.length === 0 ? 'No registered models yet: ml.register("name", run_id).' : ''), error !== null);
    const head = element('tr');
    for (const title of ['Model', 'Production', 'Versions']) {
      head.appendChild(element('th', title));
    }
    const rows = models.map(model => {
      const row = element('tr');
      row.dataset.model = model.name;
      const stages = element('td');
      for (const version of model.versions.slice(-6)) {
        stages.appendChild(badge(String(version.version))).classList.add(`jp-mlops-stage-${version.stage.toLowerCase()}`);
      }
      row.append(element('td', model.name), element('td', model.production_version ? `v${model.production_version}` : '—'), stages);
      row.addEventListener('click', () => this._open(new ModelView(model.name, this._open), `mlops-model-${model.name}`, `Model: ${model.name}`));
      return row;
    });
    this.table.replaceChildren(head, ...rows);
  }
}
