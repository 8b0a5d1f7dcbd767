# Shortcuts; the scripts do the work and also run without make.
.PHONY: setup run test bench
setup:
	bash scripts/setup.sh
run:
	bash scripts/run-local.sh
test:
	bash scripts/test.sh
bench:
	bash scripts/setup.sh && .venv/bin/python bench/bench_throughput.py
