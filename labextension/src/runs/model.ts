import { APIError, IRunsPage, listExperiments, listRuns } from '../api';
import { PollingModel } from '../base';

/** How many of the latest runs the panel holds; the table renders only the rows in view. */
export const PAGE_SIZE = 1000;

/** The latest runs, filtered with the run filter grammar; views only render it. */
export class RunsModel extends PollingModel<IRunsPage> {
  private _filter = '';
  private _experiment = ''; // '' for every experiment
  private _orderBy: string | null = null; // e.g. "metrics.acc DESC"; null: the latest first
  private _experiments: string[] = [];
  private _rejected: APIError | null = null; // the server's answer to this filter, if it refused it

  constructor(intervalMs = 2000) {
    super({ runs: [], param_keys: [], metric_keys: [] }, intervalMs);
  }

  get filter(): string {
    return this._filter;
  }

  set filter(value: string) {
    this._filter = value;
    this._rejected = null;
    void this.refresh();
  }

  get experiment(): string {
    return this._experiment;
  }

  set experiment(value: string) {
    this._experiment = value;
    void this.refresh();
  }

  get orderBy(): string | null {
    return this._orderBy;
  }

  set orderBy(value: string | null) {
    this._orderBy = value;
    this._rejected = null;
    void this.refresh();
  }

  /** The experiments' names, as of the last poll (for the selector). */
  get experiments(): string[] {
    return this._experiments;
  }

  /** A filter the server refused (a 4xx) is not sent again on every poll, and leaves no stale rows. */
  protected async fetch(): Promise<IRunsPage> {
    if (this._rejected !== null) {
      throw this._rejected;
    }
    try {
      const [page, experiments] = await Promise.all([
        listRuns({
          limit: PAGE_SIZE,
          filter: this._filter,
          experiment: this._experiment || undefined,
          orderBy: this._orderBy ? [this._orderBy] : []
        }),
        listExperiments()
      ]);
      this._experiments = experiments.map(e => e.name).sort();
      return page;
    } catch (error) {
      if (error instanceof APIError && error.status >= 400 && error.status < 500) {
        this._rejected = error;
      }
      throw error;
    }
  }
}
