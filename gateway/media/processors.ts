// The media step's processing modules (probe/sample video, probe audio, convert/resize images),
// bound to the settings. Until they are merged the media step refuses video and audio parts.
import type { MediaProcessors } from './normalize.js';

export function mediaProcessors(): Partial<MediaProcessors> {
  return {};
}
