/** Placeholder: filled in by the op-group owner. */
export {};
