# syntax=docker/dockerfile:1
#
# The two images of a release, built from source:
#
#   docker build --target operator   -t ghcr.io/mcp-operator/operator:0.1.0 .
#   docker build --target mcp-server -t ghcr.io/mcp-operator/mcp-server:0.1.0 .
#
# Both binaries are linked statically against musl, so the final images hold one file each and
# run as the non-root user 65532. The companion binary's path, /usr/local/bin/mcp-server, is a
# contract: the operator's stdio-bridge init container runs
# `/usr/local/bin/mcp-server install /mcp-bridge/mcp-server` from this image.
# See docs/images.md.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM docker.io/library/rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
# musl-gcc compiles the C parts of dependencies (ring) for the musl target.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
# The image's own architecture: buildx runs this stage once per --platform.
RUN echo "$(uname -m)-unknown-linux-musl" > /rust-target \
 && rustup target add "$(cat /rust-target)"
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(cat /rust-target)" \
 && cargo build --release --locked --target "$target" --bin mcp-operator --bin mcp-server \
 && mkdir -p /out \
 && cp "target/$target/release/mcp-operator" "target/$target/release/mcp-server" /out/

# distroless/static: no shell, no package manager; CA certificates, /etc/passwd with user 65532
# (nonroot) and a writable /tmp.
FROM gcr.io/distroless/static-debian12:nonroot AS operator
COPY --from=builder /out/mcp-operator /usr/local/bin/mcp-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mcp-operator"]

FROM gcr.io/distroless/static-debian12:nonroot AS mcp-server
COPY --from=builder /out/mcp-server /usr/local/bin/mcp-server
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mcp-server"]
