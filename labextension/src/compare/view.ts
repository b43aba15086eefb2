import { CommandRegistry } from '@lumino/commands';

import { IAligned, IComparison } from '../api';
import { element, MainView, plotlyText } from '../base';
import { CommandIDs } from '../tokens';
import { CompareModel } from './model';

const SECTIONS: [keyof IComparison, string][] = [
  ['params', 'Params'],
  ['metrics', 'Metrics (latest)'],
  ['tags', 'Tags'],
  ['datasets', 'Data versions'],
  ['environment', 'Environment'],
  ['packages', 'Packages that differ']
];

function formatCell(value: string | number | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  return typeof value === 'number' ? String(Number(value.toPrecision(6))) : value;
}

function smooth(values: number[], weight: number): number[] {
  let last = values.length ? values[0] : 0;
  return values.map(v => {
    if (Number.isFinite(v)) {
      last = last * weight + (1 - weight) * v;
    }
    return last;
  });
}

const MAX_AXES = 8;
const LABEL_CHARS = 20;
// Metrics that usually say how good a run is, in the order a reader looks for them.
const PRIMARY_METRICS = [/acc/i, /f1/i, /auc/i, /r2/i, /score/i, /loss/i, /error/i];

/** The metric a comparison is about: a familiar one that differs between the runs, if any. */
function primaryMetric(comparison: IComparison): string | null {
  const differing = comparison.metrics.filter(row => row.differs).map(row => row.key);
  const all = comparison.metrics.map(row => row.key);
  for (const keys of [differing, all]) {
    for (const pattern of PRIMARY_METRICS) {
      const found = keys.find(key => pattern.test(key));
      if (found) {
        return found;
      }
    }
  }
  return differing[0] ?? all[0] ?? null;
}

/** A label short enough to stay readable on an axis: the end of a long dotted name is the telling part. */
function shortLabel(label: string): string {
  return label.length > LABEL_CHARS ? `…${label.slice(-(LABEL_CHARS - 1))}` : label;
}

function isNumeric(values: (string | number | null)[]): boolean {
  return values.every(v => v !== null && v !== '' && !Number.isNaN(Number(v)));
}

const VIRIDIS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];

/** A colour of the viridis scale for a position from 0 to 1. */
function viridis(position: number): string {
  const scaled = Math.min(Math.max(position, 0), 1) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(scaled), VIRIDIS.length - 2);
  const mix = (a: string, b: string, t: number) =>
    Math.round(parseInt(a, 16) + (parseInt(b, 16) - parseInt(a, 16)) * t)
      .toString(16)
      .padStart(2, '0');
  const [from, to] = [VIRIDIS[i], VIRIDIS[i + 1]];
  const t = scaled - i;
  return `#${[1, 3, 5].map(k => mix(from.slice(k, k + 2), to.slice(k, k + 2), t)).join('')}`;
}

/** An axis of the parallel coordinates: each run's position from 0 to 1, labels and ticks. */
function parallelAxis(raw: (string | number | null)[]): {
  position: number[];
  labels: string[];
  ticks: [number, string][];
  low: number;
  high: number;
} {
  if (isNumeric(raw)) {
    const values = raw.map(Number);
    const [low, high] = [Math.min(...values), Math.max(...values)];
    const at = (v: number) => (high > low ? (v - low) / (high - low) : 0.5);
    const ticks: [number, string][] =
      high > low
        ? [
            [0, formatCell(low)],
            [0.5, formatCell((low + high) / 2)],
            [1, formatCell(high)]
          ]
        : [[0.5, formatCell(low)]];
    return { position: values.map(at), labels: values.map(v => formatCell(v)), ticks, low, high };
  }
  const labels = raw.map(v => (v === null || v === '' ? '(none)' : String(v)));
  const categories = [...new Set(labels)].sort();
  const at = (label: string) => (categories.length > 1 ? categories.indexOf(label) / (categories.length - 1) : 0.5);
  return { position: labels.map(at), labels, ticks: categories.map(c => [at(c), c]), low: 0, high: 1 };
}

