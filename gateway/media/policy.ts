// What the media path is configured with (the composition root passes the NIM_MEDIA_* settings).
export interface MediaPolicy {
  /** Hosts media URLs may name: exact hosts and `*.suffix`; empty = any public host. */
  allowedDomains: readonly string[];
  /** Loopback, RFC 1918, CGNAT and ULA addresses allowed (metadata and link-local never are). */
  allowPrivateNetworks: boolean;
  maxBytes: number;
  fetchTimeoutMs: number;
  maxPixels: number;
  maxImages: number;
  maxVideos: number;
  maxAudios: number;
  maxRedirects: number;
  /** In-memory cache of fetched images, bytes (0 = off). */
  cacheBytes: number;
  /** Video caps; duration and frames are read from the container before anything decodes. */
  maxVideoBytes: number;
  maxVideoSeconds: number;
  maxVideoFrames: number;
  /** Frames sampled from a video for an engine that takes images but not video. */
  videoFrames: number;
  /** Images (and sampled frames) above this many pixels are shrunk, aspect kept; undefined: never. */
  resizeMaxPixels: number | undefined;
  maxAudioBytes: number;
  maxAudioSeconds: number;
}
