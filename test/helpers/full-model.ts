/** The synthetic full-size checkpoint for tests and benchmarks (the generator lives in scripts/, used by `npm run try`). */
export * from "../../scripts/synthetic-checkpoint.js";
