import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

/** Shows a widget in the main area, in a closable tab. */
export type OpenInMain = (content: Widget, id: string, label: string) => void;

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

/** Data fetched from the server and refreshed on a timer while someone looks at it. */
export abstract class PollingModel<T> {
  private _error: string | null = null;
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

  get error(): string | null {
    return this._error;
  }

  /** One request for fresh data; errors become `error`, shown by the view. */
  protected abstract fetch(): Promise<T>;

  async refresh(): Promise<void> {
    if (this._inFlight) {
      this._again = true; // what is being fetched may be stale (a new filter, say): fetch once more after
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

/** A sidebar panel: a title, optional controls, a message line and a table; polls while shown. */
export abstract class SidebarPanel<M extends PollingModel<unknown>> extends Widget {
  protected table: HTMLTableElement;
  protected message: HTMLElement;

  constructor(
    readonly model: M,
    title: string,
    tableClass: string,
    controls: HTMLElement[] = []
  ) {
    super();
    this.addClass('jp-mlops-Panel');
    const header = element('div', '', 'jp-mlops-header');
    header.appendChild(element('th', title));
    this.message = element('div', '', 'jp-mlops-message');
    this.table = element('table', '', `jp-mlops-table ${tableClass}`);
    const scroller = element('div', '', 'jp-mlops-scroll');
    scroller.appendChild(this.table);
    this.node.append(header, ...controls, this.message, scroller);
    model.changed.connect(() => this.render(), this);
  }

  protected abstract render(): void;

  protected showMessage(text: string, isError: boolean): void {
    this.message.textContent = text;
    this.message.classList.toggle('jp-mlops-error', isError);
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
