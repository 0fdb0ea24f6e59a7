"""`make bench`: the nightly evaluation and the dispatcher at full size (../shared/PERF.md).

Run by hand (``python -m benchmarks.run``), never in CI: it builds its own PostgreSQL database
``winback_bench`` and uses Redis database 14. The figures land in ``docs/benchmarks.md``.
"""
