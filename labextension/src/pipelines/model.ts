import { executedNotebook, getPipeline, IPipelineEntry, IPipelineView, listPipelines, runPipeline } from '../api';
import { PollingModel } from '../base';

const LIST_MS = 15_000;

export interface IPipelinesState {
  pipelines: IPipelineEntry[];
  view: IPipelineView | null; // the selected pipeline's DAG and states
}

/** The pipelines under the lab's folder and the selected one's steps, polled while visible. */
export class PipelinesModel extends PollingModel<IPipelinesState> {
  private _selected: string | null = null;
  private _listedAt = 0; // the folder walk is redone every LIST_MS; the chosen pipeline's state every poll

  constructor(intervalMs = 2000) {
    super({ pipelines: [], view: null }, intervalMs);
  }

  get selected(): string | null {
    return this._selected;
  }

  select(path: string): void {
    this._selected = path;
    void this.refresh();
  }

  protected async fetch(): Promise<IPipelinesState> {
    let pipelines = this.data.pipelines;
    if (Date.now() - this._listedAt > LIST_MS || !pipelines.length) {
      pipelines = await listPipelines();
      this._listedAt = Date.now();
    }
    if (!pipelines.some(p => p.path === this._selected)) {
      this._selected = (pipelines.find(p => p.error === null) ?? pipelines[0])?.path ?? null;
    }
    const entry = pipelines.find(p => p.path === this._selected);
    const view = entry && entry.error === null ? await getPipeline(entry.path) : null;
    return { pipelines, view };
  }

  /** Where the notebook a step's run executed can be opened (written under the pipeline's `executed/`). */
  executedNotebook(runId: string): Promise<string> {
    return executedNotebook(this._selected ?? '', runId);
  }

  /** Run the selected pipeline (or one step of it, with what it needs); the poll shows progress. */
  async run(step: string | null = null, force = false): Promise<void> {
    if (this._selected === null) {
      return;
    }
    try {
      await runPipeline(this._selected, step, force);
    } finally {
      await this.refresh();
    }
  }
}
