export * from '../audit/schema.js';
export * from '../bus/schema.js';
export * from '../flows/schema.js';
export * from '../iam/schema.js';
export * from '../metadata/schema.js';
export * from '../secrets/schema.js';
