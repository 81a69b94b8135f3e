"""`python -m bench` (or `make bench`): run the benchmark and write bench/results/latest.md."""

from bench.run import main

raise SystemExit(main())
