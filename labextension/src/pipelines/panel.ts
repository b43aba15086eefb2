import { notebookIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';

import { IPipelineStep, IPipelineView } from '../api';
import { element, formatDuration, SidebarPanel } from '../base';
import { CommandIDs } from '../tokens';
import { PipelinesModel } from './model';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_WIDTH = 80;
const NODE_HEIGHT = 38;
const GAP_X = 8;
const GAP_Y = 26;

const STATE_WORDS: Record<IPipelineStep['state'], string> = {
  cached: 'cached',
  done: 'done',
  restore: 'to restore',
  stale: 'stale',
  running: 'running…',
  failed: 'failed',
  blocked: 'blocked'
};

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  Object.entries(attributes).forEach(([key, value]) => node.setAttribute(key, String(value)));
  return node;
}

/** Where each step sits: its layer is one below the deepest step it runs after; file order within a layer. */
export function layout(view: IPipelineView): Map<string, { x: number; y: number }> {
  const parents = new Map<string, string[]>(view.steps.map(s => [s.step, []]));
  view.edges.forEach(([from, to]) => parents.get(to)?.push(from));
  const layer = new Map<string, number>();
  view.steps.forEach(s => layer.set(s.step, Math.max(-1, ...parents.get(s.step)!.map(p => layer.get(p) ?? 0)) + 1));
  const rows: string[][] = [];
  view.steps.forEach(s => (rows[layer.get(s.step)!] ??= []).push(s.step));
  const widest = Math.max(...rows.map(r => r.length));
  const places = new Map<string, { x: number; y: number }>();
  rows.forEach((row, depth) => {
    const offset = ((widest - row.length) * (NODE_WIDTH + GAP_X)) / 2;
    row.forEach((name, i) =>
      places.set(name, { x: offset + i * (NODE_WIDTH + GAP_X), y: depth * (NODE_HEIGHT + GAP_Y) })
    );
  });
  return places;
}

/** The sidebar's pipelines: the DAG of the one chosen with each step's state, runs from here, progress live. */
export class PipelinesPanel extends SidebarPanel<PipelinesModel> {
  private _choice = element('select', '', 'jp-mlops-pipeline-choice');
  private _force = element('input');
  private _runButton = element('button', '▶ Run', 'jp-mlops-button jp-mod-styled jp-mod-accept');
  private _dag = element('div', '', 'jp-mlops-dag');

  constructor(
    model: PipelinesModel,
    private _commands: CommandRegistry
  ) {
    const controls = element('div', '', 'jp-mlops-pipeline-controls');
    super(model, 'Pipelines', 'jp-mlops-pipeline-steps', [controls]);
    this.addClass('jp-mlops-PipelinesPanel');
    this._choice.title = 'pipeline.yaml files under the lab’s folder';
    this._choice.addEventListener('change', () => this.model.select(this._choice.value));
    this._force.type = 'checkbox';
    const force = element('label', '', 'jp-mlops-force');
    force.title = 'Run every step, even those cached';
    force.append(this._force, document.createTextNode('force'));
    this._runButton.title = 'Run the steps that are stale (mlops-lab pipeline run)';
    this._runButton.addEventListener('click', () => void this.model.run(null, this._force.checked));
    controls.append(this._choice, this._runButton, force);
    this.table.parentElement!.insertBefore(this._dag, this.table);
  }

  protected render(): void {
    const { pipelines, view } = this.model.data;
    const chosen = pipelines.find(p => p.path === this.model.selected);
    this._choice.title = chosen ? chosen.path : 'pipeline.yaml files under the lab’s folder';
    this._choice.replaceChildren(
      ...pipelines.map(p => {
        const option = element('option', p.name ?? `${p.path} (cannot run)`);
        option.title = p.path;
        option.value = p.path;
        option.selected = p.path === this.model.selected;
        return option;
      })
    );
    const launch = view?.launch ?? null;
    const running = launch?.running || view?.steps.some(s => s.state === 'running');
    this._runButton.disabled = !view || Boolean(running);
    let message = '';
    let isError = false;
    if (this.model.error) {
      [message, isError] = [this.model.error, true];
    } else if (!this.model.loaded) {
      message = 'Loading…';
    } else if (pipelines.length === 0) {
      message = 'No pipeline.yaml under the lab’s folder: docs/pipelines.md shows one.';
    } else if (chosen?.error) {
      [message, isError] = [chosen.error, true];
    } else if (running) {
      message = `Running${launch?.step ? ` ${launch.step}` : ''}… (the steps below update as they finish)`;
    } else if (launch && launch.exit_code) {
      const lines = launch.output.trim().split('\n');
      [message, isError] = [lines.slice(-3).join('\n'), true];
    } else if (view) {
      const toRun = view.steps.filter(s => !['cached', 'done'].includes(s.state)).length;
      message = toRun ? `${toRun} of ${view.steps.length} steps to run` : 'Up to date: every step is cached';
    }
    this.showMessage(message, isError);
    this._drawDag(view);
    const head = element('tr');
    ['State', 'Step', 'Why', ''].forEach(title => head.appendChild(element('th', title)));
    this.table.replaceChildren(head, ...(view?.steps ?? []).map(step => this._row(step, Boolean(running))));
  }

