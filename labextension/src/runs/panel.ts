import { CommandRegistry } from '@lumino/commands';

import { IRunRow } from '../api';
import { download, element, formatDuration, formatNumber, SidebarPanel, statusBadge } from '../base';
import { CommandIDs } from '../tokens';
import { RunsModel } from './model';

const ROW_HEIGHT = 34; // px, fixed so that only the rows in view need to exist
const OVERSCAN = 10;
const DEFAULT_METRIC_COLUMNS = 2;

type Column = { kind: 'params' | 'metrics'; key: string };

/** The fixed columns: title, and the field a click on it sorts by. */
const FIXED_COLUMNS: [string, string | null][] = [
  ['', null],
  ['Run', 'attributes.run_name'],
  ['Started', 'attributes.start_time'],
  ['Duration', 'attributes.duration']
];

/** A field in the run filter grammar, its key quoted when it is not a plain name. */
function field(kind: string, key: string): string {
  return /^[\w.]+$/.test(key) ? `${kind}.${key}` : `${kind}.\`${key}\``;
}

/** How long ago, in the fewest characters (the full date is the cell's tooltip). */
function formatAge(time: number): string {
  const seconds = Math.max(0, (Date.now() - time) / 1000);
  return seconds < 60
    ? 'now'
    : seconds < 3600
      ? `${Math.round(seconds / 60)}m ago`
      : seconds < 86400
        ? `${Math.round(seconds / 3600)}h ago`
        : new Date(time).toLocaleDateString();
}

function filterBox(model: RunsModel): HTMLInputElement {
  const filter = element('input', '', 'jp-mlops-filter');
  filter.placeholder = 'Filter, e.g. metrics.acc > 0.9';
  filter.title = "MLflow filter grammar: metrics.acc > 0.9 and params.model = 'rf'; Enter to apply";
  filter.setAttribute('aria-label', 'Filter runs');
  filter.addEventListener('keydown', event => {
    if (event.key === 'Enter') {
      model.filter = filter.value;
    }
  });
  return filter;
}

function experimentPicker(model: RunsModel): HTMLSelectElement {
  const picker = element('select', '', 'jp-mlops-experiment-picker');
  picker.setAttribute('aria-label', 'Experiment');
  picker.appendChild(element('option', 'All experiments')).value = '';
  picker.addEventListener('change', () => {
    model.experiment = picker.value;
  });
  return picker;
}

/** The sidebar's Runs panel: the latest runs of an experiment or all, a filter box, sortable
 * columns (chosen params and metrics), child runs folded under their parent, live while visible;
 * click a run to open its page, tick runs to compare them. */
export class RunsPanel extends SidebarPanel<RunsModel> {
  private _selected = new Set<string>();
  private _selection: HTMLElement;
  private _experiments: HTMLSelectElement;
  private _expanded = new Set<string>(); // parents whose child runs are shown
  private _chosen: Column[] | null = null; // null: the first metrics, until someone chooses
  private _onlyDiffers = false;
  private _compare = element('button', 'Compare', 'jp-mlops-compare-button');
  private _columnsMenu = element('details', '', 'jp-mlops-columns');
  private _differs = element('input');
  private _scroller: HTMLElement;

  constructor(
    model: RunsModel,
    private _commands: CommandRegistry
  ) {
    const toolbar = element('div', '', 'jp-mlops-toolbar');
    const experiments = experimentPicker(model);
    const selection = element('div', '', 'jp-mlops-selection');
    super(model, 'Runs', 'jp-mlops-runs', [experiments, filterBox(model), toolbar, selection]);
    this._experiments = experiments;
    this._selection = selection;
    this._compare.disabled = true;
    this._compare.addEventListener('click', () => this._openComparison());
    this._differs.type = 'checkbox';
    this._differs.addEventListener('change', () => {
      this._onlyDiffers = this._differs.checked;
      this.render();
    });
    const differsLabel = element('label', '', 'jp-mlops-toggle');
    differsLabel.append(this._differs, document.createTextNode(' only what differs'));
    this._columnsMenu.appendChild(element('summary', 'Columns'));
    const csv = element('button', 'CSV', 'jp-mlops-csv-button');
    csv.title = 'Download the listed runs as CSV';
    csv.addEventListener('click', () => this._downloadCsv());
    toolbar.append(this._compare, this._columnsMenu, differsLabel, csv);
    this._scroller = this.table.parentElement as HTMLElement;
    this._scroller.addEventListener('scroll', () => this._renderRows());
  }

  protected render(): void {
    const { runs } = this.model.data;
    const error = this.model.error;
    const empty = this.model.filter.trim()
      ? 'No runs match this filter.'
      : 'No runs yet: start a notebook cell with %%track.';
    this.showMessage(error ?? (runs.length === 0 ? empty : `${runs.length} latest runs`), error !== null);
    this._renderExperiments();
    this._renderColumnsMenu();
    this._renderRows();
    this._renderSelection();
  }

