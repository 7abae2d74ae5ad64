// GET /playground: one self-contained page to try the served models (text, images, short videos)
// from a browser. Same discipline as /docs: nothing from elsewhere, the inline script and style
// allowed by hash, and what the page needs from the server (whether keys are on, the media and
// body limits) embedded as inert JSON. Every call it makes goes to the public API with the
// key the user types, held in a JS variable only.
import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import type { GatewayOptions } from '../options.js';
import { PLAYGROUND_SCRIPT } from './script.js';

/** The limits the page checks attachments against before sending (the server checks them again). */
export interface PlaygroundLimits {
  maxRequestBytes: number;
  imageMaxBytes: number;
  imageMaxPixels: number;
  maxImages: number;
  videoMaxBytes: number;
  maxVideos: number;
}

export interface PlaygroundConfig {
  /** API keys are configured: the page asks for one. */
  auth: boolean;
  limits: PlaygroundLimits;
}

const STYLE = `*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;max-width:52rem;margin:0 auto;padding:.75rem;color:#1d1d1f;background:#fff}
header{display:flex;align-items:baseline;justify-content:space-between;gap:.5rem;flex-wrap:wrap}
h1{font-size:1.25rem;margin:.25rem 0}a{color:#0a58ca}
label{display:block;font-weight:600;font-size:13px;margin:.5rem 0 .15rem}
input,select,textarea,button{font:inherit;max-width:100%}
input,select,textarea{width:100%;padding:.4rem .5rem;border:1px solid #aaa;border-radius:6px;background:#fff;color:inherit}
textarea{resize:vertical}
button{padding:.45rem .8rem;border:1px solid #888;border-radius:6px;background:#f3f3f3;color:inherit;cursor:pointer}
button.primary{background:#0a58ca;border-color:#0a58ca;color:#fff}
button:disabled{opacity:.45;cursor:default}
:focus-visible{outline:3px solid #f0a500;outline-offset:1px}
.row{display:flex;gap:.5rem;align-items:center}.row>select,.row>input{flex:1;min-width:0}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:.5rem}
details{margin:.5rem 0;border:1px solid #ddd;border-radius:6px;padding:.3rem .6rem}summary{cursor:pointer;font-weight:600}
.hint,.stats,#limits,#copystate,#keystate{color:#555;font-size:13px}
#keybox{border:1px solid #f0a500;background:#fff8e6;border-radius:6px;padding:.5rem .6rem;margin:.5rem 0}
#error{border:1px solid #c00;background:#fff0f0;color:#900;border-radius:6px;padding:.5rem .6rem;margin:.5rem 0;overflow-wrap:anywhere}
#transcript{margin:.75rem 0}
.turn{border-top:1px solid #e5e5e5;padding:.5rem 0;overflow-wrap:anywhere}
.role{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#777}
.text{white-space:pre-wrap}
.reasoning{white-space:pre-wrap;color:#777;font-style:italic;border-left:3px solid #ddd;padding-left:.5rem;margin:.25rem 0}
.streaming::after{content:"▍";color:#0a58ca}
img.thumb,video.thumb{max-width:min(100%,16rem);max-height:12rem;border-radius:6px;display:block;margin:.25rem 0}
#compose{border:2px dashed transparent;border-radius:8px;padding:.25rem}#compose.over{border-color:#0a58ca;background:#f0f6ff}
.actions{display:flex;flex-wrap:wrap;gap:.4rem;margin:.5rem 0}
#attachments{display:flex;flex-wrap:wrap;gap:.4rem}
.att{display:flex;align-items:center;gap:.35rem;border:1px solid #ccc;border-radius:6px;padding:.2rem .3rem;font-size:13px;max-width:100%}
.att img,.att video{width:2.5rem;height:2.5rem;object-fit:cover;border-radius:4px}
.att span{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;min-width:0}
.att button{padding:.1rem .45rem}
pre{background:#f6f6f6;padding:.6rem;overflow:auto;font:12px/1.4 ui-monospace,monospace;max-height:20rem;white-space:pre-wrap;overflow-wrap:anywhere}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}`;

