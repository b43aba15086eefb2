import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { LabIcon } from '@jupyterlab/ui-components';

import { RunsModel } from './model';
import { RunsPanel } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" fill="#616161" d="M3 3h2v16h16v2H3V3zm4 12 4-5 3 3 5-7 1.6 1.2L14.3 16 11 13l-2.5 3.2L7 15z"/></svg>`;

export const mlopsIcon = new LabIcon({ name: 'mlops-lab:icon', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mlops-lab:plugin',
  description: 'MLOps sidebar: the runs tracked from notebooks.',
  autoStart: true,
  optional: [ILayoutRestorer],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null) => {
    const panel = new RunsPanel(new RunsModel());
    panel.id = 'mlops-lab-runs';
    panel.title.icon = mlopsIcon;
    panel.title.caption = 'MLOps: runs';
    app.shell.add(panel, 'left', { rank: 850 });
    if (restorer) {
      restorer.add(panel, 'mlops-lab-runs');
    }
  }
};

export default plugin;
