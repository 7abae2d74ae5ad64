// /playground driven in a real headless chromium against the real stack (launcher + gateway +
// llama-server with the tiny VLM): model picker, a sharp-generated PNG attached, streamed text
// seen before the answer ends, a long answer stopped (the engine's slot frees: the request was
// cancelled), the page's "copy as curl" / "copy as OpenAI SDK code" run as they are, the page's
// own limit checks, the server's refusals shown verbatim; with keys set, a wrong key's 401.
// The DOM types are for the functions page.evaluate runs in the browser (the build, tsconfig.json,
// compiles no tests and keeps DOM out of server code).
/// <reference lib="dom" />
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLAYGROUND_CSP } from '../gateway/playground/page.js';
import { DEMO_MODEL_NAME } from '../launcher/plan.js';
import { TINY_IMAGE_PROMPT_TOKEN_DELTA } from '../launcher/prepare/tiny-model.js';
import { launchBrowser, openPage } from './helpers/browser.js';
import { sumFamily, until } from './helpers/load.js';
import { ROOT, startStack, type Stack } from './helpers/stack.js';

/** Screenshots and the copied code land here (git-ignored). */
const OUT = join(ROOT, 'tests/output/playground');
mkdirSync(OUT, { recursive: true });

const redPng = () => sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 40, b: 40 } } }).png().toBuffer();

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

const text = async (page: Page, sel: string) => (await page.textContent(sel)) ?? '';
const lastAnswer = '#transcript .turn.assistant:last-child';
/** The gateway's in-flight requests, the scrape itself excluded. */
const inFlight = async (s: Stack) => sumFamily(await (await fetch(`${s.url}/v1/metrics`)).text(), 'portico_http_requests_in_flight') - 1;

interface Slot {
  id: number;
  is_processing: boolean;
  id_task?: number;
  /** The tokens in the slot's context: after a task, its prompt and what it generated. */
  n_prompt_tokens?: number;
  params?: { n_predict?: number };
}
/** A long answer's max_tokens: with ignore_eos the engine writes all of them unless cancelled. */
const LONG = 3800;
const slots = async (s: Stack) => (await (await fetch(`http://127.0.0.1:${s.enginePort()}/slots`)).json()) as Slot[];

/**
 * After Stop: the engine's last task (llama-server shows it on its slot once released) is the long
 * answer, its slot is idle, and the slot's context, prompt plus generated tokens, is shorter than
 * the max_tokens asked for: the engine request was cancelled, not run to its end (llama-server
 * resets its decoded-token count on release; the context it keeps for its prompt cache is what
 * remains). Then the gateway holds no request. Bounded polls.
 */
/**
 * Run `stop` with the engine frozen (SIGSTOP … SIGCONT): the tiny model writes LONG tokens in
 * about 2 s on an idle core, so under a loaded suite an unfrozen engine could finish before the
 * page's Stop lands, and the cancellation check would then prove nothing. Frozen, it cannot.
 */
