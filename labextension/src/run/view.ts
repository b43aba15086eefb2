import { InputDialog } from '@jupyterlab/apputils';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { CommandRegistry } from '@lumino/commands';

import { listRuns, IArtifactEntry, IArtifactPreview, ICurve, ILoggedModel, IRunDataset, IRunPage } from '../api';
import {
  download,
  element,
  formatBytes,
  formatDuration,
  formatNumber,
  MainView,
  plotlyText,
  statusBadge
} from '../base';
import { CommandIDs } from '../tokens';
import { RunModel } from './model';

type Section = [id: string, title: string, body: HTMLElement | null];

/** Rows of key → value; values as text. */
function keyValueTable(rows: [string, string][], className = ''): HTMLElement {
  const table = element('table', '', `jp-mlops-table jp-mlops-kv ${className}`);
  for (const [key, value] of rows) {
    const tr = element('tr');
    tr.dataset.key = key;
    tr.append(element('td', key, 'jp-mlops-key'), element('td', value));
    table.appendChild(tr);
  }
  return table;
}

/** The first rows of a table (a data version's or an artifact's preview). */
function rowsTable(rows: Record<string, unknown>[], columns?: string[]): HTMLElement {
  const names = columns ?? [...new Set(rows.flatMap(row => Object.keys(row)))];
  const table = element('table', '', 'jp-mlops-table jp-mlops-preview-table');
  const head = element('tr');
  names.forEach(name => head.appendChild(element('th', name)));
  table.appendChild(head);
  for (const row of rows) {
    const tr = element('tr');
    names.forEach(name =>
      tr.appendChild(element('td', row[name] === null || row[name] === undefined ? '' : String(row[name])))
    );
    table.appendChild(tr);
  }
  return table;
}

function pre(text: string, className = ''): HTMLElement {
  return element('pre', text, `jp-mlops-pre ${className}`);
}

/**
 * One run, as MLflow's and W&B's run pages show it: status with the error, description, params,
 * metrics and their curves, figures, the cell's code and output, artifacts with previews, models
 * with a Register button, data versions, tags, parent and children, environment and git. Live
 * while the run is RUNNING; what a person opened or is editing stays as it is across refreshes.
 */
export class RunView extends MainView<RunModel> {
  private _shown = '';
  private _charts = new Map<string, HTMLElement>(); // one chart per curve, kept so zoom survives a refresh
  private _previewPath: string | null = null;
  private _preview = element('div', '', 'jp-mlops-artifact-preview');
  private _editingDescription = false;
  private _status = element('p', '', 'jp-mlops-message jp-mlops-run-status');
  private _urls: string[] = [];

  constructor(
    model: RunModel,
    private _commands: CommandRegistry,
    private _rendermime: IRenderMimeRegistry | null
  ) {
    super(model, 'jp-mlops-RunView');
  }

  dispose(): void {
    this._urls.forEach(url => URL.revokeObjectURL(url));
    super.dispose();
  }

