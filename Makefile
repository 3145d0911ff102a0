# The whole test suite is `make test`; .ci/run calls exactly that.
OPA_VERSION ?= v1.22.3
GO_TEST_FLAGS ?= -race -count=1 -timeout 30m

.PHONY: test go-test opa-test conformance lint run

test: lint go-test opa-test conformance

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	@go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

go-test:
	go test $(GO_TEST_FLAGS) ./...

# The stock OPA CLI, built from the Go module proxy (cached after the first run).
opa-test:
	go run github.com/open-policy-agent/opa@$(OPA_VERSION) test -v policies/

conformance:
	./scripts/conformance.sh

run:
	go run ./cmd/scimd serve
