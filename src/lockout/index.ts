// What guard (and the commands) use of the lockout engine: src/lockout/engine.ts's class and the types.
export { LockoutEngine, type EngineConfig } from './engine.js';
export { Enforcer, type EnforcerConfig } from './enforcer.js';
export { lockoutAuditEntry, type LockoutAuditEntry } from './audit.js';
export { parseRanges } from './address.js';
export { lockoutPolicy, type LockoutFlags } from './options.js';
export { MAX_THRESHOLD } from './policy.js';
export { readLockouts, storePath } from './store.js';
export {
  DEFAULT_FOR_MS,
  DEFAULT_WINDOW_MS,
  type Lockout,
  type LockoutBy,
  type LockoutClient,
  type LockoutEvent,
  type LockoutKind,
  type LockoutNode,
  type LockoutPolicy,
} from './types.js';
