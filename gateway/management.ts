// NIM management endpoints (NIM's API): /v1/metadata, /v1/version, /v1/license, /v1/manifest.
// The launcher describes the served model once (ManagementInfo, built from the launch plan and
// its manifest); the gateway only shapes it. Response schemas are zod, so tests validate against
// them and the OpenAPI document is generated from them.
import { createHash } from 'node:crypto';
import { z } from 'zod';

/** What the launcher tells the gateway about the deployment. */
export interface ManagementInfo {
  /** portico's release (package.json version). */
  release: string;
  model: {
    /** Where the weights come from: `portico://tiny-vlm`, `hf://org/name`, a local path, ... */
    url: string;
    /** The model's short name (manifest id, e.g. `meta/llama-3.1-8b-instruct`). */
    shortName: string;
  };
  profile: { id: string; name: string };
  /** The manifest the profile was selected from, as YAML text (synthesized when there was none). */
  manifestYaml: string;
  license: {
    name: string;
    /** File holding the license text ('' when it exists only in memory). */
    path: string;
    url: string;
    content: string;
  };
  /** Required assets other than the model: the engine, e.g. `llamacpp:llama-server`. */
  assets: string[];
  /** NIM's alternate artifact location; portico has none: ''. */
  repositoryOverride: string;
}

/** The OpenAPI version of portico's own API: /v1/version `api` and the document's info.version. */
export const API_VERSION = '1.0.0';

export const licenseResponse = z
  .object({
    name: z.string().describe('Name of the license of the served model.'),
    path: z.string().describe('File holding the license text.'),
    sha: z.string().regex(/^[0-9a-f]{40}$/).describe('SHA-1 of `content` (hex).'),
    size: z.number().int().min(0).describe('Size of `content` in bytes (UTF-8).'),
    url: z.string().describe('Where the license is published.'),
    type: z.literal('file'),
    content: z.string().describe('The full license text.'),
  });

export const modelInfoEntry = z
  .looseObject({
    modelUrl: z.string().describe('Where the weights come from.'),
    shortName: z.string().describe('Short model name.'),
    servedModelName: z.string().describe('The `model` clients send.'),
    maxModelLen: z.number().int().describe('Context length served.'),
  });

export const metadataResponse = z
  .object({
    version: z.string().describe('portico release.'),
    assetInfo: z.array(z.string()).describe('Required assets other than the model (the engine).'),
    licenseInfo: licenseResponse,
    modelInfo: z.array(modelInfoEntry),
    repository_override: z.string(),
    selectedModelProfileId: z.string().describe('Id of the selected model profile.'),
    selectedModelProfileName: z.string().describe('Name of the selected model profile.'),
  });

export const versionResponse = z
  .object({ release: z.string().describe('portico release.'), api: z.string().describe('Version of this API (the OpenAPI document).') });

export const manifestResponse = z
  .object({
    manifest_file: z.string().describe('The model manifest as YAML text.'),
    repository_override: z.string(),
  });

export type LicenseResponse = z.infer<typeof licenseResponse>;
export type MetadataResponse = z.infer<typeof metadataResponse>;

export interface Management {
  metadata(): MetadataResponse;
  version(): z.infer<typeof versionResponse>;
  license(): LicenseResponse;
  manifest(): z.infer<typeof manifestResponse>;
}

/** Response bodies for the management routes. `served` is read live (an external engine's id is learnt late). */
export function createManagement(info: ManagementInfo, served: { readonly id: string; readonly maxModelLen: number }): Management {
  const content = info.license.content;
  const license: LicenseResponse = {
    name: info.license.name,
    path: info.license.path,
    sha: createHash('sha1').update(content, 'utf8').digest('hex'),
    size: Buffer.byteLength(content, 'utf8'),
    url: info.license.url,
    type: 'file',
    content,
  };
  return {
    metadata: () => ({
      version: info.release,
      assetInfo: info.assets,
      licenseInfo: license,
      modelInfo: [{ modelUrl: info.model.url, shortName: info.model.shortName || served.id, servedModelName: served.id, maxModelLen: served.maxModelLen }],
      repository_override: info.repositoryOverride,
      selectedModelProfileId: info.profile.id,
      selectedModelProfileName: info.profile.name,
    }),
    version: () => ({ release: info.release, api: API_VERSION }),
    license: () => license,
    manifest: () => ({ manifest_file: info.manifestYaml, repository_override: info.repositoryOverride }),
  };
}

/** Used when the app is created without launcher-provided info (unit tests, embedding). */
export function fallbackManagementInfo(model: { id: string; root: string }, release = '0.0.0'): ManagementInfo {
  const content = `No license information was provided for ${model.id}.\n`;
  return {
    release,
    model: { url: model.root, shortName: model.id },
    profile: { id: 'unknown', name: 'unknown' },
    manifestYaml: `# no manifest was given\nmodel:\n  id: ${JSON.stringify(model.id)}\n  source: ${JSON.stringify(model.root)}\n`,
    license: { name: 'unknown', path: '', url: '', content },
    assets: [],
    repositoryOverride: '',
  };
}
