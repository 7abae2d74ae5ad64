// What media the served model takes. llama-server says so in GET /props (`modalities`: vision,
// video, audio — video when the build has MTMD_VIDEO and the projector does vision); vLLM and
// trtllm-serve do not, so for them the manifest says. Unknown (an engine that does not answer):
// undefined, and the media step normalizes and forwards.
import type { Modalities } from './normalize.js';

/** Parse llama-server's /props body; undefined when it names no modalities. */
export function modalitiesFromProps(text: string): Modalities | undefined {
  try {
    const m = (JSON.parse(text) as { modalities?: { vision?: unknown; video?: unknown; audio?: unknown } }).modalities;
    if (typeof m !== 'object' || m === null) return undefined;
    return { image: m.vision === true, video: m.video === true, audio: m.audio === true };
  } catch {
    return undefined;
  }
}

/** Ask a llama-server (once it is healthy); undefined if it does not say. */
export async function engineModalities(getText: (path: string, timeoutMs: number) => Promise<{ status: number; text: string }>): Promise<Modalities | undefined> {
  const r = await getText('/props', 5000).catch(() => undefined);
  return r?.status === 200 ? modalitiesFromProps(r.text) : undefined;
}
