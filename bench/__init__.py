"""Benchmarks of deploybook against the plain tools (issue 11): `python -m bench.run`.

Benchmarks, not tests: nothing here asserts on time. `tests/test_bench_smoke.py` runs a
tiny version of each one so the scripts keep working.
"""