  protected render(): void {
    const page = this.model.data;
    if (page === null) {
      this.node.textContent = `Could not open run ${this.model.runId}: ${this.model.error}`;
      return;
    }
    const shown = JSON.stringify(page);
    if (shown === this._shown || this._editingDescription) {
      return; // nothing new, or someone is typing: leave the page as it is
    }
    this._shown = shown;
    this.title.label = `Run: ${page.info.name}`;
    this.node.dataset.status = page.info.status;
    const sections: Section[] = [
      ['description', 'Description', this._description(page)],
      ['params', `Params (${Object.keys(page.params).length})`, this._params(page)],
      ['metrics', `Metrics (${Object.keys(page.metrics).length})`, this._metrics(page)],
      ['curves', 'Curves', page.curve_keys.length ? this._curves(page) : null],
      ['figures', `Figures (${page.figures.length})`, page.figures.length ? this._figures(page) : null],
      ['code', 'Code', page.info.source ? this._code(page) : null],
      ['output', 'Output', page.stdout ? this._stdout(page) : null],
      ['artifacts', `Artifacts (${page.artifacts.filter(a => a.kind !== 'dir').length})`, this._artifacts(page)],
      ['models', `Models (${page.models.length})`, page.models.length ? this._models(page) : null],
      ['data', `Data versions (${page.datasets.length})`, page.datasets.length ? this._datasets(page) : null],
      ['tags', 'Tags', this._tags(page)],
      ['runs', 'Parent and child runs', page.parent || page.children.length ? this._relatives(page) : null],
      ['environment', 'Environment', this._environment(page)]
    ];
    const shownSections = sections.filter(([, , body]) => body !== null);
    const nav = element('nav', '', 'jp-mlops-run-nav');
    for (const [id, title] of shownSections) {
      const link = element('button', title.replace(/ \(\d+\)$/, ''), 'jp-mlops-nav-link');
      link.addEventListener('click', () => this.node.querySelector(`[data-section="${id}"]`)?.scrollIntoView());
      nav.appendChild(link);
    }
    const parts: HTMLElement[] = [this._header(page), nav, this._status];
    if (page.info.error) {
      parts.push(element('h3', 'Error', 'jp-mlops-error'), pre(page.info.error, 'jp-mlops-traceback'));
    }
    for (const [id, title, body] of shownSections) {
      const section = element('section', '', 'jp-mlops-run-section');
      section.dataset.section = id;
      section.append(element('h3', title), body!);
      parts.push(section);
    }
    this.node.replaceChildren(...parts);
    if (page.curve_keys.length) {
      void this._drawCurves(page);
    }
  }

  /** Run an action; what it did (``done``) or its error shows at the top of the page. */
  private async _act(action: () => Promise<unknown>, done?: string): Promise<void> {
    this._status.textContent = '';
    this._status.classList.remove('jp-mlops-error');
    try {
      await action();
      if (done !== undefined) {
        this._status.textContent = done;
      }
    } catch (error) {
      this._status.textContent = (error as Error).message;
      this._status.classList.add('jp-mlops-error');
    }
  }

  private _link(runId: string, name: string | null): HTMLElement {
    const link = element('button', name ?? runId.slice(0, 8), 'jp-mlops-link');
    link.title = runId;
    link.addEventListener('click', () => void this._commands.execute(CommandIDs.openRun, { runId }));
    return link;
  }

  private _header(page: IRunPage): HTMLElement {
    const info = page.info;
    const header = element('div', '', 'jp-mlops-run-header');
    const title = element('h2');
    title.append(document.createTextNode(info.name), statusBadge(info.status));
    if (info.deleted) {
      title.appendChild(element('span', 'deleted', 'jp-mlops-badge jp-mlops-deleted'));
    }
    const duration = info.end_time === null ? Date.now() - info.start_time : info.end_time - info.start_time;
    const meta = element('div', '', 'jp-mlops-run-meta');
    meta.append(
      element('span', `${info.experiment}`),
      element('span', `by ${info.user}`),
      element('span', `started ${new Date(info.start_time).toLocaleString()}`),
      element('span', `${info.end_time === null ? 'running for' : 'took'} ${formatDuration(duration)}`),
      element('code', info.id)
    );
    const actions = element('div', '', 'jp-mlops-run-actions');
    if (page.notebook) {
      const open = element('button', `Open ${page.notebook.split('/').pop()}`, 'jp-mlops-open-notebook');
      open.title = page.notebook;
      open.addEventListener('click', () => void this._commands.execute('docmanager:open', { path: page.notebook }));
      actions.appendChild(open);
    } else if (info.notebook_path) {
      actions.appendChild(element('span', `from ${info.notebook_path}`, 'jp-mlops-message'));
    }
    if (page.parent) {
      const compare = element('button', 'Compare with siblings');
      compare.addEventListener('click', () =>
        this._act(async () => {
          const parent = await this._siblings(page);
          await this._commands.execute(CommandIDs.openComparison, { runIds: parent });
        })
      );
      actions.appendChild(compare);
    }
    const remove = element('button', info.deleted ? 'Restore' : 'Delete', 'jp-mlops-delete-run');
    remove.addEventListener('click', () =>
      this._act(
        () => this.model.setDeleted(!info.deleted),
        info.deleted ? 'Restored.' : 'Deleted: Restore brings it back.'
      )
    );
    actions.appendChild(remove);
    header.append(title, meta, actions);
    return header;
  }

