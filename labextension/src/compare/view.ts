import { IAligned, IComparison } from '../api';
import { element, MainView, plotlyText } from '../base';
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

  constructor(model: CompareModel) {
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
    const controls = this._chartControls(comparison);
    this.node.replaceChildren(
      element('h2', `Comparing ${comparison.runs.length} runs`),
      toggle,
      this._tables,
      element('h3', 'Metric curves'),
      controls,
      this._chart,
      element('h3', 'Params → metric'),
      this._parallel,
      element('h3', 'Param against metric'),
      this._scatterControls(comparison),
      this._scatter,
      element('h3', `Code: ${comparison.runs[0].name} ↔ ${comparison.runs[comparison.runs.length > 1 ? 1 : 0].name}`),
      this._code,
      element('h3', 'Figures'),
      this._figures
    );
    this._renderTables();
    void this._renderCode();
    void this._renderFigures();
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
      head.appendChild(element('th', run.name)).title = run.run_id;
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

  private _chartControls(comparison: IComparison): HTMLElement {
    const bar = element('div', '', 'jp-mlops-chart-controls');
    const metric = element('select');
    metric.setAttribute('aria-label', 'Metric');
    for (const row of comparison.metrics) {
      metric.appendChild(element('option', row.key)).value = row.key;
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

  private async _renderCharts(key: string, weight: number, logScale: boolean): Promise<void> {
    const comparison = this._comparison!;
    const [Plotly, curves] = await Promise.all([import('plotly.js-dist-min'), this.model.curves(key)]);
    const traces = curves.map((curve, i) => ({
      x: curve.steps,
      y: smooth(curve.values.map(Number), weight),
      name: plotlyText(comparison.runs[i].name),
      mode: 'lines+markers',
      type: 'scatter'
    }));
    const layout = {
      height: 340,
      margin: { t: 30, l: 60, r: 20, b: 40 },
      xaxis: { title: { text: 'step' } },
      yaxis: { title: { text: key }, type: logScale ? 'log' : 'linear' }
    };
    await Plotly.react(this._chart, traces, layout, { displaylogo: false, responsive: true });
    const numeric = comparison.params.filter(row =>
      comparison.runs.every(run => row.values[run.run_id] !== null && !Number.isNaN(Number(row.values[run.run_id])))
    );
    const target = comparison.metrics.find(row => row.key === key);
    const dimensions = numeric.map(row => ({
      label: row.key,
      values: comparison.runs.map(run => Number(row.values[run.run_id]))
    }));
    const colour = target ? comparison.runs.map(run => Number(target.values[run.run_id])) : [];
    if (target) {
      dimensions.push({ label: key, values: colour });
    }
    await Plotly.react(
      this._parallel,
      [{ type: 'parcoords', dimensions, line: { color: colour, colorscale: 'Viridis', showscale: true } }],
      { height: 320, margin: { t: 40, l: 60, r: 60, b: 20 } },
      { displaylogo: false, responsive: true }
    );
  }

  private _scatterControls(comparison: IComparison): HTMLElement {
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
        xaxis: { title: { text: xField } },
        yaxis: { title: { text: yKey } }
      },
      { displaylogo: false, responsive: true }
    );
  }

  private async _renderCode(): Promise<void> {
    const runs = this._comparison!.runs;
    if (runs.length < 2) {
      this._code.textContent = 'Pick two runs to see their code side by side.';
      return;
    }
    const diff = await this.model.codeDiff(runs[0].run_id, runs[1].run_id);
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
