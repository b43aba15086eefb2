import { CommandRegistry } from '@lumino/commands';

import { element, SidebarPanel } from '../base';
import { CommandIDs } from '../tokens';
import { ModelsModel } from './model';
import { badge } from './view';

/** The sidebar list of registered models; a click opens one. */
export class ModelsPanel extends SidebarPanel<ModelsModel> {
  constructor(
    model: ModelsModel,
    private _commands: CommandRegistry
  ) {
    super(model, 'Models', 'jp-mlops-models-list');
    this.addClass('jp-mlops-ModelsPanel');
  }

  protected render(): void {
    const models = this.model.data;
    const error = this.model.error;
    this.showMessage(
      error ?? (models.length === 0 ? 'No registered models yet: ml.register("name", run_id).' : ''),
      error !== null
    );
    const head = element('tr');
    for (const title of ['Model', 'Production', 'Versions']) {
      head.appendChild(element('th', title));
    }
    const rows = models.map(model => {
      const row = element('tr');
      row.dataset.model = model.name;
      const stages = element('td');
      for (const version of model.versions.slice(-6)) {
        stages
          .appendChild(badge(String(version.version)))
          .classList.add(`jp-mlops-stage-${version.stage.toLowerCase()}`);
      }
      row.append(
        element('td', model.name),
        element('td', model.production_version ? `v${model.production_version}` : '—'),
        stages
      );
      row.addEventListener('click', () => void this._commands.execute(CommandIDs.openModel, { name: model.name }));
      return row;
    });
    this.table.replaceChildren(head, ...rows);
  }
}
