# syntax=docker/dockerfile:1
#
# Gatehouse container image.
#
#   docker build -t gatehouse .
#   docker run --read-only -v gatehouse-state:/var/lib/gatehouse \
#     -v ./gatehouse.yaml:/etc/gatehouse/gatehouse.yaml:ro gatehouse
#
# The final stage holds the static binary, CA roots and a passwd entry for
# the numeric non-root user, and nothing else: no shell, no package manager.
# The root filesystem can be read-only; the only writable path the gateway
# needs is /var/lib/gatehouse, for the bolt store (session.store: bolt with
# session.bolt_path under it). Redis deployments need no writable path.
# deploy/helm/test lints this file (deploy/helm/test/dockerfile_test.go).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
# A static binary: no cgo, so it runs on an image without libc.
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
RUN go build -trimpath \
      -ldflags "-s -w -X github.com/gatehouse-bff/gatehouse/internal/cli.Version=${VERSION}" \
      -o /out/gatehouse ./cmd/gatehouse
# The state directory, owned by the runtime user: the final stage has no
# shell to create it.
RUN mkdir -p /out/state /out/config \
 && printf 'gatehouse:x:65532:65532:gatehouse:/var/lib/gatehouse:/sbin/nologin\n' > /out/passwd \
 && printf 'gatehouse:x:65532:\n' > /out/group

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build --chown=65532:65532 /out/state /var/lib/gatehouse
COPY --from=build /out/config /etc/gatehouse
COPY --from=build /out/gatehouse /gatehouse
USER 65532:65532
WORKDIR /var/lib/gatehouse
VOLUME ["/var/lib/gatehouse"]
EXPOSE 8080 9090
# gatehouse drains in-flight requests on SIGTERM for up to
# server.shutdown_timeout, then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/gatehouse"]
CMD ["serve", "--config", "/etc/gatehouse/gatehouse.yaml"]