  private _renderExperiments(): void {
    const names = ['', ...this.model.experiments];
    const current = Array.from(this._experiments.options).map(option => option.value);
    if (names.join('\n') !== current.join('\n')) {
      this._experiments.replaceChildren(
        ...names.map(name => {
          const option = element('option', name || 'All experiments');
          option.value = name;
          return option;
        })
      );
    }
    this._experiments.value = this.model.experiment;
  }

  /** How many runs are ticked, and how many of them the list no longer shows (kept, and said). */
  private _renderSelection(): void {
    const listed = new Set(this.model.data.runs.map(run => run.run_id));
    const hidden = [...this._selected].filter(id => !listed.has(id)).length;
    this._compare.disabled = this._selected.size === 0;
    this._compare.textContent = this._selected.size ? `Compare ${this._selected.size}` : 'Compare';
    if (this._selected.size === 0) {
      this._selection.replaceChildren();
      return;
    }
    const clear = element('button', 'Clear', 'jp-mlops-clear-selection');
    clear.addEventListener('click', () => {
      this._selected.clear();
      this._renderRows();
      this._renderSelection();
    });
    const text = `${this._selected.size} selected` + (hidden ? ` (${hidden} not in this list)` : '');
    this._selection.replaceChildren(element('span', text), clear);
  }

  /** Sort by a column: a first click sorts descending, a second ascending, a third as it was. */
  private _sortBy(fieldName: string): void {
    const order = this.model.orderBy;
    this.model.orderBy =
      order === `${fieldName} DESC` ? `${fieldName} ASC` : order === `${fieldName} ASC` ? null : `${fieldName} DESC`;
  }

  /** The param/metric columns shown: the chosen ones, less those equal in every run if asked. */
  private _columns(): Column[] {
    const { runs, metric_keys } = this.model.data;
    let columns =
      this._chosen ?? metric_keys.slice(0, DEFAULT_METRIC_COLUMNS).map(key => ({ kind: 'metrics' as const, key }));
    if (this._onlyDiffers) {
      columns = columns.filter(({ kind, key }) => new Set(runs.map(run => String(run[kind][key] ?? ''))).size > 1);
    }
    return columns;
  }

  private _renderColumnsMenu(): void {
    const { param_keys, metric_keys } = this.model.data;
    const chosen = this._columns.bind(this);
    const current = new Set((this._chosen ?? chosen()).map(c => `${c.kind}.${c.key}`));
    const options: HTMLElement[] = [this._columnsMenu.firstElementChild as HTMLElement];
    for (const [kind, keys] of [
      ['metrics', metric_keys],
      ['params', param_keys]
    ] as ['metrics' | 'params', string[]][]) {
      for (const key of keys) {
        const label = element('label', '', 'jp-mlops-column-option');
        const box = element('input');
        box.type = 'checkbox';
        box.checked = current.has(`${kind}.${key}`);
        box.dataset.column = `${kind}.${key}`;
        box.addEventListener('change', () => {
          const columns = (this._chosen ?? chosen()).filter(c => !(c.kind === kind && c.key === key));
          this._chosen = box.checked ? [...columns, { kind, key }] : columns;
          this._renderRows();
        });
        label.append(box, document.createTextNode(` ${kind}.${key}`));
        options.push(label);
      }
    }
    this._columnsMenu.replaceChildren(...options);
  }

  /** The runs as a tree: each child run (a sweep's trial, a nested run) under its parent when the
   * parent is listed too, shown once the parent is expanded. */
  private _tree(): { run: IRunRow; depth: number; children: number }[] {
    const runs = this.model.error === null ? this.model.data.runs : []; // no stale rows under an error
    const listed = new Set(runs.map(run => run.run_id));
    const children = new Map<string, IRunRow[]>();
    for (const run of runs) {
      if (run.parent_run_id && listed.has(run.parent_run_id)) {
        children.set(run.parent_run_id, [...(children.get(run.parent_run_id) ?? []), run]);
      }
    }
    const rows: { run: IRunRow; depth: number; children: number }[] = [];
    const visit = (run: IRunRow, depth: number) => {
      const below = children.get(run.run_id) ?? [];
      rows.push({ run, depth, children: below.length });
      if (this._expanded.has(run.run_id)) {
        below.forEach(child => visit(child, depth + 1));
      }
    };
    runs.filter(run => !(run.parent_run_id && listed.has(run.parent_run_id))).forEach(run => visit(run, 0));
    return rows;
  }