/** Runs side by side: what differs, metric curves, parallel coordinates, code diff. */
export class CompareView extends MainView<CompareModel> {
  private _comparison: IComparison | null = null;
  private _onlyDiffers = true;
  private _tables = element('div', '', 'jp-mlops-compare-tables');
  private _chart = element('div', '', 'jp-mlops-chart');
  private _parallel = element('div', '', 'jp-mlops-chart');
  private _scatter = element('div', '', 'jp-mlops-chart jp-mlops-scatter');
  private _code = element('div', '', 'jp-mlops-code-diff');
  private _figures = element('div', '', 'jp-mlops-figures');
  private _imageUrls: string[] = [];
  private _axes: string[] = []; // parallel coordinates' axes: "params.x" / "metrics.y"
  private _codeRequest = 0; // answers to earlier code picks may arrive after the last one's

  constructor(
    model: CompareModel,
    private _commands: CommandRegistry
  ) {
    super(model, 'jp-mlops-CompareView');
  }

  protected render(): void {
    if (this.model.error !== null) {
      this.node.textContent = `Could not compare: ${this.model.error}`;
      return;
    }
    const comparison = this.model.data;
    if (comparison === null || JSON.stringify(comparison) === JSON.stringify(this._comparison)) {
      return; // drawn already: charts keep their zoom and the controls their choices
    }
    this._comparison = comparison;
    const toggle = element('label', '', 'jp-mlops-toggle');
    const box = element('input');
    box.type = 'checkbox';
    box.checked = this._onlyDiffers;
    box.addEventListener('change', () => {
      this._onlyDiffers = box.checked;
      this._renderTables();
    });
    toggle.append(box, document.createTextNode(' only what differs'));
    const primary = primaryMetric(comparison);
    this._axes = this._defaultAxes(comparison, primary);
    const controls = this._chartControls(comparison, primary);
    this.node.replaceChildren(
      element('h2', `Comparing ${comparison.runs.length} runs`),
      toggle,
      this._tables,
      element('h3', 'Metrics'),
      controls,
      this._chart,
      element('h3', 'Params → metric'),
      this._axesMenu(comparison),
      this._parallel,
      element('h3', 'Param against metric'),
      this._scatterControls(comparison, primary),
      this._scatter,
      element('h3', 'Code'),
      this._codeControls(comparison),
      this._code,
      element('h3', 'Figures'),
      this._figures
    );
    this._renderTables();
    void this._renderParallel();
    void this._renderFigures();
  }

  /** The params that differ (at most MAX_AXES - 1) and the primary metric. */
  private _defaultAxes(comparison: IComparison, primary: string | null): string[] {
    const params = comparison.params.filter(row => row.differs).map(row => `params.${row.key}`);
    return [...params.slice(0, primary ? MAX_AXES - 1 : MAX_AXES), ...(primary ? [`metrics.${primary}`] : [])];
  }

  private _axesMenu(comparison: IComparison): HTMLElement {
    const menu = element('details', '', 'jp-mlops-axes');
    menu.appendChild(element('summary', `Axes (${this._axes.length} of at most ${MAX_AXES})`));
    const fields = [
      ...comparison.params.map(row => `params.${row.key}`),
      ...comparison.metrics.map(row => `metrics.${row.key}`)
    ];
    for (const name of fields) {
      const label = element('label', '', 'jp-mlops-column-option');
      const box = element('input');
      box.type = 'checkbox';
      box.dataset.axis = name;
      box.checked = this._axes.includes(name);
      box.addEventListener('change', () => {
        this._axes = box.checked ? [...this._axes, name].slice(-MAX_AXES) : this._axes.filter(a => a !== name);
        menu.querySelectorAll<HTMLInputElement>('input[data-axis]').forEach(other => {
          other.checked = this._axes.includes(other.dataset.axis!);
        });
        menu.firstElementChild!.textContent = `Axes (${this._axes.length} of at most ${MAX_AXES})`;
        void this._renderParallel();
      });
      label.append(box, document.createTextNode(` ${name}`));
      menu.appendChild(label);
    }
    return menu;
  }

