/** What every panel and view shares: a model that fetches and signals, and the widgets that render one. */
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

/** A DOM element with text (never HTML) and a class. */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text = '',
  className = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) {
    node.className = className;
  }
  return node;
}

/** A number as a person reads it: four significant digits, strings ("NaN") as they are. */
export function formatNumber(value: number | string | null | undefined): string {
  if (value === undefined || value === null) {
    return '';
  }
  if (typeof value === 'string') {
    return value;
  }
  return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(3)
    : String(Number(value.toPrecision(4)));
}

/** A label as plotly shows it: plotly reads `<a>`, `<b>`… in labels as markup, so names are escaped. */
export function plotlyText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Save bytes as a file in the browser's downloads. */
export function download(blob: Blob, filename: string): void {
  const link = element('a');
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  link.click();
  window.setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

/** A size in bytes as a person reads it. */
export function formatBytes(size: number | null | undefined): string {
  if (size === null || size === undefined) {
    return '';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

/** A duration in milliseconds, short enough for a narrow column ("…" while it runs). */
export function formatDuration(ms: number | null): string {
  if (ms === null) {
    return '…';
  }
  if (ms < 1000) {
    return `${ms}ms`;
  }
  if (ms < 60_000) {
    return `${(ms / 1000).toFixed(1)}s`;
  }
  if (ms < 3_600_000) {
    return `${Math.floor(ms / 60_000)}m ${Math.floor((ms % 60_000) / 1000)}s`;
  }
  return `${Math.floor(ms / 3_600_000)}h ${Math.floor((ms % 3_600_000) / 60_000)}m`;
}

const STATUS_ICONS: Record<string, string> = { FINISHED: '✓', RUNNING: '◌', FAILED: '✗', KILLED: '■' };

/** A run's status as a word and an icon, coloured (never colour alone). */
export function statusBadge(status: string): HTMLElement {
  const badge = element('span', '', `jp-mlops-status jp-mlops-status-${status.toLowerCase()}`);
  badge.append(element('span', STATUS_ICONS[status] ?? '?', 'jp-mlops-status-icon'), document.createTextNode(status));
  badge.title = status;
  return badge;
}

/**
 * Data fetched from the server and refreshed on a timer while someone looks at it (`intervalMs`
 * 0: fetched when shown, no timer). A refresh asked for during a fetch fetches once more after it,
 * since what is in flight may be stale (a new filter, say).
 */
export abstract class PollingModel<T> {
  private _error: string | null = null;
  private _loaded = false;
  private _timer: number | null = null;
  private _inFlight = false;
  private _again = false;
  private _changed = new Signal<this, void>(this);

  constructor(
    protected _data: T,
    readonly intervalMs: number
  ) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get data(): T {
    return this._data;
  }

  /** False until the first fetch has answered (views show "Loading…" until then). */
  get loaded(): boolean {
    return this._loaded;
  }

  get error(): string | null {
    return this._error;
  }

  /** One request for fresh data; errors become `error`, shown by the view. */
  protected abstract fetch(): Promise<T>;

  async refresh(): Promise<void> {
    if (this._inFlight) {
      this._again = true;
      return;
    }
    this._inFlight = true;
    try {
      this._data = await this.fetch();
      this._error = null;
    } catch (error) {
      this._error = (error as Error).message;
    } finally {
      this._inFlight = false;
      this._loaded = true;
    }
    if (this._again) {
      this._again = false;
      return this.refresh();
    }
    this._changed.emit();
  }

  start(): void {
    if (this._timer === null) {
      void this.refresh();
      if (this.intervalMs > 0) {
        this._timer = window.setInterval(() => void this.refresh(), this.intervalMs);
      }
    }
  }

  stop(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }
}

/** A widget that renders a model and keeps it fresh only while it is shown. */
export abstract class ModelWidget<M extends PollingModel<unknown>> extends Widget {
  constructor(readonly model: M) {
    super();
    model.changed.connect(() => this.render(), this);
  }

  protected abstract render(): void;

  protected onAfterAttach(msg: Message): void {
    if (this.isVisible) {
      this.model.start();
    }
  }

  protected onBeforeDetach(msg: Message): void {
    this.model.stop();
  }

  protected onAfterShow(msg: Message): void {
    this.model.start();
  }

  protected onAfterHide(msg: Message): void {
    this.model.stop();
  }

  dispose(): void {
    this.model.stop();
    super.dispose();
  }
}

/** A sidebar panel: a title, optional controls, a message line and a table. */
export abstract class SidebarPanel<M extends PollingModel<unknown>> extends ModelWidget<M> {
  protected table: HTMLTableElement;
  protected message: HTMLElement;

  constructor(model: M, title: string, tableClass: string, controls: HTMLElement[] = []) {
    super(model);
    this.addClass('jp-mlops-Panel');
    const header = element('div', '', 'jp-mlops-header');
    header.appendChild(element('th', title));
    this.message = element('div', '', 'jp-mlops-message');
    this.table = element('table', '', `jp-mlops-table ${tableClass}`);
    const scroller = element('div', '', 'jp-mlops-scroll');
    scroller.appendChild(this.table);
    this.node.append(header, ...controls, this.message, scroller);
  }

  protected showMessage(text: string, isError: boolean): void {
    this.message.textContent = text;
    this.message.classList.toggle('jp-mlops-error', isError);
  }
}

/** A view in the main area (one run, a comparison, a model, a report, a deployment). */
export abstract class MainView<M extends PollingModel<unknown>> extends ModelWidget<M> {
  private _resizing: number | null = null;

  constructor(model: M, className: string) {
    super(model);
    this.addClass('jp-mlops-MainView');
    this.addClass(className);
    this.node.textContent = 'Loading…';
  }

  /** Charts follow the view's width (a sidebar opened or dragged, not only the window resized). */
  protected onResize(msg: Widget.ResizeMessage): void {
    if (this._resizing !== null) {
      window.clearTimeout(this._resizing);
    }
    this._resizing = window.setTimeout(async () => {
      this._resizing = null;
      const charts = Array.from(this.node.querySelectorAll<HTMLElement>('.js-plotly-plot'));
      if (charts.length) {
        const Plotly = await import('plotly.js-dist-min');
        charts.forEach(chart => void Plotly.Plots.resize(chart));
      }
    }, 100);
  }
}
