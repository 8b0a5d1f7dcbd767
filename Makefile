# Shortcuts; the scripts do the work and also run without make.
.PHONY: setup run test bench
setup:
	bash scripts/setup.sh
run:
	bash scripts/run-local.sh
test:
	bash scripts/test.sh
# Figures, printed (not asserted): throughput and the large message through Postfix, content scanning cost,
# S/MIME verification time.
bench: setup
	.venv/bin/python bench/bench_throughput.py
	.venv/bin/python bench/bench_content.py
	.venv/bin/python bench/bench_smime.py
