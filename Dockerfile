# deckhand: agent, migrate and healthcheck (one static multi-call binary) in a scratch image.
#
# Use it as a tools image:
#   COPY --from=deckhand:0.1.0 /usr/local/bin/ /usr/local/bin/
# or as the base of an app image (ENTRYPOINT and HEALTHCHECK below are inherited).
#
# Build: docker build -t deckhand:0.1.0 .
# Verified without a Docker engine by scripts/image-check (part of scripts/test): buildah
# builds the runtime stage, with the builder stage replaced by binaries built on the host
# through a named build context, and podman runs it as the non-root user.

FROM rust:1.95-bookworm AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY . .
# Static glibc (static-pie): runs in scratch, no musl allocator penalty. Built for the
# build platform's own architecture (amd64 or arm64/Graviton). One multi-call binary
# (multicall/): agent, migrate and healthcheck are links to it, chosen by name; the three
# share most of their code, so this is about half the size of three binaries.
RUN target="$(rustc -vV | sed -n 's/^host: //p')" \
 && RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target "$target" -p deckhand-multicall \
 && mkdir -p /out \
 && cp "target/$target/release/deckhand" /out/ \
 && ln -s deckhand /out/agent && ln -s deckhand /out/migrate && ln -s deckhand /out/healthcheck

FROM scratch
# CA bundle for TLS to AWS APIs (and sslrootcert=system for PostgreSQL).
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /out/ /usr/local/bin/
# A numeric non-root user: scratch has no /etc/passwd, and runAsNonRoot checks need a number.
USER 65532:65532
ENV PATH=/usr/local/bin
# The agent is PID 1 and runs the CMD of the image built on top of this one.
ENTRYPOINT ["/usr/local/bin/agent", "--"]
# Liveness only (never the database). ECS ignores image HEALTHCHECKs: repeat it in the
# task definition's healthCheck.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/healthcheck", "probe"]
