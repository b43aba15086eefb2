/**
 * The mlops_lab REST API under `<base_url>/mlops-lab/api/`: every endpoint a typed function, every
 * response an interface, one error type. The front end reaches the server only through here.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** An error the server answered with `{"error", "status"}` (the project's one error vocabulary). */
export class APIError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

async function request<T>(endPoint: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlops-lab', 'api', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // not JSON: keep the text for the message below
    }
  }
  if (!response.ok) {
    const body = data as { error?: string; status?: number } | string;
    const message = (typeof body === 'object' && body?.error) || response.statusText || String(body);
    throw new APIError(message, (typeof body === 'object' && body?.status) || response.status);
  }
  return data as T;
}

/** Bytes from the API (an artifact, a model file), for images drawn in the page and downloads. */
export async function fetchBlob(endPoint: string): Promise<Blob> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlops-lab', 'api', endPoint);
  const response = await ServerConnection.makeRequest(url, {}, settings);
  if (!response.ok) {
    throw new APIError(`could not read ${endPoint}: ${response.statusText}`, response.status);
  }
  return response.blob();
}

/** An artifact's bytes, for images and figures drawn in the page. */
export function artifactBlob(runId: string, path: string): Promise<Blob> {
  return fetchBlob(artifactEndPoint(runId, path));
}

/** A logged model's file: as it was logged, or its ONNX form. */
export function modelFile(runId: string, name: string, form: 'logged' | 'onnx'): Promise<Blob> {
  return fetchBlob(`runs/${part(runId)}/models/${part(name)}/${form}`);
}

function post<T>(endPoint: string, body: object): Promise<T> {
  return request<T>(endPoint, { method: 'POST', body: JSON.stringify(body) });
}

const part = encodeURIComponent;

// ---- runs ------------------------------------------------------------------------------------

