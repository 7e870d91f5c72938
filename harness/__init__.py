"""Throwaway servers for the tests, the benchmarks and the demo; not part of the installed service."""
