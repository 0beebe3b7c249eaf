export * from './component.js';
export * from './edge.js';
export * from './envelope.js';
export * from './events.js';
export * from './flow.js';
export * from './permissions.js';
export * from './secrets.js';
export * from './step-message.js';
