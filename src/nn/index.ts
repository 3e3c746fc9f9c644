/** Modules and layers. */
export { Module, ModuleList, StateDictError, type HostTensor, type StateValue } from './module.js';
export * from './layers.js';
export * from './conv.js';
export { sincos2dTable, rope2dTables } from './tables.js';
