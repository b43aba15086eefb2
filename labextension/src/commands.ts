/**
 * Everything a user can open in the main area is a command, so menus, the palette and other
 * extensions can open it too; one `WidgetTracker` restores the tabs on reload and never opens
 * the same thing twice.
 */
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { InputDialog, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import { CompareModel } from './compare/model';
import { CompareView } from './compare/view';
import { DriftReportModel } from './drift/model';
import { DriftReportView } from './drift/view';
import { LineageModel } from './lineage/model';
import { LineageView } from './lineage/view';
import { ModelModel } from './registry/model';
import { ModelView } from './registry/view';
import { RunModel } from './run/model';
import { RunView } from './run/view';
import { DeploymentModel } from './serving/model';
import { DeploymentView } from './serving/view';
import { CommandIDs } from './tokens';

type ViewKind = 'run' | 'compare' | 'model' | 'drift-report' | 'deployment' | 'lineage';

export function addCommands(
  app: JupyterFrontEnd,
  restorer: ILayoutRestorer | null,
  rendermime: IRenderMimeRegistry | null
): void {
  const { commands, shell } = app;
  const tracker = new WidgetTracker<MainAreaWidget>({ namespace: 'mlops-lab' });

  const build = (view: ViewKind, key: string): [Widget, string] => {
    switch (view) {
      case 'run':
        return [new RunView(new RunModel(key), commands, rendermime), `Run ${key.slice(0, 8)}`];
      case 'compare': {
        const ids = key.split(',');
        return [new CompareView(new CompareModel(ids), commands), `Compare ${ids.length} runs`];
      }
      case 'model':
        return [new ModelView(new ModelModel(key), commands), `Model: ${key}`];
      case 'drift-report':
        return [new DriftReportView(new DriftReportModel(key), commands), `Drift report ${key.slice(0, 8)}`];
      case 'deployment':
        return [new DeploymentView(new DeploymentModel(key), commands), `Serving: ${key}`];
      case 'lineage': {
        const what = key.startsWith('dataset:') ? `data ${key.slice(8, 16)}` : key.slice(6);
        return [new LineageView(new LineageModel(key), commands), `Lineage: ${what}`];
      }
    }
  };

  const open = (view: ViewKind, key: string, label?: string): MainAreaWidget => {
    const id = `mlops-${view}-${key.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
    const existing = tracker.find(widget => widget.id === id);
    if (existing) {
      shell.activateById(id);
      return existing;
    }
    const [content, defaultLabel] = build(view, key);
    const widget = new MainAreaWidget({ content });
    widget.id = id;
    widget.title.label = label ?? defaultLabel;
    widget.title.closable = true;
    widget.node.dataset.mlopsView = view;
    widget.node.dataset.mlopsKey = key;
    void tracker.add(widget);
    shell.add(widget, 'main');
    shell.activateById(id);
    return widget;
  };

  const text = (value: unknown, name: string): string => {
    if (typeof value !== 'string' || !value) {
      throw new Error(`${name} must be a non-empty string`);
    }
    return value;
  };

  commands.addCommand(CommandIDs.open, {
    label: 'Open an MLOps view',
    execute: args => open(text(args.view, 'view') as ViewKind, text(args.key, 'key'), args.label as string | undefined)
  });
  commands.addCommand(CommandIDs.openRun, {
    label: 'MLOps: open run',
    execute: async args => {
      let runId = args.runId as string | undefined;
      if (runId === undefined) {
        const answer = await InputDialog.getText({ title: 'Open a run', label: 'Run id', okLabel: 'Open' });
        if (!answer.button.accept || !answer.value?.trim()) {
          return;
        }
        runId = answer.value.trim();
      }
      return open('run', text(runId, 'runId'));
    }
  });
  commands.addCommand(CommandIDs.openComparison, {
    label: 'MLOps: compare runs',
    execute: args => {
      const ids = args.runIds as string[];
      if (!Array.isArray(ids) || ids.length === 0) {
        throw new Error('runIds must be a non-empty list of run ids');
      }
      return open('compare', ids.join(','));
    }
  });
  commands.addCommand(CommandIDs.openModel, {
    label: 'MLOps: open registered model',
    execute: args => open('model', text(args.name, 'name'))
  });
  commands.addCommand(CommandIDs.openDriftReport, {
    label: 'MLOps: open drift report',
    execute: args => open('drift-report', text(args.id, 'id'), args.label as string | undefined)
  });
  commands.addCommand(CommandIDs.openLineage, {
    label: 'MLOps: open lineage',
    execute: args =>
      args.dataset
        ? open('lineage', `dataset:${text(args.dataset, 'dataset')}`)
        : open('lineage', `model:${text(args.model, 'model')}`)
  });
  commands.addCommand(CommandIDs.openDeployment, {
    label: 'MLOps: open deployment',
    execute: args => open('deployment', text(args.name, 'name'))
  });

  void restorer?.restore(tracker, {
    command: CommandIDs.open,
    args: widget => ({
      view: widget.node.dataset.mlopsView ?? '',
      key: widget.node.dataset.mlopsKey ?? '',
      label: widget.title.label
    }),
    name: widget => widget.id
  });
}
