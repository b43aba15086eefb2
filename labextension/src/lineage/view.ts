import { CommandRegistry } from '@lumino/commands';

import { IDatasetLineage, ILineageRun, IModelLineage } from '../api';
import { element, MainView, statusBadge } from '../base';
import { CommandIDs } from '../tokens';
import { LineageModel } from './model';

/** Where a model version came from, or what a data version went into: runs, steps, data and code, each a link. */
export class LineageView extends MainView<LineageModel> {
  constructor(
    model: LineageModel,
    private _commands: CommandRegistry
  ) {
    super(model, 'jp-mlops-LineageView');
  }

  protected render(): void {
    const lineage = this.model.data;
    if (this.model.error) {
      this.node.replaceChildren(element('p', this.model.error, 'jp-mlops-message jp-mlops-error'));
      return;
    }
    if (!lineage) {
      return;
    }
    this.node.replaceChildren(
      ...(lineage.kind === 'model' ? this._model(lineage.found) : this._dataset(lineage.found))
    );
  }

  private _model(found: IModelLineage): HTMLElement[] {
    const { model, runs, pipeline, steps } = found;
    const title = element('h2', `Lineage of ${model.name}/${model.version} (${model.stage})`);
    const chain = element('p', '', 'jp-mlops-lineage-chain');
    chain.append('Logged by ');
    runs.forEach((run, i) => {
      if (i) {
        chain.append(' ← ', i === runs.length - 1 && pipeline ? 'pipeline ' : run.step ? 'step ' : 'run ');
      }
      chain.append(this._runLink(run));
    });
    const parts: HTMLElement[] = [title, chain];
    if (pipeline) {
      parts.push(element('h3', `Pipeline ${pipeline.pipeline}: its steps`), this._runsTable(steps, true));
    } else {
      parts.push(element('h3', 'The runs behind it'), this._runsTable(runs, false));
    }
    return parts;
  }

  private _dataset(found: IDatasetLineage): HTMLElement[] {
    const title = element('h2', `Downstream of data version ${found.dataset.slice(0, 12)}`);
    const summary = element(
      'p',
      `${found.runs.length} runs read it or what was made from it` +
        (found.truncated ? ' (the first 2,000; there are more)' : '') +
        `; ${found.model_versions.length} model versions were registered from them.`,
      'jp-mlops-message'
    );
    const versions = element('ul', '', 'jp-mlops-lineage-versions');
    for (const version of found.model_versions) {
      const item = element('li');
      const link = element('a', `${version.name}/${version.version} (${version.stage})`, 'jp-mlops-link');
      link.href = '#';
      link.addEventListener('click', event => {
        event.preventDefault();
        void this._commands.execute(CommandIDs.openModel, { name: version.name });
      });
      item.appendChild(link);
      versions.appendChild(item);
    }
    return [
      title,
      summary,
      element('h3', 'Model versions'),
      versions,
      element('h3', 'Runs'),
      this._runsTable(found.runs, false)
    ];
  }

  private _runLink(run: ILineageRun): HTMLElement {
    const link = element('a', run.step ?? run.name, 'jp-mlops-link');
    link.href = '#';
    link.title = `run ${run.run_id} in ${run.experiment}`;
    link.addEventListener('click', event => {
      event.preventDefault();
      void this._commands.execute(CommandIDs.openRun, { runId: run.run_id });
    });
    return link;
  }

  private _runsTable(runs: ILineageRun[], steps: boolean): HTMLElement {
    const table = element('table', '', 'jp-mlops-table jp-mlops-lineage-table');
    const head = element('tr');
    [steps ? 'Step' : 'Run', 'Status', 'Notebook', 'Params', 'Read', 'Wrote', 'Code'].forEach(t =>
      head.appendChild(element('th', t))
    );
    table.appendChild(head);
    for (const run of runs) {
      const row = element('tr');
      row.dataset.run = run.run_id ?? '';
      const name = element('td');
      if (run.run_id && !run.missing) {
        name.appendChild(this._runLink(run));
      } else {
        name.textContent = run.step ?? run.name;
      }
      const status = element('td');
      status.appendChild(statusBadge(run.status ?? 'KILLED'));
      if (run.state) {
        status.append(` ${run.state}`);
      }
      const params = Object.entries(run.params ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      const code = [
        run.cell_hash ? `cell ${run.cell_hash.slice(0, 8)}` : '',
        run.git_commit ? `git ${run.git_commit.slice(0, 8)}${run.git_dirty ? '+' : ''}` : ''
      ]
        .filter(Boolean)
        .join(' · ');
      row.append(
        name,
        status,
        element('td', run.notebook ? run.notebook.split('/').slice(-1)[0] : ''),
        element('td', params),
        this._data(run, 'input'),
        this._data(run, 'output'),
        element('td', code)
      );
      table.appendChild(row);
    }
    return table;
  }

  /** A run's data of one direction, each a link to what was made from it. */
  private _data(run: ILineageRun, direction: 'input' | 'output'): HTMLElement {
    const cell = element('td');
    for (const dataset of (run.datasets ?? []).filter(d => d.direction === direction)) {
      const link = element('a', `${dataset.name} ${dataset.hash.slice(0, 8)}`, 'jp-mlops-link jp-mlops-lineage-data');
      link.href = '#';
      link.title = 'What was made from this data version';
      link.addEventListener('click', event => {
        event.preventDefault();
        void this._commands.execute(CommandIDs.openLineage, { dataset: dataset.hash });
      });
      cell.append(link, element('br'));
    }
    return cell;
  }
}
