// The REST API of this server, from the page: the bearer token (kept in
// this tab's sessionStorage only) and one call that turns every refusal
// into an ApiError carrying the API's own error body (doc/http.md).

const KEY = 'taskmgr.dashboard.token';

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  sessionStorage.setItem(KEY, t);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

// A refusal: status 0 when the server could not be reached; doc is the
// API's {"error_code", "error_name", "message", "error_data": {"name"}}
// when the answer was one.
export class ApiError extends Error {
  constructor(status, doc, message) {
    super(message);
    this.status = status;
    this.doc = doc;
  }

  // "AuthError UNAUTHORIZED" (or what there is of it).
  get kind() {
    const d = this.doc;
    if (!d || typeof d !== 'object') return '';
    const name = d.error_data && typeof d.error_data.name === 'string' ? d.error_data.name : '';
    return [typeof d.error_name === 'string' ? d.error_name : '', name].filter(Boolean).join(' ');
  }
}

function isErrorBody(d) {
  return d && typeof d === 'object' && typeof d.message === 'string' && d.error_data;
}

// One call: the parsed JSON of a 2xx answer, else an ApiError.  The token
// travels in the Authorization header only, never in the URL.
export async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + (token() || '') };
  const init = {
    method, headers, cache: 'no-store', credentials: 'omit',
    redirect: 'error', referrerPolicy: 'no-referrer',
  };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, null, 'cannot reach the server (' + e.message + ')');
  }
  const text = await resp.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch (e) {
    doc = null;
  }
  if (!resp.ok) {
    if (isErrorBody(doc)) throw new ApiError(resp.status, doc, doc.message);
    throw new ApiError(resp.status, null, 'the server answered ' + resp.status +
                       ' without an error document');
  }
  if (doc === null || typeof doc !== 'object') {
    throw new ApiError(resp.status, null, 'the answer is not a JSON document');
  }
  return doc;
}

const seg = encodeURIComponent;

export const paths = {
  stats: () => '/stats/',
  recents: (name, page, amt) =>
    '/tasks/private/' + seg(name) + '/recents/?page=' + page + '&amt=' + amt,
  task: (name, id) => '/tasks/private/' + seg(name) + '/' + seg(id) + '/',
  trigger: (name) => '/tasks/private/' + seg(name) + '/',
  download: (table) =>
    '/storage-signed-urls/local-tables/' + seg(table) + '/download/?expires_in=60',
};
