# syntax=docker/dockerfile:1.7
# Multi-arch image of Simulator Gateway: one compiled binary on distroless.
#   docker buildx build --platform linux/amd64,linux/arm64 -t sim-gateway .
# The build stage runs on the builder's own platform and cross-compiles, so no QEMU is needed.

ARG BUN_VERSION=1.4.4

FROM --platform=$BUILDPLATFORM oven/bun:${BUN_VERSION} AS build
ARG TARGETARCH
WORKDIR /src
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production --ignore-scripts
COPY tsconfig.json ./
COPY scripts/build.ts scripts/
COPY src src
COPY client/src client/src
COPY client/lobby client/lobby
RUN case "$TARGETARCH" in \
      amd64) target=bun-linux-x64 ;; \
      arm64) target=bun-linux-arm64 ;; \
      *) echo "unsupported architecture: $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && bun scripts/build.ts --target "$target" --outfile /out/sim-gateway \
 && mkdir -m 0700 -p /out/data

FROM gcr.io/distroless/base-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/sim-gateway/sim-gateway
LABEL org.opencontainers.image.title="sim-gateway" \
      org.opencontainers.image.description="API gateway of a multiplayer industrial simulator: accounts, sessions, users, game rooms" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /out/sim-gateway /sim-gateway
COPY --from=build --chown=65532:65532 /out/data /data
ENV HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=sqlite:/data/sim-gateway.sqlite \
    AVATAR_DIR=/data/avatars
USER 65532:65532
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["/sim-gateway", "--healthcheck"]
ENTRYPOINT ["/sim-gateway"]
