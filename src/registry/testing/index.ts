/** Test support for any module's tests: real registries, the fault-injecting double, fixtures. */
export { startRegistry, parseAccessLogLine, type StartRegistryOptions, type TestRegistry, type RequestLogEntry, type TlsMaterial, type TestUser } from './registries.js';
export { FaultyRegistry, type Fault, type FaultRule, type FaultyRequest, type FaultyAuth, type FaultyRegistryOptions } from './faulty-registry.js';
export { TestTokenServer, type TokenRequestRecord } from './token-server.js';
export * from './fixtures.js';
