# The project's commands, one target each: the same commands the README, CONTRIBUTING.md and CI
# (.ci/run) use, so there is one list of them. `make help` lists the targets.
.DEFAULT_GOAL := help
.PHONY: help run test test-% ci fmt lint images release bench bench-quick alert-demo alert-demo-compose

help: ## list the targets
	@grep -E '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

run: ## the whole system in one process (the all-in-one runner)
	cargo run --release

alert-demo: ## stop a service and see health-check's webhook notifications arrive (direct alerting)
	scripts/alert-demo.sh

alert-demo-compose: ## the same over the compose stack: stop a container, see the notifications (images built)
	scripts/alert-demo-compose.sh

test: ## every test area, as CI runs them
	scripts/test

test-%: ## one area: test-rust, test-security, test-charts, test-ansible, test-containers, test-monitoring, test-deploy, test-upgrade, test-faults
	scripts/test $*

ci: ## what CI runs on a fresh clone: installs the tools, then the tests
	bash .ci/run

fmt: ## format the Rust code
	cargo fmt --all

lint: ## the Rust lints as the rust area runs them (warnings are errors)
	cargo clippy --workspace --all-targets --locked -- -D warnings

images: ## the four FROM-scratch images
	scripts/build-images.sh

release: ## build/release/<version>/: chart packages, image archives, SBOMs, SHA256SUMS, the CHANGELOG entry
	scripts/release.sh

bench: ## the side-by-side benchmark against the legacy apps (about 10 minutes)
	bench/run.sh

bench-quick: ## one short round per scenario, to check the benchmark's tooling
	bench/run.sh --quick