  /**
   * One axis per chosen param or metric (text params become categories), a line per run coloured by
   * the last metric axis. Drawn as SVG lines, not plotly's WebGL parcoords: a browser without a GPU
   * (a VM, a remote desktop) spent two seconds on twenty runs, with the page frozen.
   */
  private async _renderParallel(): Promise<void> {
    const comparison = this._comparison!;
    const runs = comparison.runs;
    const Plotly = await import('plotly.js-dist-min');
    if (this._axes.length === 0 || runs.length < 2) {
      Plotly.purge(this._parallel);
      this._parallel.replaceChildren(
        element('p', runs.length < 2 ? 'Compare two runs or more.' : 'Choose axes above.', 'jp-mlops-message')
      );
      return;
    }
    const axes = this._axes.map(axis => {
      const [section, ...rest] = axis.split('.');
      const key = rest.join('.');
      const row = (section === 'params' ? comparison.params : comparison.metrics).find(r => r.key === key);
      const raw = runs.map(run => row?.values[run.run_id] ?? null);
      return { key, ...parallelAxis(raw) };
    });
    const metricIndex = this._axes.map(a => a.startsWith('metrics.')).lastIndexOf(true);
    const colours = metricIndex >= 0 ? axes[metricIndex].position.map(viridis) : runs.map(() => '#1f77b4');
    const x = axes.map((_, i) => i);
    const traces: object[] = runs.map((run, r) => ({
      type: 'scatter',
      mode: 'lines+markers',
      x,
      y: axes.map(axis => axis.position[r]),
      line: { color: colours[r], width: 2 },
      marker: { size: 5, color: colours[r] },
      hoverinfo: 'text',
      hovertext: axes.map(() =>
        [plotlyText(run.name), ...axes.map(axis => `${plotlyText(axis.key)}: ${plotlyText(axis.labels[r])}`)].join(
          '<br>'
        )
      ),
      showlegend: false
    }));
    if (metricIndex >= 0) {
      const metric = axes[metricIndex];
      traces.push({
        type: 'scatter',
        mode: 'markers',
        x: [null],
        y: [null],
        hoverinfo: 'skip',
        showlegend: false,
        marker: {
          colorscale: 'Viridis',
          cmin: metric.low,
          cmax: metric.high,
          color: [metric.low],
          showscale: true,
          colorbar: { title: { text: plotlyText(shortLabel(metric.key)) }, thickness: 12 }
        }
      });
    }
    const annotations = axes.flatMap((axis, i) => [
      { x: i, y: 1.12, text: `<b>${plotlyText(shortLabel(axis.key))}</b>`, showarrow: false, textangle: 0 },
      ...axis.ticks.map(([position, label]) => ({
        x: i,
        y: position,
        text: plotlyText(shortLabel(label)),
        showarrow: false,
        xanchor: 'right',
        xshift: -4,
        font: { size: 10 }
      }))
    ]);
    const shapes = axes.map((_, i) => ({
      type: 'line',
      x0: i,
      x1: i,
      y0: 0,
      y1: 1,
      line: { color: '#888', width: 1 }
    }));
    if (!this._parallel.classList.contains('js-plotly-plot')) {
      this._parallel.replaceChildren(); // a message drawn before
    }
    await Plotly.react(
      this._parallel,
      traces,
      {
        height: 340,
        margin: { t: 40, l: 70, r: 20, b: 20 },
        xaxis: { visible: false, range: [-0.5, axes.length - 0.6] },
        yaxis: { visible: false, range: [-0.06, 1.2] },
        annotations,
        shapes,
        hovermode: 'closest'
      },
      { displaylogo: false, responsive: true }
    );
  }

  dispose(): void {
    this._imageUrls.forEach(url => URL.revokeObjectURL(url));
    super.dispose();
  }

