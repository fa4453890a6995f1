/** The fixed seeds CI runs the fuzzer with (tools/fuzz/ci.ts): the original bounded run's, the one that found the
 *  truncated-PNG bug, and two more. A fixed list keeps CI reproducible; each seed reaches different cases. */
export const CI_SEEDS: readonly number[] = [20240601, 20261207, 7, 4242];