  private _open(step: IPipelineStep): void {
    if (step.run_id) {
      void this._commands.execute(CommandIDs.openRun, { runId: step.run_id });
    }
  }

  private async _openExecuted(runId: string): Promise<void> {
    try {
      const path = await this.model.executedNotebook(runId);
      await this._commands.execute('docmanager:open', { path });
    } catch (error) {
      this.showMessage((error as Error).message, true);
    }
  }

  private _drawDag(view: IPipelineView | null): void {
    if (!view) {
      this._dag.replaceChildren();
      return;
    }
    const places = layout(view);
    const width = Math.max(...[...places.values()].map(p => p.x)) + NODE_WIDTH;
    const height = Math.max(...[...places.values()].map(p => p.y)) + NODE_HEIGHT;
    const root = svg('svg', { viewBox: `-2 -2 ${width + 4} ${height + 4}`, role: 'img' });
    root.style.maxWidth = `${width + 4}px`;
    const marker = svg('marker', {
      id: 'jp-mlops-arrow',
      viewBox: '0 0 8 8',
      refX: 8,
      refY: 4,
      markerWidth: 6,
      markerHeight: 6,
      orient: 'auto'
    });
    marker.appendChild(svg('path', { d: 'M0,0 L8,4 L0,8 z', class: 'jp-mlops-dag-arrow' }));
    const defs = svg('defs', {});
    defs.appendChild(marker);
    root.appendChild(defs);
    view.edges.forEach(([from, to]) => {
      const a = places.get(from)!;
      const b = places.get(to)!;
      const [x1, y1, x2, y2] = [a.x + NODE_WIDTH / 2, a.y + NODE_HEIGHT, b.x + NODE_WIDTH / 2, b.y];
      const bend = (y2 - y1) / 2;
      root.appendChild(
        svg('path', {
          d: `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`,
          class: 'jp-mlops-dag-edge',
          'marker-end': 'url(#jp-mlops-arrow)'
        })
      );
    });
    view.steps.forEach(step => {
      const { x, y } = places.get(step.step)!;
      const node = svg('g', {
        class: `jp-mlops-dag-node jp-mlops-step-${step.state}`,
        transform: `translate(${x},${y})`
      });
      node.dataset.step = step.step;
      node.appendChild(svg('rect', { width: NODE_WIDTH, height: NODE_HEIGHT, rx: 5 }));
      const name = svg('text', { x: 6, y: 15, class: 'jp-mlops-dag-name' });
      name.textContent = step.step.length > 10 ? `${step.step.slice(0, 9)}…` : step.step;
      const state = svg('text', { x: 6, y: 30, class: 'jp-mlops-dag-state' });
      state.textContent = [
        STATE_WORDS[step.state],
        step.seconds !== null ? formatDuration(Math.round(step.seconds * 1000)) : ''
      ]
        .filter(Boolean)
        .join(' · ');
      const tip = svg('title', {});
      tip.textContent = [`${step.step}: ${step.label}`, step.error ?? '', ...step.reasons].filter(Boolean).join('\n');
      node.append(tip, name, state);
      node.addEventListener('click', () => this._open(step));
      root.appendChild(node);
    });
    this._dag.replaceChildren(root);
  }

  private _row(step: IPipelineStep, running: boolean): HTMLElement {
    const row = element('tr');
    row.dataset.step = step.step;
    row.title = step.run_id ? 'Open the step’s run (its executed notebook is among its artifacts)' : '';
    const state = element('td', STATE_WORDS[step.state], `jp-mlops-step-word jp-mlops-step-${step.state}`);
    const name = element('td', step.step, 'jp-mlops-step-name');
    name.title = step.label;
    const why =
      step.error ??
      (step.reasons.join('; ') || (step.seconds !== null ? formatDuration(Math.round(step.seconds * 1000)) : ''));
    const actions = element('td', '', 'jp-mlops-step-actions');
    if (step.notebook) {
      const open = element('button', '✎', 'jp-mlops-icon-button');
      open.title = `Open ${step.notebook}`;
      open.addEventListener('click', event => {
        event.stopPropagation();
        void this._commands.execute('docmanager:open', { path: step.notebook });
      });
      actions.appendChild(open);
    }
    if (step.notebook && step.run_id) {
      const executed = element('button', '', 'jp-mlops-icon-button jp-mlops-executed');
      executed.appendChild(notebookIcon.element({ tag: 'span', height: '14px', width: '14px' }));
      executed.title = 'Open the notebook as this step’s run executed it (outputs, injected params)';
      executed.addEventListener('click', event => {
        event.stopPropagation();
        void this._openExecuted(step.run_id!);
      });
      actions.appendChild(executed);
    }
    const run = element('button', '▶', 'jp-mlops-icon-button');
    run.title = `Run ${step.step} (and the steps it needs, if stale)`;
    run.disabled = running;
    run.addEventListener('click', event => {
      event.stopPropagation();
      void this.model.run(step.step, this._force.checked);
    });
    actions.appendChild(run);
    row.append(state, name, element('td', why, 'jp-mlops-step-why'), actions);
    row.addEventListener('click', () => this._open(step));
    return row;
  }
}
