/** Container networking (tier 4): netns, CNI, port publishing, etc files. */
export * from './network.js';
export * from './ports.js';
export * from './etc-files.js';
export { createNetns, removeNetns, isNetns, execInNetns, nsenterArgs } from './netns.js';
export {
  addNetworkList,
  delNetworkList,
  checkNetworkList,
  execPlugin,
  readCache,
  loopbackUp,
  DEFAULT_PLUGIN_DIRS,
  type CniConfList,
  type CniPluginConf,
  type CniResult,
  type CniRuntimeConf,
  type CniCacheEntry,
} from './cni.js';
export { cniChainName, sweepContainerRules, pruneSharedChains } from './iptables.js';
