/** Every op, one import away. Each op's forward and backward live together in its group file. */
export * from './elementwise.js';
export * from './reduce.js';
export * from './movement.js';