const BODY = `<header><h1>portico playground</h1><a href="docs">API reference</a></header>
<main>
<section id="keybox" hidden aria-labelledby="keylabel">
<label id="keylabel" for="key">API key</label>
<div class="row"><input id="key" type="password" autocomplete="off" spellcheck="false"><button id="usekey" type="button">Use key</button></div>
<p class="hint">Kept in this tab's memory only: not stored, not in the URL. Reloading the page forgets it.</p>
</section>
<label for="model">Model</label>
<div class="row"><select id="model"></select><button id="reload" type="button" title="Reload the model list" aria-label="Reload the model list">↻</button></div>
<span id="keystate"></span>
<details open><summary>Settings</summary>
<label for="system">System prompt</label><textarea id="system" rows="2"></textarea>
<div class="grid"><div><label for="temperature">Temperature</label><input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7"></div>
<div><label for="max_tokens">Max tokens</label><input id="max_tokens" type="number" min="1" step="1" value="256"></div></div>
<label for="extra">More parameters (JSON object merged into the request)</label><textarea id="extra" rows="2" placeholder='{"top_p": 0.9, "seed": 1}'></textarea>
</details>
<div id="transcript" aria-live="polite"></div>
<div id="error" role="alert" hidden></div>
<section id="compose" aria-label="New message">
<div id="attachments"></div>
<label for="message">Message</label>
<textarea id="message" rows="3" placeholder="Ask something. Ctrl+Enter sends, Esc stops. Drop or paste images and videos here."></textarea>
<input id="file" type="file" accept="image/*,video/*" multiple hidden>
<div class="actions"><button id="attach" type="button">Attach image or video…</button><button id="send" type="button" class="primary">Send</button><button id="stop" type="button" disabled>Stop</button><button id="clear" type="button">New chat</button></div>
<p id="limits"></p>
<div class="actions"><button id="copycurl" type="button">Copy as curl</button><button id="copysdk" type="button">Copy as OpenAI SDK code</button><span id="copystate" aria-live="polite"></span></div>
<pre id="code" hidden></pre>
</section>
</main>`;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('base64');

/**
 * Only the page's own script and style run; it talks to this origin only; images and videos it
 * previews are the user's own files as data: URIs. No framing, no forms, no base rewriting.
 */
export const PLAYGROUND_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${sha256(PLAYGROUND_SCRIPT)}'`,
  `style-src 'sha256-${sha256(STYLE)}'`,
  'img-src data:',
  'media-src data:',
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The page, with the config embedded as inert JSON (`<` escaped so it cannot close the element). */
export function playgroundHtml(config: PlaygroundConfig): string {
  const data = JSON.stringify(config).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>portico playground</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body>${BODY}
<script type="application/json" id="config">${data}</script>
<script>${PLAYGROUND_SCRIPT}</script>
</body></html>
`;
}

/** What the page is told: whether keys are on (asked each time: a keys file may appear) and the limits. */
export function playgroundConfig(auth: boolean, o: Pick<GatewayOptions, 'maxRequestBytes' | 'media'>): PlaygroundConfig {
  const m = o.media;
  return {
    auth,
    limits: { maxRequestBytes: o.maxRequestBytes, imageMaxBytes: m.maxBytes, imageMaxPixels: m.maxPixels, maxImages: m.maxImages, videoMaxBytes: m.maxVideoBytes, maxVideos: m.maxVideos },
  };
}

/** The route handler: the page with this server's key mode and limits. */
export function playgroundPage(auth: () => boolean, o: Pick<GatewayOptions, 'maxRequestBytes' | 'media'>): (c: Context) => Response {
  return (c) => c.html(playgroundHtml(playgroundConfig(auth(), o)), 200, { 'content-security-policy': PLAYGROUND_CSP, 'cache-control': 'no-store' });
}
