// The media code refuses an image deep inside fetch/sniff, where the request path of the part
// (`messages[0].content[1].image_url.url`) is unknown. It throws a MediaRefusal; normalize.ts turns
// it into a PorticoError carrying that path as `param`, and counts it by `reason`.
import { PorticoError } from '../../core/errors.js';

export type MediaErrorCode =
  | 'invalid_image'
  | 'image_fetch_blocked'
  | 'image_fetch_failed'
  | 'too_many_images'
  | 'image_too_large'
  | 'invalid_video'
  | 'video_too_large'
  | 'video_too_long'
  | 'invalid_audio'
  | 'audio_too_large'
  | 'audio_too_long';

/** Metric label for a refusal: a small fixed set, so it is safe as a Prometheus label. */
export type RefusalReason =
  | 'invalid_part' // image_url is not an object with a string url, or an unparsable URL
  | 'blocked_scheme'
  | 'blocked_credentials'
  | 'blocked_port'
  | 'blocked_domain'
  | 'blocked_address'
  | 'bad_data_uri'
  | 'not_image'
  | 'bad_dimensions'
  | 'too_many_pixels'
  | 'too_large'
  | 'too_many_images'
  | 'timeout'
  | 'upstream_status'
  | 'too_many_redirects'
  | 'network'
  | 'unexpected' // a parser threw on the bytes: still the client's image, not a 500
  // video and audio (video.ts, audio.ts)
  | 'not_video'
  | 'not_audio'
  | 'too_long'
  | 'too_many_frames'
  | 'undecodable';

export class MediaRefusal extends Error {
  constructor(
    readonly code: MediaErrorCode,
    readonly reason: RefusalReason,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(detail, options);
    this.name = 'MediaRefusal';
  }

  toPorticoError(param: string): PorticoError {
    return new PorticoError(this.code, this.message, { param, cause: this });
  }
}

export const blocked = (reason: RefusalReason, detail: string) =>
  new MediaRefusal('image_fetch_blocked', reason, detail);
export const fetchFailed = (reason: RefusalReason, detail: string, cause?: unknown) =>
  new MediaRefusal('image_fetch_failed', reason, detail, { cause });
export const invalidImage = (reason: RefusalReason, detail: string) =>
  new MediaRefusal('invalid_image', reason, detail);
export const tooLarge = (detail: string) => new MediaRefusal('image_too_large', 'too_large', detail);
