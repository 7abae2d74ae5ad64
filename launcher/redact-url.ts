// A URL fit to show: NIM_ENGINE_URL may carry credentials (user:password@) or a token in its
// query string, and it appears in /v1/models `root`, /v1/metadata, /v1/manifest and the start-up
// log. Those parts are replaced, the scheme, host, port and path kept (enough to recognise it).
export function redactUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return '<url>';
  }
  const auth = u.username || u.password ? '***@' : '';
  const query = u.search ? '?***' : '';
  const hash = u.hash ? '#***' : '';
  const path = u.pathname === '/' && !query && !hash && !raw.endsWith('/') ? '' : u.pathname;
  return `${u.protocol}//${auth}${u.host}${path}${query}${hash}`;
}
