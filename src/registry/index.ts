/** OCI distribution client: see client.ts (RegistryClient) and credentials.ts (Docker's config.json). */
export {
  RegistryClient,
  DEFAULT_LIMITS,
  DEFAULT_USER_AGENT,
  apiHost,
  type RegistryClientOptions,
  type ManifestResult,
  type PingResult,
  type Limits,
} from './client.js';
export type { OpenBlobOptions, BlobProgress } from './blobs.js';
export { DEFAULT_CHUNK_SIZE, type UploadOptions, type UploadSession, type MountResult } from './upload.js';
export { repositoryScope, type Credentials, type CredentialSource } from './auth.js';
export { CredentialStore, credentialKey, convertToHostname, defaultConfigPath, DOCKER_HUB_KEY, type DockerConfigFile, type AuthEntry } from './credentials.js';
export { parseChallenges, type Challenge } from './challenge.js';
export { redactUrl, type RegistryContext } from './errors.js';
export { MANIFEST_MEDIA_TYPES, parseManifest } from './verify.js';
export { isLoopbackHost, isInsecureHost } from './transport.js';
export { validateRepository, validateTag, parseManifestReference } from './names.js';