  /** Only the rows in view (and a few around them) exist; spacers keep the scroll height right. */
  private _renderRows(): void {
    const runs = this._tree();
    const columns = this._columns();
    const head = element('tr');
    const order = this.model.orderBy ?? '';
    const titles: [string, string | null][] = [
      ...FIXED_COLUMNS,
      ...columns.map(({ kind, key }) => [key, field(kind, key)] as [string, string | null])
    ];
    for (const [title, sortField] of titles) {
      const th = head.appendChild(element('th', title));
      th.title = sortField ? `${sortField}: click to sort` : title;
      if (sortField) {
        th.classList.add('jp-mlops-sortable');
        th.dataset.sort = order === `${sortField} DESC` ? 'desc' : order === `${sortField} ASC` ? 'asc' : '';
        th.addEventListener('click', () => this._sortBy(sortField));
      }
    }
    const first = Math.max(0, Math.floor(this._scroller.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const visible = Math.ceil((this._scroller.clientHeight || 600) / ROW_HEIGHT) + 2 * OVERSCAN;
    const last = Math.min(runs.length, first + visible);
    const spacer = (rows: number) => {
      const tr = element('tr', '', 'jp-mlops-spacer');
      tr.style.height = `${rows * ROW_HEIGHT}px`;
      return tr;
    };
    this.table.replaceChildren(
      head,
      spacer(first),
      ...runs.slice(first, last).map(({ run, depth, children }) => this._row(run, columns, depth, children)),
      spacer(runs.length - last)
    );
  }

  private _row(run: IRunRow, columns: Column[], depth: number, children: number): HTMLElement {
    const row = element('tr', '', depth ? 'jp-mlops-child-run' : '');
    row.dataset.runId = run.run_id;
    if (run.parent_run_id) {
      row.dataset.parentRunId = run.parent_run_id;
    }
    row.style.height = `${ROW_HEIGHT}px`;
    const pick = element('input');
    pick.type = 'checkbox';
    pick.checked = this._selected.has(run.run_id);
    pick.setAttribute('aria-label', `Select ${run.name}`);
    pick.addEventListener('change', () => this._toggle(run.run_id, pick.checked));
    const pickCell = element('td', '', `jp-mlops-pick jp-mlops-edge-${run.status.toLowerCase()}`);
    pickCell.title = run.status;
    pickCell.appendChild(pick);
    const name = element('td');
    name.title = `${run.run_id}\n${run.status}, started ${new Date(run.start_time).toLocaleString()} by ${run.user}`;
    const title = element('div', '', 'jp-mlops-run-name');
    if (children) {
      const open = this._expanded.has(run.run_id);
      const toggle = element('button', `${open ? '▾' : '▸'} ${children}`, 'jp-mlops-tree-toggle');
      toggle.title = `${open ? 'Hide' : 'Show'} its ${children} child runs`;
      toggle.setAttribute('aria-expanded', String(open));
      toggle.addEventListener('click', () => {
        if (open) {
          this._expanded.delete(run.run_id);
        } else {
          this._expanded.add(run.run_id);
        }
        this._renderRows();
      });
      title.appendChild(toggle);
    }
    const open = element('button', run.name, 'jp-mlops-open-run');
    open.title = `Open the page of ${run.name}`;
    open.addEventListener('click', () => void this._commands.execute(CommandIDs.openRun, { runId: run.run_id }));
    title.appendChild(open);
    name.style.paddingLeft = `${4 + depth * 14}px`;
    const second = element('div', '', 'jp-mlops-run-experiment');
    second.append(statusBadge(run.status), document.createTextNode(` ${run.experiment}`));
    name.append(title, second);
    const started = element('td', formatAge(run.start_time));
    started.title = new Date(run.start_time).toLocaleString();
    row.append(pickCell, name, started, element('td', formatDuration(run.duration_ms)));
    for (const { kind, key } of columns) {
      const value = kind === 'metrics' ? formatNumber(run.metrics[key]) : (run.params[key] ?? '');
      row.appendChild(element('td', value)).title = `${kind}.${key}`;
    }
    return row;
  }

  private _toggle(runId: string, on: boolean): void {
    if (on) {
      this._selected.add(runId);
    } else {
      this._selected.delete(runId);
    }
    this._renderSelection();
  }

  /** The runs listed (all of them, not only the rows in view) with every param and metric, as CSV. */
  private _downloadCsv(): void {
    const { runs, param_keys, metric_keys } = this.model.data;
    const quote = (value: unknown) => {
      const text = value === null || value === undefined ? '' : String(value);
      return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
    };
    const head = ['run_id', 'name', 'experiment', 'status', 'user', 'start_time', 'duration_ms', 'parent_run_id'];
    const lines = [
      [...head, ...param_keys.map(k => `params.${k}`), ...metric_keys.map(k => `metrics.${k}`)].map(quote).join(',')
    ];
    for (const run of runs) {
      const cells = [
        run.run_id,
        run.name,
        run.experiment,
        run.status,
        run.user,
        new Date(run.start_time).toISOString(),
        run.duration_ms,
        run.parent_run_id,
        ...param_keys.map(k => run.params[k]),
        ...metric_keys.map(k => run.metrics[k])
      ];
      lines.push(cells.map(quote).join(','));
    }
    download(new Blob([lines.join('\n') + '\n'], { type: 'text/csv' }), 'runs.csv');
  }

  private _openComparison(): void {
    void this._commands.execute(CommandIDs.openComparison, { runIds: [...this._selected] });
  }
}