export interface IRunRow {
  run_id: string;
  name: string;
  experiment: string;
  status: string;
  parent_run_id: string | null;
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

export interface IRunsQuery {
  limit: number;
  filter?: string;
  experiment?: string;
  orderBy?: string[];
  lifecycle?: 'active' | 'deleted' | 'all';
}

export function listRuns(query: IRunsQuery): Promise<IRunsPage> {
  const params = new URLSearchParams({ limit: String(query.limit) });
  if (query.filter?.trim()) {
    params.set('filter', query.filter);
  }
  if (query.experiment) {
    params.set('experiment', query.experiment);
  }
  for (const order of query.orderBy ?? []) {
    params.append('order_by', order);
  }
  if (query.lifecycle) {
    params.set('lifecycle', query.lifecycle);
  }
  return request<IRunsPage>(`runs?${params.toString()}`);
}

export interface ICurve {
  steps: number[];
  values: (number | string)[];
}

export function metricHistory(runId: string, key: string): Promise<ICurve> {
  return request<ICurve>(`runs/${runId}/metric-history?key=${part(key)}`);
}

// ---- one run (the run page) --------------------------------------------------------------------

export interface IRunInfo {
  id: string;
  name: string;
  experiment: string;
  status: string;
  user: string;
  start_time: number;
  end_time: number | null;
  parent_run_id: string | null;
  notebook_path: string | null;
  source: string | null;
  git_commit: string | null;
  git_dirty: boolean | null;
  error: string | null;
  host: string;
  deleted: boolean;
}

export interface IArtifactEntry {
  path: string;
  size: number | null;
  kind: 'file' | 'dir' | 'figure';
  folder?: string;
  files?: number;
  error?: string;
}

export interface ILoggedModel {
  name: string;
  flavor: string;
  onnx_hash: string | null;
  onnx_error: string | null;
  signature: {
    inputs?: { name: string; type: string; shape: (number | string | null)[] }[];
    outputs?: { name: string; type: string; shape: (number | string | null)[] }[];
    verified_max_difference?: number;
    input_columns?: string[];
  };
  created_at: number;
}

export interface IRunDataset {
  name: string;
  direction: string;
  source: string | null;
  hash: string;
  format: string;
  num_rows: number | null;
  num_bytes: number;
  columns: Record<string, string>;
  preview: Record<string, unknown>[] | null;
}

export interface ITextHead {
  text: string;
  size: number;
  truncated?: boolean;
  error?: string;
}

export interface IRunLink {
  run_id: string;
  name: string | null;
  status: string | null;
}

export interface IRunPage {
  info: IRunInfo;
  params: Record<string, string>;
  metrics: Record<string, number | string>;
  metric_summaries: Record<string, { last_step: number; min: number | string; max: number | string; count: number }>;
  tags: Record<string, string>;
  description: string;
  curves: Record<string, ICurve>;
  curve_keys: string[];
  artifacts: IArtifactEntry[];
  figures: string[];
  models: ILoggedModel[];
  datasets: IRunDataset[];
  environment: {
    python: string;
    platform: string;
    packages: Record<string, string>;
    hardware: Record<string, unknown>;
  } | null;
  stdout: ITextHead | null;
  git: { commit: string | null; dirty: boolean | null; diff: ITextHead | null };
  parent: IRunLink | null;
  children: IRunLink[];
  /** The notebook's path as the lab opens it, when it is under the lab's root. */
  notebook: string | null;
}

export interface IArtifactPreview {
  path: string;
  size: number;
  kind: 'image' | 'table' | 'json' | 'text' | 'binary';
  media_type?: string;
  text?: string;
  truncated?: boolean;
  columns?: Record<string, string>;
  rows?: Record<string, unknown>[];
  note?: string;
}

export function getRun(runId: string): Promise<IRunPage> {
  return request<IRunPage>(`runs/${part(runId)}`);
}

function artifactEndPoint(runId: string, path: string): string {
  return `runs/${part(runId)}/artifacts/${path.split('/').map(part).join('/')}`;
}

export function artifactPreview(runId: string, path: string): Promise<IArtifactPreview> {
  return request<IArtifactPreview>(`${artifactEndPoint(runId, path)}?preview=1`);
}

export function editTags(
  runId: string,
  set: Record<string, string>,
  remove: string[]
): Promise<{ tags: Record<string, string> }> {
  return post(`runs/${part(runId)}/tags`, { set, remove });
}

export function deleteRun(runId: string): Promise<unknown> {
  return request(`runs/${part(runId)}`, { method: 'DELETE' });
}

export function restoreRun(runId: string): Promise<unknown> {
  return post(`runs/${part(runId)}/restore`, {});
}

export function registerModel(name: string, runId: string, model: string): Promise<{ name: string; version: number }> {
  return post(`models/${part(name)}/versions`, { run_id: runId, model });
}

export async function listExperiments(): Promise<{ id: number; name: string }[]> {
  return (await request<{ experiments: { id: number; name: string }[] }>('experiments')).experiments;
}

// ---- compare ---------------------------------------------------------------------------------

export interface IAligned {
  key: string;
  values: Record<string, string | number | null>;
  differs: boolean;
}

export interface IComparison {
  runs: { run_id: string; name: string; experiment: string; status: string }[];
  params: IAligned[];
  metrics: IAligned[];
  tags: IAligned[];
  datasets: IAligned[];
  environment: IAligned[];
  packages: IAligned[];
  code_differs: boolean;
  /** Each run's figures (PNG or plotly JSON artifacts) by path: the same path is the same chart. */
  figures: Record<string, string[]>;
}

export function compareRuns(runIds: string[]): Promise<IComparison> {
  return request<IComparison>(`compare?runs=${runIds.map(part).join(',')}`);
}

export interface IDiffRow {
  op: 'equal' | 'replace' | 'delete' | 'insert';
  left: string | null;
  right: string | null;
  left_line: number | null;
  right_line: number | null;
}

export interface ICodeDiff {
  identical: boolean;
  rows: IDiffRow[];
}

export function codeDiff(left: string, right: string): Promise<ICodeDiff> {
  return request<ICodeDiff>(`code-diff?left=${part(left)}&right=${part(right)}`);
}

export interface IDatasetDiff {
  rows: { left: number; right: number };
  columns_added: string[];
  columns_removed: string[];
  dtype_changes: Record<string, unknown>;
  drift: { columns: { column: string; drift: boolean }[] } | null;
}

export function datasetDiff(left: string, right: string): Promise<IDatasetDiff> {
  return request<IDatasetDiff>(`dataset-diff?left=${part(left)}&right=${part(right)}`);
}

// ---- registry --------------------------------------------------------------------------------

export interface IVersionSummary {
  version: number;
  stage: string;
  run_id: string;
  created_by: string;
}

export interface IModelSummary {
  name: string;
  production_version: number | null;
  aliases: Record<string, number>;
  versions: IVersionSummary[];
}

export interface IVersion extends IVersionSummary {
  created_at: number;
  flavor: string;
  max_difference: number | null;
  metrics: Record<string, number | null>;
}

export interface IApproval {
  id: string;
  version: number;
  stage: string;
  requested_by: string;
  status: string;
  comment: string | null;
  votes: { user: string; decision: string; comment: string | null }[];
}

/** An entry of the store's append-only history (registry and deployments alike). */
export interface IRecordedEvent {
  kind: string;
  user: string;
  time: number; // ms
  payload: Record<string, unknown> & { detail?: string };
}

export interface IModelDetail {
  model: { name: string; production_version: number | null; required_approvals_effective: number };
  versions: IVersion[];
  aliases: Record<string, number>;
  approvals: IApproval[];
  gates: { version: number; gate: string; passed: boolean; created_at: number }[];
  history: IRecordedEvent[];
}

export async function listModels(): Promise<IModelSummary[]> {
  return (await request<{ models: IModelSummary[] }>('models')).models;
}

export function getModel(name: string): Promise<IModelDetail> {
  return request<IModelDetail>(`models/${part(name)}`);
}

export function moveStage(name: string, version: number, stage: string, comment: string | null): Promise<IModelDetail> {
  return post<IModelDetail>(`models/${part(name)}/versions/${version}/stage`, { stage, comment });
}

export function requestApproval(name: string, version: number, comment: string | null): Promise<{ request: string }> {
  return post<{ request: string }>(`models/${part(name)}/versions/${version}/approvals`, { comment });
}

export function vote(requestId: string, decision: 'approve' | 'reject'): Promise<{ status: string }> {
  return post<{ status: string }>(`approvals/${part(requestId)}`, { decision });
}

// ---- drift -----------------------------------------------------------------------------------

export interface IDriftRecord {
  id: string;
  name: string;
  created_at: number;
  user: string;
  share_drifted: number;
  dataset_drift: boolean;
  drifted_columns: string[];
  model_name: string | null;
  model_version: string | null;
  deployment: string | null;
}

export interface IStatistic {
  name: string;
  value: number | string;
  p_value: number | string | null;
  drift: boolean;
  detail: string;
}

export interface IColumnDrift {
  column: string;
  kind: string;
  role: string;
  method: string;
  drift: boolean;
  score: number | string;
  statistics: IStatistic[];
  plot: {
    reference?: number[];
    current?: number[];
    edges?: number[];
    categories?: string[];
    levels?: number[];
    reference_quantiles?: number[];
    current_quantiles?: number[];
  };
}

export interface IDriftDetail {
  record: IDriftRecord;
  report: {
    reference_rows: number;
    current_rows: number;
    share_drifted: number;
    dataset_drift: boolean;
    columns: IColumnDrift[];
    /** With a time column: each period's rows and each column's deciding score. */
    over_time?: Record<string, number | string | null>[] | null;
  };
}

export async function listDriftReports(): Promise<IDriftRecord[]> {
  return (await request<{ reports: IDriftRecord[] }>('drift-reports')).reports;
}

export function getDriftReport(id: string): Promise<IDriftDetail> {
  return request<IDriftDetail>(`drift-reports/${part(id)}`);
}

// ---- serving ---------------------------------------------------------------------------------

export interface IDeploymentEvent {
  time: number; // s
  event: string;
  detail: string;
}

export interface IDeployment {
  name: string;
  model: string;
  options: Record<string, string | number | boolean>;
  owner: string;
  host: string;
  here: boolean; // run by this lab; else by its owner's lab (state "elsewhere" while it should run)
  url: string;
  state: string;
  pid: number | null;
  restarts: number;
  last_exit: number | null;
  started_at: number;
  token_required: boolean;
  events: IDeploymentEvent[];
}

export interface IVersionStats {
  version: string;
  inference_count: number;
  execution_count: number;
  inference_stats: { success: { count: number }; fail: { count: number } };
  failures: Record<string, number>;
  mean_batch_size: number | null;
  latency_us: { p50: number | null; p90: number | null; p99: number | null };
}

export interface IRole {
  spec: string;
  /** The run the served version was registered from, for a link to its page. */
  run_id: string | null;
  version: string;
  provider: string;
  max_batch_size: number;
  pending: number;
}

export interface IDeploymentDetail extends IDeployment {
  history: IRecordedEvent[];
  server: {
    roles: Record<string, IRole>;
    canary_share: number;
    shadow: { compared: number; disagreed: number; dropped: number; max_abs_diff: number } | null;
    request_log: string | null;
    events: IDeploymentEvent[];
    stats: IVersionStats[];
  } | null;
}

export interface IServeRequest {
  model: string;
  canary?: string;
  canary_share?: number;
  shadow?: string;
}

export interface IRollout {
  canary: string | null;
  canary_share: number;
  shadow: string | null;
}

export async function listDeployments(): Promise<IDeployment[]> {
  return (await request<{ deployments: IDeployment[] }>('deployments')).deployments;
}

export function getDeployment(name: string): Promise<IDeploymentDetail> {
  return request<IDeploymentDetail>(`deployments/${part(name)}`);
}

export async function deploymentLog(name: string, lines: number): Promise<string> {
  return (await request<{ log: string }>(`deployments/${part(name)}/log?lines=${lines}`)).log;
}

export function startDeployment(body: IServeRequest): Promise<IDeployment> {
  return post<IDeployment>('deployments', body);
}

export function stopDeployment(name: string): Promise<IDeployment> {
  return request<IDeployment>(`deployments/${part(name)}`, { method: 'DELETE' });
}

export function removeDeployment(name: string): Promise<unknown> {
  return post(`deployments/${part(name)}/remove`, {});
}

export function rollout(name: string, change: IRollout): Promise<IDeployment> {
  return post<IDeployment>(`deployments/${part(name)}/rollout`, change);
}

// ---- the team server -------------------------------------------------------------------------

export interface ITeamToken {
  id: string;
  user: string;
  note: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface ITeamPermission {
  kind: 'experiment' | 'model';
  name: string;
  grantee: string;
  level: string;
}

export interface ITeam {
  server: string | null; // null: this lab's store is not a team server
  whoami?: { user: string; admin: boolean; groups: string[] };
  tokens?: ITeamToken[];
  permissions?: ITeamPermission[];
  users?: { name: string; is_admin: boolean }[] | null;
}

export function getTeam(): Promise<ITeam> {
  return request<ITeam>('team');
}

export function createToken(note: string, expiresInDays: number | null): Promise<{ id: string; token: string }> {
  return post('team/tokens', { note, expires_in_days: expiresInDays });
}

export function revokeToken(id: string): Promise<unknown> {
  return request(`team/tokens/${part(id)}`, { method: 'DELETE' });
}

export function setPermission(grant: ITeamPermission): Promise<unknown> {
  return request('team/permissions', {
    method: 'PUT',
    body: JSON.stringify({ ...grant, level: grant.level === 'NONE' ? null : grant.level })
  });
}

// ---- pipelines ---------------------------------------------------------------------------------

export interface IPipelineEntry {
  path: string; // relative to the lab's folder
  name: string | null;
  steps: number;
  error: string | null;
}

export interface IPipelineStep {
  step: string;
  kind: 'notebook' | 'gate' | 'register' | 'promote';
  label: string;
  state: 'cached' | 'done' | 'restore' | 'stale' | 'running' | 'failed' | 'blocked';
  reasons: string[];
  run_id: string | null;
  seconds: number | null;
  error: string | null;
  notebook: string | null; // the source notebook, as the lab opens it
}

export interface IPipelineLaunch {
  running: boolean;
  exit_code: number | null;
  started: number; // s
  step: string | null;
  output: string;
}

export interface IPipelineView {
  name: string;
  path: string;
  steps: IPipelineStep[];
  edges: [string, string][];
  last_run: { id: string; status: string; start_time: number; end_time: number | null } | null;
  launch: IPipelineLaunch | null;
}

export async function listPipelines(): Promise<IPipelineEntry[]> {
  return (await request<{ pipelines: IPipelineEntry[] }>('pipelines')).pipelines;
}

export function getPipeline(path: string): Promise<IPipelineView> {
  return request<IPipelineView>(`pipeline?path=${part(path)}`);
}

export async function runPipeline(path: string, step: string | null, force: boolean): Promise<IPipelineLaunch> {
  const body = step ? { path, step, force } : { path, force };
  return (await post<{ launch: IPipelineLaunch }>('pipeline', body)).launch;
}

/** The notebook a step's run executed, written beside the pipeline under `executed/`: its path, to open. */
export async function executedNotebook(path: string, runId: string): Promise<string> {
  return (await post<{ notebook: string }>('pipeline/executed', { path, run_id: runId })).notebook;
}

// ---- lineage -----------------------------------------------------------------------------------

export interface ILineageDataset {
  hash: string;
  name: string;
  direction: 'input' | 'output';
  format: string | null;
}

export interface ILineageRun {
  run_id: string;
  name: string;
  status: string;
  experiment: string;
  user: string;
  start_time: number;
  pipeline: string | null;
  step: string | null;
  notebook: string | null;
  cell_hash: string | null;
  git_commit: string | null;
  git_dirty: boolean | null;
  params: Record<string, string>;
  models: string[];
  datasets: ILineageDataset[];
  state?: string; // a pipeline step's state in its pipeline's run
  missing?: boolean;
}

export interface IModelLineage {
  model: { name: string; version: number; stage: string; run_id: string };
  runs: ILineageRun[]; // from the run that logged the model up to its pipeline's run
  pipeline: ILineageRun | null;
  steps: ILineageRun[];
}

export interface IDatasetLineage {
  dataset: string;
  runs: ILineageRun[];
  datasets: string[];
  model_versions: { name: string; version: number; stage: string; run_id: string }[];
  truncated: boolean;
}

export function modelLineage(uri: string): Promise<IModelLineage> {
  return request<IModelLineage>(`lineage?model=${part(uri)}`);
}

export function datasetLineage(hash: string): Promise<IDatasetLineage> {
  return request<IDatasetLineage>(`lineage?dataset=${part(hash)}`);
}