  /** The runs under the same parent (a search, not the parent's whole page). */
  private async _siblings(page: IRunPage): Promise<string[]> {
    const filter = `attributes.parent_run_id = '${page.parent!.run_id}'`;
    const listed = await listRuns({ limit: 50, filter, lifecycle: 'all' });
    return listed.runs.map(run => run.run_id);
  }

  private _description(page: IRunPage): HTMLElement {
    const box = element('div', '', 'jp-mlops-description');
    const shown = element('div', '', 'jp-mlops-markdown');
    if (page.description && this._rendermime) {
      const renderer = this._rendermime.createRenderer('text/markdown');
      void renderer.renderModel(new MimeModel({ data: { 'text/markdown': page.description } }));
      shown.appendChild(renderer.node);
    } else {
      shown.textContent = page.description || 'No description.';
      shown.classList.toggle('jp-mlops-message', !page.description);
    }
    const edit = element('button', 'Edit', 'jp-mlops-edit-description');
    edit.addEventListener('click', () => {
      this._editingDescription = true;
      const text = element('textarea', '', 'jp-mlops-description-editor');
      text.value = page.description;
      text.rows = 6;
      text.setAttribute('aria-label', 'Description (markdown)');
      const save = element('button', 'Save', 'jp-mlops-save-description');
      const cancel = element('button', 'Cancel');
      const finish = () => {
        this._editingDescription = false;
        this._shown = '';
        this.render();
      };
      save.addEventListener('click', () =>
        this._act(async () => {
          const value = text.value.trim();
          await (value ? this.model.editTags({ description: value }, []) : this.model.editTags({}, ['description']));
          finish();
        })
      );
      cancel.addEventListener('click', finish);
      box.replaceChildren(text, save, cancel);
      text.focus();
    });
    box.append(shown, edit);
    return box;
  }

  private _params(page: IRunPage): HTMLElement {
    const keys = Object.keys(page.params).sort();
    return keys.length
      ? keyValueTable(keys.map(key => [key, page.params[key]]))
      : element('p', 'No params.', 'jp-mlops-message');
  }

  private _metrics(page: IRunPage): HTMLElement {
    const keys = Object.keys(page.metrics).sort();
    if (!keys.length) {
      return element('p', 'No metrics.', 'jp-mlops-message');
    }
    const table = element('table', '', 'jp-mlops-table jp-mlops-metrics-table');
    const head = element('tr');
    ['Metric', 'Latest', 'Min', 'Max', 'Points'].forEach(title => head.appendChild(element('th', title)));
    table.appendChild(head);
    for (const key of keys) {
      const summary = page.metric_summaries[key];
      const tr = element('tr');
      tr.dataset.key = key;
      tr.append(
        element('td', key, 'jp-mlops-key'),
        element('td', formatNumber(page.metrics[key])),
        element('td', summary.count > 1 ? formatNumber(summary.min) : ''),
        element('td', summary.count > 1 ? formatNumber(summary.max) : ''),
        element('td', String(summary.count))
      );
      table.appendChild(tr);
    }
    return table;
  }

  private _curves(page: IRunPage): HTMLElement {
    const grid = element('div', '', 'jp-mlops-chart-grid');
    for (const key of page.curve_keys) {
      let chart = this._charts.get(key);
      if (!chart) {
        chart = element('div', '', 'jp-mlops-chart jp-mlops-curve');
        chart.dataset.key = key;
        this._charts.set(key, chart);
      }
      grid.appendChild(chart);
    }
    return grid;
  }

