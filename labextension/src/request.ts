import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** An error answered by the mlops_lab REST API, with the server's message. */
export class APIError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

/**
 * Call `<base_url>/mlops-lab/api/<endPoint>`: the one way the front end reaches the server
 * (ServerConnection adds the token and the XSRF header).
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlops-lab', 'api', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // not JSON: keep the text for the message below
    }
  }
  if (!response.ok) {
    const message =
      (data && typeof data === 'object' && data.error) ||
      response.statusText ||
      String(data);
    throw new APIError(message, response.status);
  }
  return data as T;
}
