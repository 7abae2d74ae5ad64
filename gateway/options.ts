// What the gateway is configured with: its own type (as hono's middleware own theirs), which the
// composition root fills from the settings. Absent options take the settings' defaults
// (core/config.ts, the one place defaults live), so a test passing a few gets what `npm start` would.
import { settingDefaults } from '../core/config.js';
import type { CorsOptions } from './cors.js';

export interface GatewayOptions {
  maxRequestBytes: number;
  apiKeys: readonly string[];
  apiKeysFile: string | undefined;
  /** Per-key defaults (a keys-file line may override); 0 = unlimited. */
  rateLimitRpm: number;
  rateLimitTpm: number;
  /** In-flight inference requests (0 = no limit), requests that may wait, and for how long. */
  maxConcurrentRequests: number;
  maxQueue: number;
  queueTimeoutMs: number;
  metricsPublic: boolean;
  /** /docs and /playground need no key: the pages hold no data, and their API calls still need one. */
  docsPublic: boolean;
  cors: CorsOptions | undefined;
  maxHeaders: number;
  /** An SSE stream with no byte delivered for this long is ended (0 = never). */
  streamIdleTimeoutMs: number;
  /** Media limits the playground page checks attachments against (the media guard enforces them). */
  media: { maxBytes: number; maxPixels: number; maxImages: number; maxVideos: number; maxVideoBytes: number };
}

/** The gateway's options when none are given: the settings' own defaults. */
export function gatewayDefaults(): GatewayOptions {
  const d = settingDefaults();
  return {
    maxRequestBytes: d.maxRequestBytes,
    apiKeys: d.apiKeys,
    apiKeysFile: d.apiKeysFile,
    rateLimitRpm: d.rateLimitRpm,
    rateLimitTpm: d.rateLimitTpm,
    maxConcurrentRequests: d.maxConcurrentRequests,
    maxQueue: d.maxQueue,
    queueTimeoutMs: d.queueTimeoutMs,
    metricsPublic: d.metricsPublic,
    docsPublic: d.docsPublic,
    cors: d.cors,
    maxHeaders: d.maxHeaders,
    streamIdleTimeoutMs: d.streamIdleTimeoutMs,
    media: d.media,
  };
}
