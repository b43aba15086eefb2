import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from './request';

export interface IRunRow {
  run_id: string;
  name: string;
  experiment: string;
  status: string;
  user: string;
  start_time: number;
  end_time: number | null;
  duration_ms: number | null;
  params: Record<string, string>;
  metrics: Record<string, number | string>;
  tags: Record<string, string>;
}

export interface IRunsPage {
  runs: IRunRow[];
  param_keys: string[];
  metric_keys: string[];
}

/** The runs list and its polling; views only render it. */
export class RunsModel {
  private _page: IRunsPage = { runs: [], param_keys: [], metric_keys: [] };
  private _error: string | null = null;
  private _filter = '';
  private _timer: number | null = null;
  private _changed = new Signal<this, void>(this);
  private _inFlight = false;

  constructor(readonly intervalMs = 2000) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get page(): IRunsPage {
    return this._page;
  }

  get error(): string | null {
    return this._error;
  }

  get filter(): string {
    return this._filter;
  }

  set filter(value: string) {
    this._filter = value;
    void this.refresh();
  }

  async refresh(): Promise<void> {
    if (this._inFlight) {
      return;
    }
    this._inFlight = true;
    const query = new URLSearchParams({ limit: '100' });
    if (this._filter.trim()) {
      query.set('filter', this._filter);
    }
    try {
      this._page = await requestAPI<IRunsPage>(`runs?${query.toString()}`);
      this._error = null;
    } catch (error) {
      this._error = (error as Error).message;
    } finally {
      this._inFlight = false;
    }
    this._changed.emit();
  }

  start(): void {
    if (this._timer === null) {
      void this.refresh();
      this._timer = window.setInterval(() => void this.refresh(), this.intervalMs);
    }
  }

  stop(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }
}
