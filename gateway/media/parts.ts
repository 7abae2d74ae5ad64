// The content-part table: every part type the OpenAI, vLLM and NIM APIs define, where its URL or
// data lives, its media kind, and what each engine receives. The media step (normalize.ts) reads
// it for every route the route table marks as carrying messages; a type not in the table is
// refused, never forwarded (vLLM and llama-server fetch URLs themselves, with no address checks).
// README's "Content parts" table is generated from it (tests/readme.test.ts keeps them in step).

export type MediaKind = 'image' | 'video' | 'audio';
export type PartKind = 'text' | MediaKind | 'refused';

export interface PartRow {
  kind: PartKind;
  /**
   * Where the client puts the URL or data, tried in order: a path of object keys. For text rows,
   * the field holding the text.
   */
  sources: readonly (readonly string[])[];
  /** Text rows: the part is rewritten to `{type: 'text', text}` (every engine takes that). */
  asText?: boolean;
  /** Refused rows: why (the 400's message). */
  why?: string;
  /** README columns. */
  doc: { accepts: string; engines: string };
}

const IMAGE_OUT = '`image_url` `{url: "data:image/…;base64,…"}` (converted to PNG where the engine cannot decode the type; downscaled above `NIM_MEDIA_RESIZE_MAX_PIXELS`)';

export const PARTS = {
  text: { kind: 'text', sources: [['text']], doc: { accepts: '`text`', engines: 'unchanged' } },
  input_text: { kind: 'text', sources: [['text']], asText: true, doc: { accepts: '`text` (Responses API)', engines: '`{type: "text", text}`' } },
  refusal: { kind: 'text', sources: [['refusal']], asText: true, doc: { accepts: '`refusal` (an earlier assistant turn)', engines: '`{type: "text", text}`' } },
  image_url: {
    kind: 'image',
    sources: [['image_url', 'url'], ['image_url']],
    doc: { accepts: '`image_url.url` (or `image_url` as a string): http(s) URL or `data:image/…;base64`', engines: IMAGE_OUT },
  },
  input_image: {
    kind: 'image',
    sources: [['image_url'], ['image_url', 'url']],
    doc: { accepts: '`image_url`: http(s) URL or `data:` URI (Responses API; `file_id` refused)', engines: IMAGE_OUT },
  },
  video_url: {
    kind: 'video',
    sources: [['video_url', 'url'], ['video_url']],
    doc: {
      accepts: '`video_url.url`: http(s) URL or `data:video/…;base64` (MP4/MOV, WebM/MKV, …)',
      engines: 'engines that take video: `video_url` `{url: "data:video/…;base64,…"}`; others: `NIM_VIDEO_FRAMES` sampled frames as `image_url` parts in its place',
    },
  },
  input_video: {
    kind: 'video',
    sources: [['input_video', 'url'], ['input_video', 'data'], ['input_video']],
    doc: { accepts: '`input_video.url` / `.data` (llama.cpp\'s name for `video_url`)', engines: 'as `video_url`' },
  },
  audio_url: {
    kind: 'audio',
    sources: [['audio_url', 'url'], ['audio_url']],
    doc: {
      accepts: '`audio_url.url`: http(s) URL or `data:audio/…;base64` (WAV, MP3, FLAC, OGG)',
      engines: '`input_audio` `{data: <base64>, format}` (llama.cpp: Ogg re-encoded as WAV; TensorRT-LLM, whose `input_audio` is unfinished: `audio_url` with a `data:` URI)',
    },
  },
  input_audio: {
    kind: 'audio',
    sources: [['input_audio', 'data']],
    doc: { accepts: '`input_audio.data`: base64 (or a `data:` URI); `format` is checked against the bytes', engines: 'as `audio_url`' },
  },
  image_embeds: {
    kind: 'refused',
    sources: [],
    why: 'precomputed image embeddings are tensors the engine deserializes (torch) and the gateway cannot validate; send the image instead',
    doc: { accepts: 'refused (400 `unsupported_content_part`)', engines: 'never forwarded' },
  },
  file: {
    kind: 'refused',
    sources: [],
    why: 'no engine served here reads files; send the pages as images',
    doc: { accepts: 'refused (400 `unsupported_content_part`)', engines: 'never forwarded' },
  },
  input_file: {
    kind: 'refused',
    sources: [],
    why: 'no engine served here reads files; send the pages as images',
    doc: { accepts: 'refused (400 `unsupported_content_part`, Responses API)', engines: 'never forwarded' },
  },
} as const satisfies Record<string, PartRow>;

export type PartType = keyof typeof PARTS;

export function partRow(type: unknown): PartRow | undefined {
  return typeof type === 'string' && Object.hasOwn(PARTS, type) ? (PARTS as Record<string, PartRow>)[type] : undefined;
}

/** Where a row's URL/data sits in `part`: the string and its path suffix, or undefined. */
export function locate(row: PartRow, part: Record<string, unknown>): { value: string; path: string } | undefined {
  for (const keys of row.sources) {
    let v: unknown = part;
    for (const k of keys) v = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined;
    if (typeof v === 'string' && v !== '') return { value: v, path: keys.join('.') };
  }
  return undefined;
}

/** The table as Markdown (README "Content parts"). */
export function partTableMarkdown(): string {
  const rows = Object.entries(PARTS as Record<string, PartRow>).map(
    ([type, r]) => `| \`${type}\` | ${r.kind === 'refused' ? '—' : r.kind} | ${r.doc.accepts} | ${r.doc.engines} |`,
  );
  return ['| part `type` | kind | where the URL or data is | what the engine receives |', '|---|---|---|---|', ...rows].join('\n');
}
