import { IRenderMime } from '@jupyterlab/rendermime';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { element, formatNumber, statusBadge } from '../base';
import { CommandIDs } from '../tokens';

/** What `ml.get_run(id)` shows in a notebook: this MIME type, drawn by the lab, with HTML beside it. */
export const RUN_MIME = 'application/vnd.mlops-lab.run+json';

interface IRunOutput {
  run_id: string;
  name: string;
  status: string;
  experiment: string;
  metrics: Record<string, number | string>;
  params: Record<string, string>;
}

/** A run in a notebook's output: its summary and a button that opens its page. Drawn from what the
 * output holds, so a saved notebook shows it with no kernel. */
export class RunOutput extends Widget implements IRenderMime.IRenderer {
  constructor(private _commands: CommandRegistry) {
    super();
    this.addClass('jp-mlops-RunOutput');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const run = model.data[RUN_MIME] as unknown as IRunOutput;
    const title = element('div', '', 'jp-mlops-run-output-title');
    const open = element('button', 'Open run page', 'jp-mlops-card-open');
    open.addEventListener('click', () => void this._commands.execute(CommandIDs.openRun, { runId: run.run_id }));
    title.append(element('strong', run.name), statusBadge(run.status), element('span', run.experiment), open);
    const values = [
      ...Object.entries(run.metrics ?? {}).map(([k, v]) => `${k} ${formatNumber(v)}`),
      ...Object.entries(run.params ?? {}).map(([k, v]) => `${k}=${v}`)
    ];
    this.node.replaceChildren(title, element('div', values.join(' · '), 'jp-mlops-run-output-values'));
  }
}

export function runOutputFactory(commands: CommandRegistry): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [RUN_MIME],
    defaultRank: 10, // before text/html: the lab draws the live card, other readers the HTML
    createRenderer: () => new RunOutput(commands)
  };
}
