import { ILayoutRestorer, IRouter, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { addCommands } from './commands';
import { CommandIDs } from './tokens';
import { DriftReportsModel } from './drift/model';
import { DriftPanel } from './drift/panel';
import { PipelinesModel } from './pipelines/model';
import { PipelinesPanel } from './pipelines/panel';
import { ModelsModel } from './registry/model';
import { ModelsPanel } from './registry/panel';
import { runOutputFactory } from './run/output';
import { RunsModel } from './runs/model';
import { RunsPanel } from './runs/panel';
import { DeploymentsModel } from './serving/model';
import { ServingPanel } from './serving/panel';
import { TeamModel } from './team/model';
import { TeamPanel } from './team/panel';

const DRIFT_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" fill="#616161" d="M3 17c3-6 5-9 7-9s3 5 5 5 3-3 6-7l1.5 1C19 12 17.5 15 15 15s-3-5-5-5-4 4-5.5 8H3z"/></svg>`;

export const driftIcon = new LabIcon({ name: 'mlops-lab:drift', svgstr: DRIFT_SVG });

const MODELS_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" fill="#616161" d="M12 2 3 7v10l9 5 9-5V7l-9-5zm0 2.3L18.7 8 12 11.7 5.3 8 12 4.3zM5 9.7l6 3.3v6.6l-6-3.3V9.7zm8 9.9V13l6-3.3v6.6l-6 3.3z"/></svg>`;

export const modelsIcon = new LabIcon({ name: 'mlops-lab:models', svgstr: MODELS_SVG });

const SERVING_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" fill="#616161" d="M4 4h16v6H4V4zm2 2v2h2V6H6zm-2 8h16v6H4v-6zm2 2v2h2v-2H6zm5-10h7v2h-7V6zm0 10h7v2h-7v-2z"/></svg>`;

export const servingIcon = new LabIcon({ name: 'mlops-lab:serving', svgstr: SERVING_SVG });

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" fill="#616161" d="M3 3h2v16h16v2H3V3zm4 12 4-5 3 3 5-7 1.6 1.2L14.3 16 11 13l-2.5 3.2L7 15z"/></svg>`;

export const mlopsIcon = new LabIcon({ name: 'mlops-lab:icon', svgstr: ICON_SVG });

const TEAM_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" fill="#616161" d="M9 11a4 4 0 1 1 0-8 4 4 0 0 1 0 8zm8 0a3 3 0 1 1 0-6 3 3 0 0 1 0 6zM1 20c0-4 3.6-7 8-7s8 3 8 7H1zm17 0c0-2-.7-3.8-2-5.2 3.6.3 7 2.4 7 5.2h-5z"/></svg>`;

export const teamIcon = new LabIcon({ name: 'mlops-lab:team', svgstr: TEAM_SVG });

const PIPELINES_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" fill="#616161" d="M3 3h7v5H3V3zm11 0h7v5h-7V3zM8.5 16h7v5h-7v-5zM6 8h1.5v3.2l4.5 2.6 4.5-2.6V8H18v4.1l-5.25 3V16h-1.5v-.9L6 12.1V8z"/></svg>`;

export const pipelinesIcon = new LabIcon({ name: 'mlops-lab:pipelines', svgstr: PIPELINES_SVG });

const OPEN_RUN_FROM_URL = 'mlops-lab:open-run-from-url';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mlops-lab:plugin',
  description: 'MLOps sidebar: runs, drift reports, models, serving, pipelines and the team.',
  autoStart: true,
  optional: [ILayoutRestorer, IRenderMimeRegistry, ICommandPalette, IRouter],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    rendermime: IRenderMimeRegistry | null,
    palette: ICommandPalette | null,
    router: IRouter | null
  ) => {
    addCommands(app, restorer, rendermime);
    const { commands } = app;
    palette?.addItem({ command: CommandIDs.openRun, category: 'MLOps' });
    // <lab>/lab?mlops-run=<id> opens that run's page: where the links MLflow's client prints lead.
    commands.addCommand(OPEN_RUN_FROM_URL, {
      execute: async args => {
        const runId = new URLSearchParams(String(args.search ?? '')).get('mlops-run');
        if (runId && /^[0-9a-f]{32}$/.test(runId)) {
          await app.restored;
          await commands.execute(CommandIDs.openRun, { runId });
        }
      }
    });
    router?.register({ command: OPEN_RUN_FROM_URL, pattern: /[?&]mlops-run=[0-9a-f]{32}/ });
    rendermime?.addFactory(runOutputFactory(commands));
    // The sidebar panels, top to bottom; each remembers whether it was open.
    const panels: [Widget, string, LabIcon, string][] = [
      [new RunsPanel(new RunsModel(), commands), 'mlops-lab-runs', mlopsIcon, 'MLOps: runs'],
      [new DriftPanel(new DriftReportsModel(), commands), 'mlops-lab-drift', driftIcon, 'MLOps: drift reports'],
      [new ModelsPanel(new ModelsModel(), commands), 'mlops-lab-models', modelsIcon, 'MLOps: models'],
      [new ServingPanel(new DeploymentsModel(), commands), 'mlops-lab-serving', servingIcon, 'MLOps: serving'],
      [new PipelinesPanel(new PipelinesModel(), commands), 'mlops-lab-pipelines', pipelinesIcon, 'MLOps: pipelines'],
      [new TeamPanel(new TeamModel()), 'mlops-lab-team', teamIcon, 'MLOps: team']
    ];
    panels.forEach(([widget, id, icon, caption], i) => {
      widget.id = id;
      widget.title.icon = icon;
      widget.title.caption = caption;
      app.shell.add(widget, 'left', { rank: 850 + i });
      restorer?.add(widget, id);
    });
  }
};

export default plugin;
