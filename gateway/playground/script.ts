// The playground's browser code, served inline in /playground and allowed by its CSP hash. Plain
// DOM code, no framework: one form, one transcript, one streamed answer at a time. Kept as a
// string (String.raw: the source is exactly what the browser runs) so the build ships it with the
// gateway and the page needs nothing else from anywhere.
export const PLAYGROUND_SCRIPT = String.raw`
'use strict';
const cfg = JSON.parse(document.getElementById('config').textContent);
const $ = (id) => document.getElementById(id);
const el = (tag, attrs, ...kids) => { const e = document.createElement(tag); Object.assign(e, attrs || {}); for (const k of kids) if (k != null) e.append(k); return e; };
const lim = cfg.limits;

// The API key lives in this variable only: never in storage, cookies or the URL.
let apiKey = '';
let attachments = [];   // pending: {kind: 'image' | 'video', name, size, url}
let history = [];       // messages already sent and answered
let running = null;     // the AbortController of the answer being streamed

const fmtBytes = (n) => n >= 1048576 ? (n / 1048576).toFixed(n % 1048576 ? 1 : 0) + ' MiB' : n >= 1024 ? Math.round(n / 1024) + ' KiB' : n + ' B';
const headers = (json) => { const h = {}; if (json) h['content-type'] = 'application/json'; if (apiKey) h.authorization = 'Bearer ' + apiKey; return h; };

function showError(message, status, code) {
  const box = $('error');
  box.replaceChildren();
  if (message) {
    const head = [status, code].filter(Boolean).join(' ');
    if (head) box.append(el('strong', { textContent: head }), ' ');
    box.append(el('span', { className: 'message', textContent: message }));
    if (status === 401 && cfg.auth) { $('keybox').hidden = false; $('key').focus(); }
  }
  box.hidden = !message;
}

// A refusal: the server's own message, verbatim (OpenAI envelope), with its status and code.
async function showRefusal(res) {
  const text = await res.text();
  let e = null;
  try { e = JSON.parse(text).error; } catch {}
  if (e && typeof e.message === 'string') showError(e.message, res.status, e.code);
  else showError(text || res.statusText, res.status);
}

async function loadModels() {
  showError('');
  let res;
  try { res = await fetch('v1/models', { headers: headers(false) }); } catch (err) { showError('The server could not be reached: ' + err.message); return; }
  if (!res.ok) { await showRefusal(res); return; }
  const list = (await res.json()).data || [];
  const sel = $('model');
  const before = sel.value;
  sel.replaceChildren(...list.map((m) => el('option', { value: m.id, textContent: m.id + (m.max_model_len ? '  (' + m.max_model_len + ' ctx)' : '') })));
  if (list.some((m) => m.id === before)) sel.value = before;
  if (!list.length) showError('No model is available to this key.');
}

function useKey() {
  apiKey = $('key').value.trim();
  $('key').value = '';
  $('keystate').textContent = apiKey ? 'key set (this tab only)' : 'no key';
  if (apiKey) $('keybox').hidden = true;
  loadModels();
}

// ---- attachments: picker, drag and drop, paste; checked against the server's limits here first.

const readDataUrl = (file) => new Promise((resolve, reject) => { const r = new FileReader(); r.onload = () => resolve(r.result); r.onerror = () => reject(r.error); r.readAsDataURL(file); });
const imagePixels = (url) => new Promise((resolve) => { const i = new Image(); i.onload = () => resolve(i.naturalWidth * i.naturalHeight); i.onerror = () => resolve(0); i.src = url; });
const countOf = (kind) => attachments.filter((a) => a.kind === kind).length + history.reduce((n, m) => n + (Array.isArray(m.content) ? m.content.filter((p) => p.type === (kind === 'image' ? 'image_url' : 'video_url')).length : 0), 0);

async function addFiles(files) {
  showError('');
  for (const f of files) {
    const kind = f.type.startsWith('image/') ? 'image' : f.type.startsWith('video/') ? 'video' : null;
    const name = f.name || kind + ' (pasted)';
    if (!kind) { showError(name + ': only images and videos can be attached (this is ' + (f.type || 'of unknown type') + ').'); continue; }
    const maxBytes = kind === 'image' ? lim.imageMaxBytes : lim.videoMaxBytes;
    const maxCount = kind === 'image' ? lim.maxImages : lim.maxVideos;
    if (f.size > maxBytes) { showError(name + ' is ' + fmtBytes(f.size) + ': the server takes ' + kind + 's up to ' + fmtBytes(maxBytes) + '.'); continue; }
    if (countOf(kind) >= maxCount) { showError('The server takes at most ' + maxCount + ' ' + kind + (maxCount === 1 ? '' : 's') + ' per request.'); continue; }
    let url;
    try { url = await readDataUrl(f); } catch (err) { showError(name + ' could not be read: ' + err.message); continue; }
    if (kind === 'image') {
      const px = await imagePixels(url);
      if (px > lim.imageMaxPixels) { showError(name + ' has ' + px + ' pixels: the server takes up to ' + lim.imageMaxPixels + '.'); continue; }
    }
    attachments.push({ kind, name, size: f.size, url });
  }
  renderAttachments();
}

function renderAttachments() {
  $('attachments').replaceChildren(...attachments.map((a, i) => el('div', { className: 'att' },
    a.kind === 'image' ? el('img', { src: a.url, alt: '' }) : el('video', { src: a.url, muted: true }),
    el('span', { textContent: a.name + ' · ' + fmtBytes(a.size) }),
    el('button', { type: 'button', textContent: '✕', title: 'Remove ' + a.name, ariaLabel: 'Remove ' + a.name, onclick: () => { attachments.splice(i, 1); renderAttachments(); $('message').focus(); } }))));
}

// ---- the request: what Send sends, and what the copy buttons reproduce.

function userMessage() {
  const text = $('message').value.trim();
  if (!attachments.length) return text ? { role: 'user', content: text } : null;
  const parts = attachments.map((a) => a.kind === 'image' ? { type: 'image_url', image_url: { url: a.url } } : { type: 'video_url', video_url: { url: a.url } });
  if (text) parts.push({ type: 'text', text });
  return { role: 'user', content: parts };
}

function buildRequest(user) {
  const messages = [];
  const system = $('system').value.trim();
  if (system) messages.push({ role: 'system', content: system });
  messages.push(...history);
  if (user) messages.push(user);
  const body = { model: $('model').value, messages, stream: true, stream_options: { include_usage: true } };
  const t = $('temperature').value.trim();
  if (t !== '') body.temperature = Number(t);
  const m = $('max_tokens').value.trim();
  if (m !== '') body.max_tokens = Number(m);
  const extra = $('extra').value.trim();
  if (extra) {
    let more;
    try { more = JSON.parse(extra); } catch (err) { throw new Error('More parameters is not valid JSON: ' + err.message); }
    if (!more || typeof more !== 'object' || Array.isArray(more)) throw new Error('More parameters must be a JSON object, e.g. {"top_p": 0.9}');
    Object.assign(body, more);
  }
  return body;
}

// ---- the transcript

function addTurn(role, content) {
  const turn = el('div', { className: 'turn ' + role });
  turn.append(el('div', { className: 'role', textContent: role }));
  if (Array.isArray(content)) {
    for (const p of content) {
      if (p.type === 'image_url') turn.append(el('img', { src: p.image_url.url, alt: 'attached image', className: 'thumb' }));
      else if (p.type === 'video_url') turn.append(el('video', { src: p.video_url.url, className: 'thumb', controls: true, muted: true }));
      else if (p.type === 'text') turn.append(el('div', { className: 'text', textContent: p.text }));
    }
  } else if (typeof content === 'string') turn.append(el('div', { className: 'text', textContent: content }));
  $('transcript').append(turn);
  turn.scrollIntoView({ block: 'end' });
  return turn;
}

function setBusy(busy) {
  $('send').disabled = busy;
  $('stop').disabled = !busy;
  document.body.classList.toggle('busy', busy);
}

async function send() {
  if (running) return;
  showError('');
  const user = userMessage();
  if (!user) { showError('Type a message or attach an image or video.'); $('message').focus(); return; }
  if (!$('model').value) { showError('Pick a model first' + (cfg.auth && !apiKey ? ': enter your API key to list the models.' : '.')); return; }
  let body;
  try { body = buildRequest(user); } catch (err) { showError(err.message); return; }
  const json = JSON.stringify(body);
  const bytes = new Blob([json]).size;
  if (bytes > lim.maxRequestBytes) { showError('This request is ' + fmtBytes(bytes) + ': the server takes requests up to ' + fmtBytes(lim.maxRequestBytes) + '. Remove an attachment or start a new chat.'); return; }

  const draft = { text: $('message').value, attachments };
  $('message').value = '';
  attachments = [];
  renderAttachments();
  const userTurn = addTurn('user', user.content);
  const turn = addTurn('assistant');
  const reasoning = el('div', { className: 'reasoning', hidden: true });
  const out = el('div', { className: 'text streaming' });
  const stats = el('div', { className: 'stats' });
  turn.append(reasoning, out, stats);
  // Screen readers hear the answer once it is complete, not token by token.
  turn.setAttribute('aria-busy', 'true');

  const ctl = new AbortController();
  running = ctl;
  setBusy(true);
  const t0 = performance.now();
  let tFirst = 0, chunks = 0, usage = null, finish = null, failed = false;
  // A refusal before any output puts the message back, so it can be sent again (after a key, say).
  const restore = () => { userTurn.remove(); turn.remove(); $('message').value = draft.text; attachments = draft.attachments; renderAttachments(); };
  try {
    const res = await fetch('v1/chat/completions', { method: 'POST', headers: headers(true), body: json, signal: ctl.signal });
    if (!res.ok) { failed = true; restore(); await showRefusal(res); return; }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]' || !data) continue;
        let chunk;
        try { chunk = JSON.parse(data); } catch { continue; }
        // An error after the stream started arrives as a final event: shown as the server wrote it.
        if (chunk.error) { failed = true; showError(chunk.error.message, null, chunk.error.code); continue; }
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices && chunk.choices[0];
        if (!choice) continue;
        if (choice.finish_reason) finish = choice.finish_reason;
        const d = choice.delta || {};
        const think = d.reasoning_content || d.reasoning || '';
        const piece = d.content || '';
        if (!think && !piece) continue;
        if (!tFirst) tFirst = performance.now();
        chunks++;
        if (think) { reasoning.hidden = false; reasoning.textContent += think; }
        if (piece) out.textContent += piece;
      }
    }
  } catch (err) {
    if (!ctl.signal.aborted) { failed = true; showError('The connection failed: ' + err.message); }
  } finally {
    running = null;
    setBusy(false);
    out.classList.remove('streaming');
    turn.removeAttribute('aria-busy');
  }
  const stopped = ctl.signal.aborted;
  const tEnd = performance.now();
  const parts = [];
  if (stopped) parts.push('stopped');
  else if (finish) parts.push('finish: ' + finish);
  if (usage) parts.push('prompt ' + usage.prompt_tokens + ' · completion ' + usage.completion_tokens + ' · total ' + usage.total_tokens + ' tokens');
  else parts.push(chunks + ' chunks (no usage reported)');
  if (tFirst) {
    parts.push('TTFT ' + Math.round(tFirst - t0) + ' ms');
    const n = usage ? usage.completion_tokens : chunks;
    const secs = (tEnd - tFirst) / 1000;
    if (n > 1 && secs > 0) parts.push(((n - 1) / secs).toFixed(1) + (usage ? ' tokens/s' : ' chunks/s'));
  }
  stats.textContent = parts.join(' · ');
  turn.dataset.state = stopped ? 'stopped' : failed ? 'failed' : 'done';
  // The answer so far (stopped answers too) stays in the conversation; a failed empty one does not.
  if (!failed || out.textContent) history.push(user, { role: 'assistant', content: out.textContent });
  $('message').focus();
}

function stop() { if (running) running.abort(); }

function newChat() {
  stop();
  history = [];
  $('transcript').replaceChildren();
  showError('');
  $('message').focus();
}

// ---- copy as curl / as OpenAI SDK code: the request Send would send now (the key stays out).

const shq = (s) => "'" + s.replace(/'/g, "'\\''") + "'";

function curlCommand(body) {
  const lines = ['curl -sN ' + shq(new URL('v1/chat/completions', location.href).href) + ' \\', "  -H 'Content-Type: application/json' \\"];
  if (cfg.auth) lines.push('  -H "Authorization: Bearer $NIM_API_KEY" \\');
  lines.push("  -d @- <<'JSON'", JSON.stringify(body, null, 2), 'JSON');
  return lines.join('\n');
}

function sdkCode(body) {
  return [
    '// npm install openai   then: node chat.mjs' + (cfg.auth ? '   (with NIM_API_KEY set)' : ''),
    "import OpenAI from 'openai';",
    '',
    'const client = new OpenAI({ baseURL: ' + JSON.stringify(new URL('v1', location.href).href) + ", apiKey: process.env.NIM_API_KEY || 'unused' });",
    'const stream = await client.chat.completions.create(' + JSON.stringify(body, null, 2) + ');',
    'for await (const chunk of stream) {',
    "  process.stdout.write(chunk.choices[0]?.delta?.content ?? '');",
    "  if (chunk.usage) console.log('\\n', chunk.usage);",
    '}',
  ].join('\n');
}

async function copy(kind) {
  showError('');
  let body;
  try { body = buildRequest(userMessage()); } catch (err) { showError(err.message); return; }
  const text = kind === 'curl' ? curlCommand(body) : sdkCode(body);
  const code = $('code');
  code.textContent = text;
  code.dataset.kind = kind;
  code.hidden = false;
  let copied = false;
  try { await navigator.clipboard.writeText(text); copied = true; } catch {}
  $('copystate').textContent = copied ? 'Copied to the clipboard.' : 'The clipboard is not available here: select the text below.';
}

// ---- wiring

$('usekey').onclick = useKey;
$('key').onkeydown = (e) => { if (e.key === 'Enter') useKey(); };
$('reload').onclick = loadModels;
$('attach').onclick = () => $('file').click();
$('file').onchange = (e) => { addFiles([...e.target.files]); e.target.value = ''; };
$('send').onclick = send;
$('stop').onclick = stop;
$('clear').onclick = newChat;
$('copycurl').onclick = () => copy('curl');
$('copysdk').onclick = () => copy('sdk');
$('message').onkeydown = (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); } };
document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && running) { e.preventDefault(); stop(); } });
document.addEventListener('paste', (e) => { const files = [...(e.clipboardData ? e.clipboardData.files : [])]; if (files.length) { e.preventDefault(); addFiles(files); } });
// The whole page takes drops (a file dropped beside the box must not navigate away from the chat).
const zone = $('compose');
document.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
document.addEventListener('dragleave', (e) => { if (!e.relatedTarget) zone.classList.remove('over'); });
document.addEventListener('drop', (e) => { e.preventDefault(); zone.classList.remove('over'); addFiles([...(e.dataTransfer ? e.dataTransfer.files : [])]); });

$('limits').textContent = 'Images up to ' + fmtBytes(lim.imageMaxBytes) + ' (' + lim.maxImages + ' per request), videos up to ' + fmtBytes(lim.videoMaxBytes) + ' (' + lim.maxVideos + ' per request), requests up to ' + fmtBytes(lim.maxRequestBytes) + '.';
if (cfg.auth) { $('keybox').hidden = false; $('key').focus(); } else { loadModels(); $('message').focus(); }
`;