  private async _drawCurves(page: IRunPage): Promise<void> {
    const Plotly = await import('plotly.js-dist-min');
    const curves = await Promise.all(
      page.curve_keys.map(key => (page.curves[key] ? Promise.resolve(page.curves[key]) : this.model.curve(key)))
    );
    await Promise.all(
      page.curve_keys.map((key, i) => {
        const curve: ICurve = curves[i];
        return Plotly.react(
          this._charts.get(key)!,
          [{ x: curve.steps, y: curve.values.map(Number), mode: 'lines', type: 'scatter', name: plotlyText(key) }],
          {
            title: { text: plotlyText(key), font: { size: 13 } },
            height: 220,
            margin: { t: 30, l: 50, r: 10, b: 30 },
            uirevision: key, // a live refresh keeps the zoom
            xaxis: { title: { text: 'step' } }
          },
          { displaylogo: false, responsive: true }
        );
      })
    );
  }

  private _figures(page: IRunPage): HTMLElement {
    const grid = element('div', '', 'jp-mlops-figure-grid');
    for (const path of page.figures) {
      const cell = element('figure', '', 'jp-mlops-figure');
      cell.appendChild(element('figcaption', path.replace(/^figures\//, '')));
      grid.appendChild(cell);
      void this._drawImage(cell, path);
    }
    return grid;
  }

  private async _drawImage(cell: HTMLElement, path: string): Promise<void> {
    try {
      const blob = await this.model.artifact(path);
      if (path.endsWith('.json')) {
        const figure = JSON.parse(await blob.text());
        const Plotly = await import('plotly.js-dist-min');
        const chart = element('div', '', 'jp-mlops-chart');
        cell.appendChild(chart);
        await Plotly.react(
          chart,
          figure.data ?? [],
          { ...(figure.layout ?? {}), autosize: true, height: 280 },
          {
            displaylogo: false,
            responsive: true
          }
        );
        return;
      }
      const url = URL.createObjectURL(path.endsWith('.svg') ? new Blob([blob], { type: 'image/svg+xml' }) : blob);
      this._urls.push(url);
      const image = element('img');
      image.src = url;
      image.alt = path;
      cell.appendChild(image);
    } catch (error) {
      cell.appendChild(element('span', (error as Error).message, 'jp-mlops-error'));
    }
  }

  private _code(page: IRunPage): HTMLElement {
    return pre(page.info.source ?? '', 'jp-mlops-source');
  }

  private _stdout(page: IRunPage): HTMLElement {
    const stdout = page.stdout!;
    const box = element('div');
    box.appendChild(pre(stdout.text || '(nothing printed)', 'jp-mlops-stdout'));
    if (stdout.truncated) {
      const more = element('button', `Download all ${formatBytes(stdout.size)}`);
      more.addEventListener('click', () =>
        this._act(async () => download(await this.model.artifact('stdout.txt'), 'stdout.txt'))
      );
      box.appendChild(more);
    }
    return box;
  }

  private _artifacts(page: IRunPage): HTMLElement {
    const box = element('div');
    const files = page.artifacts;
    if (!files.length) {
      box.appendChild(element('p', 'No artifacts.', 'jp-mlops-message'));
      return box;
    }
    const table = element('table', '', 'jp-mlops-table jp-mlops-artifacts');
    const head = element('tr');
    ['Path', 'Size', ''].forEach(title => head.appendChild(element('th', title)));
    table.appendChild(head);
    for (const entry of files) {
      table.appendChild(this._artifactRow(entry));
    }
    box.append(table, this._preview);
    if (this._previewPath && files.some(entry => entry.path === this._previewPath)) {
      void this._showPreview(this._previewPath);
    }
    return box;
  }

  private _artifactRow(entry: IArtifactEntry): HTMLElement {
    const tr = element('tr', '', entry.kind === 'dir' ? 'jp-mlops-artifact-folder' : '');
    tr.dataset.path = entry.path;
    const name = element('td', entry.folder ? entry.path.slice(entry.folder.length + 1) : entry.path, 'jp-mlops-key');
    if (entry.folder) {
      name.style.paddingLeft = '18px';
    }
    const files = entry.files ?? 0;
    const size = entry.kind === 'dir' ? `${files} file${files === 1 ? '' : 's'}` : formatBytes(entry.size);
    const actions = element('td', '', 'jp-mlops-artifact-actions');
    if (entry.kind === 'dir') {
      if (entry.error) {
        actions.appendChild(element('span', entry.error, 'jp-mlops-error'));
      }
    } else {
      const show = element('button', 'Preview', 'jp-mlops-preview-button');
      show.addEventListener('click', () => void this._showPreview(entry.path));
      const save = element('button', 'Download', 'jp-mlops-download-button');
      save.addEventListener('click', () =>
        this._act(async () => download(await this.model.artifact(entry.path), entry.path.split('/').pop()!))
      );
      actions.append(show, save);
    }
    tr.append(name, element('td', size), actions);
    return tr;
  }

  private async _showPreview(path: string): Promise<void> {
    this._previewPath = path;
    this._preview.replaceChildren(element('h4', path), element('p', 'Loading…', 'jp-mlops-message'));
    let preview: IArtifactPreview;
    try {
      preview = await this.model.preview(path);
    } catch (error) {
      this._preview.replaceChildren(element('h4', path), element('p', (error as Error).message, 'jp-mlops-error'));
      return;
    }
    const body: HTMLElement[] = [element('h4', `${path} · ${formatBytes(preview.size)}`)];
    if (preview.kind === 'image') {
      const blob = await this.model.artifact(path);
      const url = URL.createObjectURL(new Blob([blob], { type: preview.media_type }));
      this._urls.push(url);
      const image = element('img', '', 'jp-mlops-preview-image');
      image.src = url;
      image.alt = path;
      body.push(image);
    } else if (preview.kind === 'table') {
      body.push(element('p', `First ${preview.rows!.length} rows`, 'jp-mlops-message'));
      body.push(rowsTable(preview.rows!, Object.keys(preview.columns!)));
    } else if (preview.kind === 'json' || preview.kind === 'text') {
      body.push(pre(preview.text ?? '', 'jp-mlops-preview-text'));
      if (preview.truncated) {
        body.push(element('p', 'The start of the file; download it for the rest.', 'jp-mlops-message'));
      }
    } else {
      body.push(element('p', preview.note ?? 'A binary file: download it to open it.', 'jp-mlops-message'));
    }
    if (this._previewPath === path) {
      this._preview.replaceChildren(...body);
    }
  }

  private _models(page: IRunPage): HTMLElement {
    const box = element('div');
    for (const model of page.models) {
      box.appendChild(this._model(page, model));
    }
    return box;
  }

  private _model(page: IRunPage, model: ILoggedModel): HTMLElement {
    const card = element('div', '', 'jp-mlops-model-card');
    card.dataset.model = model.name;
    const signature = model.signature ?? {};
    const onnx = model.onnx_hash
      ? signature.verified_max_difference !== undefined
        ? `ONNX, verified: largest difference ${formatNumber(signature.verified_max_difference)}`
        : 'ONNX'
      : model.onnx_error
        ? `no ONNX form: ${model.onnx_error}`
        : 'converted to ONNX when registered';
    card.append(
      element('h4', `${model.name} · ${model.flavor}`),
      element('p', onnx, model.onnx_error ? 'jp-mlops-error' : 'jp-mlops-message')
    );
    const tensors = [
      ...(signature.inputs ?? []).map(t => ['input', t]),
      ...(signature.outputs ?? []).map(t => ['output', t])
    ] as [string, { name: string; type: string; shape: (number | string | null)[] }][];
    if (tensors.length) {
      const table = element('table', '', 'jp-mlops-table jp-mlops-signature');
      const head = element('tr');
      ['', 'Name', 'Type', 'Shape'].forEach(title => head.appendChild(element('th', title)));
      table.appendChild(head);
      for (const [role, tensor] of tensors) {
        const tr = element('tr');
        tr.append(
          element('td', role),
          element('td', tensor.name),
          element('td', tensor.type),
          element('td', `[${tensor.shape.map(d => d ?? '?').join(', ')}]`)
        );
        table.appendChild(tr);
      }
      card.appendChild(table);
    }
    if (signature.input_columns?.length) {
      card.appendChild(element('p', `columns: ${signature.input_columns.join(', ')}`, 'jp-mlops-message'));
    }
    const actions = element('div', '', 'jp-mlops-run-actions');
    const register = element('button', 'Register', 'jp-mlops-register-button');
    register.disabled = page.info.status === 'RUNNING';
    register.title = register.disabled ? 'The run is still running' : 'Register this model as a new version';
    register.addEventListener('click', () => void this._register(model));
    actions.appendChild(register);
    const forms: ['logged' | 'onnx', string][] = [['logged', model.flavor === 'onnx' ? '.onnx' : '.pkl']];
    if (model.onnx_hash && model.flavor !== 'onnx') {
      forms.push(['onnx', '.onnx']);
    }
    for (const [form, suffix] of forms) {
      const save = element('button', `Download ${suffix}`);
      save.addEventListener('click', () =>
        this._act(async () => download(await this.model.modelFile(model.name, form), `${model.name}${suffix}`))
      );
      actions.appendChild(save);
    }
    card.appendChild(actions);
    return card;
  }

  private async _register(model: ILoggedModel): Promise<void> {
    const answer = await InputDialog.getText({
      title: `Register ${model.name}`,
      label: 'Registered model name',
      placeholder: 'churn',
      okLabel: 'Register'
    });
    if (!answer.button.accept || !answer.value?.trim()) {
      return;
    }
    const name = answer.value.trim();
    await this._act(async () => {
      const registered = await this.model.register(name, model.name);
      this._status.replaceChildren(
        document.createTextNode(`Registered ${registered.name} version ${registered.version}. `)
      );
      const open = element('button', `Open ${registered.name}`, 'jp-mlops-link');
      open.addEventListener(
        'click',
        () => void this._commands.execute(CommandIDs.openModel, { name: registered.name })
      );
      this._status.appendChild(open);
    });
  }

  private _datasets(page: IRunPage): HTMLElement {
    const box = element('div');
    const table = element('table', '', 'jp-mlops-table jp-mlops-datasets');
    const head = element('tr');
    ['Name', 'Direction', 'Format', 'Rows', 'Size', 'Version', ''].forEach(title =>
      head.appendChild(element('th', title))
    );
    table.appendChild(head);
    const preview = element('div', '', 'jp-mlops-dataset-preview');
    for (const dataset of page.datasets) {
      const tr = element('tr');
      tr.dataset.dataset = dataset.name;
      tr.title = dataset.source ?? '';
      const show = element('button', 'Preview');
      show.disabled = !dataset.preview?.length;
      show.addEventListener('click', () => preview.replaceChildren(...this._datasetPreview(dataset)));
      const downstream = element('button', 'Downstream', 'jp-mlops-downstream');
      downstream.title = 'Everything made from this data version: runs, their data, model versions';
      downstream.addEventListener(
        'click',
        () => void this._commands.execute(CommandIDs.openLineage, { dataset: dataset.hash })
      );
      tr.append(
        element('td', dataset.name, 'jp-mlops-key'),
        element('td', dataset.direction),
        element('td', dataset.format),
        element('td', dataset.num_rows === null ? '' : dataset.num_rows.toLocaleString()),
        element('td', formatBytes(dataset.num_bytes)),
        element('code', dataset.hash.slice(0, 12)),
        element('td')
      );
      tr.lastElementChild!.append(show, downstream);
      table.appendChild(tr);
    }
    box.append(table, preview);
    return box;
  }

  private _datasetPreview(dataset: IRunDataset): HTMLElement[] {
    const columns = Object.entries(dataset.columns)
      .map(([name, type]) => `${name}: ${type}`)
      .join(', ');
    return [element('h4', dataset.name), element('p', columns, 'jp-mlops-message'), rowsTable(dataset.preview ?? [])];
  }

  private _tags(page: IRunPage): HTMLElement {
    const box = element('div');
    const table = element('table', '', 'jp-mlops-table jp-mlops-kv jp-mlops-tags');
    for (const [key, value] of Object.entries(page.tags).sort()) {
      if (key === 'description') {
        continue; // shown and edited above
      }
      const tr = element('tr');
      tr.dataset.key = key;
      const remove = element('button', '×', 'jp-mlops-remove-tag');
      remove.title = `Remove the tag ${key}`;
      remove.setAttribute('aria-label', `Remove the tag ${key}`);
      remove.addEventListener('click', () => this._act(() => this.model.editTags({}, [key])));
      tr.append(element('td', key, 'jp-mlops-key'), element('td', value), element('td'));
      tr.lastElementChild!.appendChild(remove);
      table.appendChild(tr);
    }
    const form = element('form', '', 'jp-mlops-tag-form');
    const key = element('input');
    key.placeholder = 'key';
    key.setAttribute('aria-label', 'Tag key');
    const value = element('input');
    value.placeholder = 'value';
    value.setAttribute('aria-label', 'Tag value');
    const add = element('button', 'Add tag');
    add.type = 'submit';
    form.append(key, value, add);
    form.addEventListener('submit', event => {
      event.preventDefault();
      void this._act(() => this.model.editTags({ [key.value.trim()]: value.value }, []));
    });
    box.append(table, form);
    return box;
  }

  private _relatives(page: IRunPage): HTMLElement {
    const box = element('div', '', 'jp-mlops-relatives');
    if (page.parent) {
      const line = element('p', 'Parent: ');
      line.appendChild(this._link(page.parent.run_id, page.parent.name));
      box.appendChild(line);
    }
    if (page.children.length) {
      box.appendChild(element('p', `${page.children.length} child runs:`));
      const list = element('ul', '', 'jp-mlops-children');
      for (const child of page.children) {
        const item = element('li');
        item.append(this._link(child.run_id, child.name), statusBadge(child.status ?? '?'));
        list.appendChild(item);
      }
      box.appendChild(list);
    }
    return box;
  }

  private _environment(page: IRunPage): HTMLElement {
    const box = element('div');
    const environment = page.environment;
    const hardware = environment?.hardware ?? {};
    const gpus = (hardware.gpus as { name?: string }[] | undefined)?.map(g => g.name ?? '').join(', ');
    const rows: [string, string][] = [
      ['host', page.info.host],
      ['python', environment?.python ?? ''],
      ['platform', environment?.platform ?? ''],
      ['cpu', `${hardware.cpu ?? ''}${hardware.cpu_count ? ` × ${hardware.cpu_count}` : ''}`],
      ['gpus', gpus || 'none'],
      ['git commit', page.git.commit ?? 'not in a git repository'],
      ['uncommitted changes', page.git.dirty === null ? '' : page.git.dirty ? 'yes' : 'no']
    ];
    box.appendChild(keyValueTable(rows.filter(([, value]) => value !== '')));
    if (page.git.diff) {
      const details = element('details');
      details.append(
        element('summary', 'Uncommitted changes (git diff)'),
        pre(page.git.diff.text, 'jp-mlops-git-diff')
      );
      box.appendChild(details);
    }
    const packages = Object.entries(environment?.packages ?? {}).sort();
    if (packages.length) {
      const details = element('details');
      details.append(
        element('summary', `${packages.length} packages`),
        keyValueTable(packages.map(([name, version]) => [name, version]))
      );
      box.appendChild(details);
    }
    return box;
  }
}