async function withEngineFrozen(s: Stack, stop: () => Promise<void>): Promise<void> {
  const pid = s.enginePid();
  process.kill(pid, 'SIGSTOP');
  try {
    await stop();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

async function expectCancelled(s: Stack, maxTokens: number): Promise<void> {
  let last: Slot | undefined;
  await until(async () => {
    last = (await slots(s)).filter((x) => x.id_task !== undefined).sort((a, b) => b.id_task! - a.id_task!)[0];
    return last !== undefined && !last.is_processing;
  }, 'the engine slot to be released after Stop', 10_000);
  const seen = JSON.stringify({ ...last, prompt: undefined, generated: undefined });
  expect(last!.params?.n_predict, seen).toBe(maxTokens);
  expect(last!.n_prompt_tokens, seen).toBeGreaterThan(0);
  expect(last!.n_prompt_tokens, `prompt + generated tokens at the cancel: ${seen}`).toBeLessThan(maxTokens);
  await until(async () => (await inFlight(s)) === 0, 'the gateway to hold no request after Stop', 5_000);
}

describe('playground, no keys', () => {
  let stack: Stack;
  beforeAll(async () => {
    // A small image cap so the page's own size check can be seen refusing a file before sending.
    // The tiny model's full 4096-token context, so a long answer outlasts any lag before Stop.
    stack = await startStack({ NIM_MEDIA_MAX_BYTES: String(100 * 1024), NIM_MAX_MODEL_LEN: '4096' });
  });
  afterAll(async () => {
    expect(await stack?.stop()).toBe(0);
  });

  it('picks the VLM, sends a PNG by keyboard, streams, shows usage/TTFT/tokens per second, stops a long answer (engine request cancelled), copies runnable curl and SDK code', { timeout: 180_000 }, async () => {
    const { page, problems } = await openPage(browser, { width: 375, height: 812 });
    const res = await page.goto(`${stack.url}/playground`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toBe(PLAYGROUND_CSP);
    // No key box without keys; the model list is /v1/models.
    expect(await page.isVisible('#keybox')).toBe(false);
    await page.waitForSelector('#model option', { state: 'attached' });
    const listed = (await (await fetch(`${stack.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(await page.$$eval('#model option', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(listed.data.map((m) => m.id));
    await page.selectOption('#model', DEMO_MODEL_NAME);

    // Attach through the file picker; the answer is sent with Ctrl+Enter from the message box.
    const png = await redPng();
    await page.setInputFiles('#file', { name: 'red.png', mimeType: 'image/png', buffer: png });
    await page.waitForSelector('#attachments .att img');
    await page.fill('#max_tokens', '48');
    await page.fill('#temperature', '0');
    await page.fill('#system', 'You are terse.');
    await page.focus('#message');
    await page.keyboard.type('What is in this image?');
    await page.keyboard.press('Control+Enter');
    await page.waitForSelector(`${lastAnswer}[data-state]`, { timeout: 60_000 });
    expect(await page.getAttribute(lastAnswer, 'data-state')).toBe('done');
    const answer = await text(page, `${lastAnswer} .text`);
    expect(answer.length).toBeGreaterThan(0);

    // Usage, TTFT and tokens/s; the prompt carried the image (the tiny VLM's 16 image tokens).
    const stats = await text(page, `${lastAnswer} .stats`);
    const m = /prompt (\d+) · completion (\d+) · total (\d+) tokens · TTFT (\d+) ms · ([\d.]+) tokens\/s/.exec(stats);
    expect(m, stats).not.toBeNull();
    const [prompt, completion, total] = [Number(m![1]), Number(m![2]), Number(m![3])];
    expect(total).toBe(prompt + completion);
    expect(completion).toBeLessThanOrEqual(48);
    const textOnly = (await (
      await fetch(`${stack.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: DEMO_MODEL_NAME, max_tokens: 1, messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'What is in this image?' }] }),
      })
    ).json()) as { usage: { prompt_tokens: number } };
    expect(prompt).toBe(textOnly.usage.prompt_tokens + TINY_IMAGE_PROMPT_TOKEN_DELTA);

    // Readable at phone width: nothing wider than the 375 px viewport; keyboard: Tab goes on from the message box.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.focus('#message');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('attach');
    await page.screenshot({ path: join(OUT, 'playground-375.png'), fullPage: true });

    // A long answer (ignore_eos through "More parameters"), stopped once it flows.
    await page.fill('#max_tokens', String(LONG));
    await page.fill('#extra', '{"ignore_eos": true}');
    await page.fill('#message', 'Tell me a long story.');
    await page.click('#send');
    // Streamed: text on screen while the answer is still being received; Stop, with the engine
    // frozen so that it cannot finish first (the check after proves it did not).
    await page.waitForFunction(() => (document.querySelector('#transcript .text.streaming')?.textContent?.length ?? 0) >= 5, undefined, { timeout: 60_000 });
    await withEngineFrozen(stack, async () => {
      await page.click('#stop');
      await page.waitForSelector(`${lastAnswer}[data-state]`, { timeout: 10_000 });
    });
    expect(await page.$$('#transcript .turn.assistant')).toHaveLength(2);
    expect(await page.getAttribute(lastAnswer, 'data-state')).toBe('stopped');
    await expectCancelled(stack, LONG);
    const stopped = await text(page, `${lastAnswer} .text`);
    expect(stopped.length).toBeGreaterThanOrEqual(5);
    expect(await text(page, `${lastAnswer} .stats`)).toMatch(/^stopped · \d+ chunks \(no usage reported\) · TTFT \d+ ms/);

    // A new chat; the same image again, dropped on the message area this time.
    await page.click('#clear');
    expect(await page.$$('#transcript .turn')).toHaveLength(0);
    await page.fill('#extra', '');
    await page.fill('#max_tokens', '8');
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      document.getElementById('compose')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, png.toString('base64'));
    await page.waitForSelector('#attachments .att img');
    await page.fill('#message', 'Describe it.');

    // Copy as curl: the command runs as it is and streams an answer with usage.
    await page.click('#copycurl');
    const curl = await text(page, '#code');
    writeFileSync(join(OUT, 'request.sh'), curl);
    expect(curl).toContain(`data:image/png;base64,${png.toString('base64')}`);
    const viaCurl = await execa('bash', ['-c', curl], { timeout: 60_000 });
    expect(viaCurl.stdout).toMatch(/"usage":\{[^}]*"prompt_tokens":\d+/);
    expect(viaCurl.stdout.trimEnd().endsWith('data: [DONE]')).toBe(true);
    // Copy as OpenAI SDK code: a Node module that runs with the openai package as it is.
    await page.click('#copysdk');
    const sdk = await text(page, '#code');
    writeFileSync(join(OUT, 'chat.mjs'), sdk);
    const viaSdk = await execa('node', [join(OUT, 'chat.mjs')], { timeout: 60_000, env: { NIM_API_KEY: '' } });
    expect(viaSdk.stdout).toMatch(/prompt_tokens: \d+/);

    // The page's own checks: an image over the server's limit is refused before anything is sent.
    const big = await sharp(randomBytes(300 * 300 * 3), { raw: { width: 300, height: 300, channels: 3 } }).png().toBuffer();
    expect(big.length).toBeGreaterThan(100 * 1024);
    await page.setInputFiles('#file', { name: 'big.png', mimeType: 'image/png', buffer: big });
    expect(await text(page, '#error')).toContain('big.png is ');
    expect(await text(page, '#error')).toContain('the server takes images up to 100 KiB');
    expect(await page.$$('#attachments .att')).toHaveLength(1);

    // What only the server can judge (bytes that are no image) comes back as its message, verbatim.
    await page.click('#attachments .att button');
    expect(await page.$$('#attachments .att')).toHaveLength(0);
    await page.fill('#system', '');
    await page.setInputFiles('#file', { name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('this is not a png') });
    await page.fill('#message', 'What is this?');
    await page.click('#send');
    await page.waitForSelector('#error:not([hidden])');
    const direct = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: DEMO_MODEL_NAME,
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${Buffer.from('this is not a png').toString('base64')}` } }, { type: 'text', text: 'What is this?' }] }],
        max_tokens: 8,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    const refusal = (await direct.json()) as { error: { message: string; code: string } };
    expect(direct.status).toBe(400);
    expect(await text(page, '#error .message')).toBe(refusal.error.message);
    expect(await text(page, '#error strong')).toBe(`400 ${refusal.error.code}`);
    // The refused message is back in the box, ready to edit and resend.
    expect(await page.inputValue('#message')).toBe('What is this?');

    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('pastes a short video (an ffmpeg-made MP4): sent as a data: URI, the engine sees its frames; a second video is refused in the page; Esc stops a long answer', { timeout: 120_000 }, async () => {
    const clip = join(OUT, 'clip.mp4');
    await execa('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=1:size=64x48:rate=8', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', clip]);
    const mp4 = readFileSync(clip);
    const { page, problems } = await openPage(browser);
    await page.goto(`${stack.url}/playground`);
    await page.waitForSelector('#model option', { state: 'attached' });
    await page.fill('#max_tokens', '4');
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'clip.mp4', { type: 'video/mp4' }));
      document.getElementById('message')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, mp4.toString('base64'));
    await page.waitForSelector('#attachments .att video');
    // NIM_MAX_VIDEOS_PER_PROMPT is 1: a second video is refused before anything is sent.
    await page.setInputFiles('#file', { name: 'again.mp4', mimeType: 'video/mp4', buffer: mp4 });
    expect(await text(page, '#error')).toBe('The server takes at most 1 video per request.');
    expect(await page.$$('#attachments .att')).toHaveLength(1);
    await page.fill('#message', 'What happens in this video?');
    await page.click('#send');
    await page.waitForSelector(`${lastAnswer}[data-state]`, { timeout: 60_000 });
    expect(await page.getAttribute(lastAnswer, 'data-state')).toBe('done');
    expect(await page.$$('#transcript .turn.user video')).toHaveLength(1);
    const prompt = Number(/prompt (\d+)/.exec(await text(page, `${lastAnswer} .stats`))?.[1]);
    // The same request sent directly: the page's prompt is the video's, token for token.
    const usage = async (content: unknown) =>
      (
        (await (
          await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: DEMO_MODEL_NAME, max_tokens: 1, messages: [{ role: 'user', content }] }) })
        ).json()) as { usage: { prompt_tokens: number } }
      ).usage.prompt_tokens;
    expect(prompt).toBe(await usage([{ type: 'video_url', video_url: { url: `data:video/mp4;base64,${mp4.toString('base64')}` } }, { type: 'text', text: 'What happens in this video?' }]));
    expect(prompt).toBeGreaterThan((await usage('What happens in this video?')) + TINY_IMAGE_PROMPT_TOKEN_DELTA);

    // Esc stops a long answer too, and cancels it on the engine.
    await page.fill('#max_tokens', String(LONG));
    await page.fill('#extra', '{"ignore_eos": true}');
    await page.fill('#message', 'Go on, at length.');
    await page.keyboard.press('Control+Enter');
    // (.streaming marks the answer being received; its text or reasoning has begun.)
    await page.waitForFunction(() => document.querySelector('#transcript .streaming') !== null && (document.querySelector('#transcript .turn.assistant:last-child')?.textContent?.length ?? 0) > 'assistant'.length, undefined, { timeout: 60_000 });
    await withEngineFrozen(stack, async () => {
      await page.keyboard.press('Escape');
      await page.waitForSelector(`${lastAnswer}[data-state]`, { timeout: 10_000 });
    });
    expect(await page.getAttribute(lastAnswer, 'data-state')).toBe('stopped');
    expect(await page.$$('#transcript .turn.assistant')).toHaveLength(2);
    await expectCancelled(stack, LONG);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('/docs links to the playground', async () => {
    const { page, problems } = await openPage(browser);
    await page.goto(`${stack.url}/docs`);
    await page.click('a[href="playground"]');
    await page.waitForSelector('#model option', { state: 'attached' });
    expect(new URL(page.url()).pathname).toBe('/playground');
    await page.screenshot({ path: join(OUT, 'playground-desktop.png') });
    expect(problems).toEqual([]);
    await page.context().close();
  });
});

describe('playground, API keys set', () => {
  const KEY = 'sk-playground-good-0123456789';
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ NIM_API_KEYS: KEY, NIM_DOCS_PUBLIC: '1', NIM_LOG_LEVEL: 'WARNING' });
  });
  afterAll(async () => {
    expect(await stack?.stop()).toBe(0);
  });

  it('keys set, pages public (NIM_DOCS_PUBLIC=1): the page asks for a key; a wrong key shows the server 401 message, the right one works and is kept nowhere but memory', { timeout: 120_000 }, async () => {
    for (const path of ['/docs', '/playground']) expect((await fetch(`${stack.url}${path}`)).status, path).toBe(200);
    expect((await fetch(`${stack.url}/v1/models`)).status).toBe(401);
    const { page, problems } = await openPage(browser);
    expect((await page.goto(`${stack.url}/playground`))?.status()).toBe(200);
    expect(await page.isVisible('#keybox')).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('key');
    expect(await page.$$('#model option')).toHaveLength(0);

    await page.keyboard.type('sk-wrong-key');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#error:not([hidden])');
    const direct = await fetch(`${stack.url}/v1/models`, { headers: { authorization: 'Bearer sk-wrong-key' } });
    const refusal = (await direct.json()) as { error: { message: string; code: string } };
    expect(direct.status).toBe(401);
    expect(await text(page, '#error .message')).toBe(refusal.error.message);
    expect(await text(page, '#error strong')).toBe('401 invalid_api_key');
    expect(await page.isVisible('#keybox')).toBe(true);

    await page.fill('#key', KEY);
    await page.press('#key', 'Enter');
    await page.waitForSelector('#model option', { state: 'attached' });
    expect(await page.isVisible('#error')).toBe(false);
    await page.fill('#max_tokens', '8');
    await page.fill('#message', 'Hi');
    await page.click('#send');
    await page.waitForSelector(`${lastAnswer}[data-state]`, { timeout: 60_000 });
    expect(await page.getAttribute(lastAnswer, 'data-state')).toBe('done');
    expect(await text(page, `${lastAnswer} .stats`)).toMatch(/prompt \d+ · completion \d+/);

    // The key is in no storage, cookie, URL or form field, and not in the copied code.
    const kept = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie, url: location.href, field: (document.getElementById('key') as HTMLInputElement).value }));
    expect(kept).toEqual({ local: 0, session: 0, cookie: '', url: `${stack.url}/playground`, field: '' });
    await page.click('#copycurl');
    const curl = await text(page, '#code');
    expect(curl).not.toContain(KEY);
    expect(curl).toContain('Authorization: Bearer $NIM_API_KEY');
    const viaCurl = await execa('bash', ['-c', curl], { timeout: 60_000, env: { NIM_API_KEY: KEY } });
    expect(viaCurl.stdout.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(problems).toEqual([]);
    await page.context().close();
  });
});