  /** Each figure path a row, each run a column: the same chart of each run side by side. */
  private async _renderFigures(): Promise<void> {
    const comparison = this._comparison!;
    const figures = comparison.figures ?? {};
    const paths = [...new Set(Object.values(figures).flat())].sort();
    if (paths.length === 0) {
      this._figures.replaceChildren(element('p', 'These runs logged no figures.', 'jp-mlops-message'));
      return;
    }
    const table = element('table', '', 'jp-mlops-table jp-mlops-figure-table');
    table.appendChild(this._runsHeader());
    const drawing: Promise<void>[] = [];
    for (const path of paths) {
      const tr = element('tr');
      tr.appendChild(element('td', path.replace(/^figures\//, ''), 'jp-mlops-key'));
      for (const run of comparison.runs) {
        const cell = element('td', '', 'jp-mlops-figure');
        if ((figures[run.run_id] ?? []).includes(path)) {
          drawing.push(this._drawFigure(cell, run.run_id, path));
        }
        tr.appendChild(cell);
      }
      table.appendChild(tr);
    }
    this._figures.replaceChildren(table);
    await Promise.all(drawing);
  }

  private async _drawFigure(cell: HTMLElement, runId: string, path: string): Promise<void> {
    try {
      const blob = await this.model.figure(runId, path);
      if (path.endsWith('.json')) {
        const figure = JSON.parse(await blob.text());
        const Plotly = await import('plotly.js-dist-min');
        const chart = element('div', '', 'jp-mlops-chart');
        cell.appendChild(chart);
        const layout = {
          ...(figure.layout ?? {}),
          autosize: true,
          height: 280,
          margin: { t: 30, l: 40, r: 10, b: 30 }
        };
        await Plotly.react(chart, figure.data ?? [], layout, { displaylogo: false, responsive: true });
      } else {
        const url = URL.createObjectURL(blob);
        this._imageUrls.push(url);
        const image = element('img');
        image.src = url;
        image.alt = path;
        cell.appendChild(image);
      }
    } catch (error) {
      cell.textContent = (error as Error).message;
    }
  }

  private _renderTables(): void {
    const comparison = this._comparison!;
    const parts: HTMLElement[] = [];
    for (const [section, title] of SECTIONS) {
      const rows = (comparison[section] as IAligned[]).filter(r => r.differs || !this._onlyDiffers);
      parts.push(element('h3', title));
      if (rows.length === 0) {
        parts.push(element('p', this._onlyDiffers ? 'no differences' : 'none', 'jp-mlops-message'));
        continue;
      }
      const table = element('table', '', 'jp-mlops-table jp-mlops-compare-table');
      table.appendChild(this._runsHeader());
      for (const row of rows) {
        const tr = element('tr', '', row.differs ? 'jp-mlops-differs' : '');
        tr.dataset.key = row.key;
        tr.appendChild(element('td', row.key, 'jp-mlops-key'));
        for (const run of comparison.runs) {
          tr.appendChild(element('td', formatCell(row.values[run.run_id])));
        }
        if (section === 'datasets' && row.differs) {
          tr.appendChild(this._datasetDiffCell(row));
        }
        table.appendChild(tr);
      }
      parts.push(table);
    }
    this._tables.replaceChildren(...parts);
  }

  /** A header row naming each run (its id on hover), above a table with a column per run. */
  private _runsHeader(): HTMLElement {
    const head = element('tr');
    head.appendChild(element('th', ''));
    for (const run of this._comparison!.runs) {
      const th = head.appendChild(element('th'));
      const link = th.appendChild(element('button', run.name, 'jp-mlops-link'));
      link.title = `Open the page of ${run.name} (${run.run_id})`;
      link.addEventListener('click', () => void this._commands.execute(CommandIDs.openRun, { runId: run.run_id }));
    }
    return head;
  }

  /** A button that asks what changed between the first two runs' versions of a dataset. */
  private _datasetDiffCell(row: IAligned): HTMLElement {
    const cell = element('td');
    const hashes = this._comparison!.runs.map(run => row.values[run.run_id]).filter(Boolean) as string[];
    if (hashes.length < 2) {
      return cell;
    }
    const button = element('button', 'what changed', 'jp-mlops-dataset-diff');
    button.addEventListener('click', async () => {
      try {
        const diff = await this.model.datasetDiff(hashes[0], hashes[1]);
        const drifted = (diff.drift?.columns ?? []).filter(c => c.drift).map(c => c.column);
        cell.textContent =
          `rows ${diff.rows.left} → ${diff.rows.right}` +
          (diff.columns_added.length ? `; added ${diff.columns_added.join(', ')}` : '') +
          (diff.columns_removed.length ? `; removed ${diff.columns_removed.join(', ')}` : '') +
          (Object.keys(diff.dtype_changes).length
            ? `; types changed: ${Object.keys(diff.dtype_changes).join(', ')}`
            : '') +
          `; drifted: ${drifted.length ? drifted.join(', ') : 'none'}`;
      } catch (error) {
        cell.textContent = (error as Error).message;
      }
    });
    cell.appendChild(button);
    return cell;
  }

  private _chartControls(comparison: IComparison, primary: string | null): HTMLElement {
    const bar = element('div', '', 'jp-mlops-chart-controls');
    const metric = element('select');
    metric.setAttribute('aria-label', 'Metric');
    for (const row of comparison.metrics) {
      metric.appendChild(element('option', row.key)).value = row.key;
    }
    if (primary) {
      metric.value = primary;
    }
    const smoothing = element('input');
    smoothing.type = 'range';
    smoothing.min = '0';
    smoothing.max = '0.99';
    smoothing.step = '0.01';
    smoothing.value = '0';
    smoothing.setAttribute('aria-label', 'Smoothing');
    const log = element('input');
    log.type = 'checkbox';
    log.setAttribute('aria-label', 'Log scale');
    const redraw = () => void this._renderCharts(metric.value, Number(smoothing.value), log.checked);
    metric.addEventListener('change', redraw);
    smoothing.addEventListener('input', redraw);
    log.addEventListener('change', redraw);
    const logLabel = element('label', '');
    logLabel.append(log, document.createTextNode(' log scale'));
    bar.append(element('span', 'metric '), metric, element('span', ' smoothing '), smoothing, logLabel);
    if (comparison.metrics.length) {
      redraw();
    } else {
      this._chart.textContent = 'These runs logged no metrics.';
    }
    return bar;
  }

  /** A metric's curves, one per run; a metric logged once per run is a bar per run, not a dot at step 0. */
  private async _renderCharts(key: string, weight: number, logScale: boolean): Promise<void> {
    const comparison = this._comparison!;
    const [Plotly, curves] = await Promise.all([import('plotly.js-dist-min'), this.model.curves(key)]);
    const names = comparison.runs.map(run => plotlyText(run.name));
    const yaxis = { title: { text: plotlyText(key) }, type: logScale ? 'log' : 'linear', automargin: true };
    this._chart.dataset.kind = curves.every(curve => curve.steps.length <= 1) ? 'bars' : 'curves';
    if (this._chart.dataset.kind === 'bars') {
      const values = curves.map(curve => (curve.values.length ? Number(curve.values[0]) : null));
      await Plotly.react(
        this._chart,
        [
          {
            type: 'bar',
            x: names,
            y: values,
            text: values.map(v => (v === null ? '' : formatCell(v))),
            textposition: 'auto'
          }
        ],
        { height: 300, margin: { t: 30, l: 60, r: 20, b: 60 }, yaxis, xaxis: { automargin: true } },
        { displaylogo: false, responsive: true }
      );
      return;
    }
    const traces = curves.map((curve, i) => ({
      x: curve.steps,
      y: smooth(curve.values.map(Number), weight),
      name: names[i],
      mode: curve.steps.length > 50 ? 'lines' : 'lines+markers',
      type: 'scatter'
    }));
    const layout = {
      height: 340,
      margin: { t: 30, l: 60, r: 20, b: 40 },
      xaxis: { title: { text: 'step' } },
      yaxis
    };
    await Plotly.react(this._chart, traces, layout, { displaylogo: false, responsive: true });
  }

  private _scatterControls(comparison: IComparison, primary: string | null): HTMLElement {
    const bar = element('div', '', 'jp-mlops-chart-controls');
    const x = element('select');
    const y = element('select');
    x.setAttribute('aria-label', 'Scatter x');
    y.setAttribute('aria-label', 'Scatter y');
    for (const row of comparison.params) {
      x.appendChild(element('option', `params.${row.key}`)).value = `params.${row.key}`;
    }
    for (const row of comparison.metrics) {
      x.appendChild(element('option', `metrics.${row.key}`)).value = `metrics.${row.key}`;
      y.appendChild(element('option', row.key)).value = row.key;
    }
    // A param that varies says something against the metric; one that does not is a vertical line.
    const varying = comparison.params.find(row => row.differs);
    if (varying) {
      x.value = `params.${varying.key}`;
    }
    if (primary) {
      y.value = primary;
    }
    const redraw = () => void this._renderScatter(x.value, y.value);
    x.addEventListener('change', redraw);
    y.addEventListener('change', redraw);
    bar.append(element('span', 'x '), x, element('span', ' y '), y);
    if (x.value && y.value) {
      redraw();
    }
    return bar;
  }

  private async _renderScatter(xField: string, yKey: string): Promise<void> {
    const comparison = this._comparison!;
    const [section, ...rest] = xField.split('.');
    const xRow = (section === 'params' ? comparison.params : comparison.metrics).find(r => r.key === rest.join('.'));
    const yRow = comparison.metrics.find(r => r.key === yKey);
    if (!xRow || !yRow) {
      return;
    }
    const Plotly = await import('plotly.js-dist-min');
    const runs = comparison.runs;
    await Plotly.react(
      this._scatter,
      [
        {
          type: 'scatter',
          mode: 'markers+text',
          x: runs.map(run => xRow.values[run.run_id]),
          y: runs.map(run => yRow.values[run.run_id]),
          text: runs.map(run => plotlyText(run.name)),
          textposition: 'top center'
        }
      ],
      {
        height: 320,
        margin: { t: 20, l: 60, r: 20, b: 50 },
        xaxis: { title: { text: plotlyText(xField) } },
        yaxis: { title: { text: plotlyText(yKey) } }
      },
      { displaylogo: false, responsive: true }
    );
  }

  /** Any two runs' code side by side: a picker for each side. */
  private _codeControls(comparison: IComparison): HTMLElement {
    const bar = element('div', '', 'jp-mlops-chart-controls');
    const runs = comparison.runs;
    if (runs.length < 2) {
      this._code.textContent = 'Compare two runs or more to see their code side by side.';
      return bar;
    }
    const pickers = [0, 1].map(side => {
      const picker = element('select');
      picker.setAttribute('aria-label', side === 0 ? 'Code on the left' : 'Code on the right');
      runs.forEach(run => (picker.appendChild(element('option', run.name)).value = run.run_id));
      picker.value = runs[side].run_id;
      return picker;
    });
    const redraw = () => void this._renderCode(pickers[0].value, pickers[1].value);
    pickers.forEach(picker => picker.addEventListener('change', redraw));
    bar.append(pickers[0], element('span', '↔'), pickers[1]);
    redraw();
    return bar;
  }

  private async _renderCode(left: string, right: string): Promise<void> {
    const request = ++this._codeRequest;
    let diff;
    try {
      diff = await this.model.codeDiff(left, right);
    } catch (error) {
      if (request !== this._codeRequest) {
        return;
      }
      this._code.replaceChildren(element('p', (error as Error).message, 'jp-mlops-message jp-mlops-error'));
      return;
    }
    if (request !== this._codeRequest) {
      return; // a later pick is drawn (or will be)
    }
    if (diff.identical) {
      this._code.replaceChildren(element('p', 'The two cells ran the same code.', 'jp-mlops-message'));
      return;
    }
    const table = element('table', '', 'jp-mlops-diff');
    for (const row of diff.rows) {
      const tr = element('tr', '', `jp-mlops-diff-${row.op}`);
      tr.append(
        element('td', row.left_line ? String(row.left_line) : '', 'jp-mlops-line'),
        element('td', row.left ?? '', 'jp-mlops-code'),
        element('td', row.right_line ? String(row.right_line) : '', 'jp-mlops-line'),
        element('td', row.right ?? '', 'jp-mlops-code')
      );
      table.appendChild(tr);
    }
    this._code.replaceChildren(table);
  }
}
