"""Tooling for the demo, the benchmarks and the tests: a throwaway Redis, worker nodes we start and stop."""
