# syntax=docker/dockerfile:1
#
# Images of the platform's parts, one target per binary:
#
#   docker build --target data -t comfortech/data .
#
# Targets: data, device, notify, main-gateway, auth-gateway, admin-gateway
# (each with a HEALTHCHECK on its ops port's /healthz) and comfortctl.
# Every binary is built by scripts/build.sh, the script `make build` runs,
# so images and `make build` cannot build differently. The images are
# distroless static (CA certificates, tzdata, /etc/passwd, no shell) and run
# as the unprivileged user nonroot (65532).

ARG GO_VERSION=1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
ARG TARGETOS
ARG TARGETARCH
# One compilation for every image: they share most packages. The caches
# outlive the layer, so a rebuild after a source change is incremental.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    scripts/build.sh /out data device notify main-gateway auth-gateway admin-gateway comfortctl

FROM ${RUNTIME_IMAGE} AS runtime
LABEL org.opencontainers.image.vendor="Comfortech" \
      org.opencontainers.image.description="Comfortech IoT platform"
USER 65532:65532
ENV LOG_FORMAT=json

FROM runtime AS data
COPY --from=build /out/data /usr/local/bin/data
EXPOSE 7001 9071
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/data", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/data"]

FROM runtime AS device
COPY --from=build /out/device /usr/local/bin/device
EXPOSE 7002 9072
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/device", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/device"]

FROM runtime AS notify
COPY --from=build /out/notify /usr/local/bin/notify
EXPOSE 7003 9073
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/notify", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/notify"]

FROM runtime AS main-gateway
COPY --from=build /out/main-gateway /usr/local/bin/main-gateway
EXPOSE 8080 9080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/main-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/main-gateway"]

FROM runtime AS auth-gateway
COPY --from=build /out/auth-gateway /usr/local/bin/auth-gateway
EXPOSE 8081 9081
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/auth-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/auth-gateway"]

FROM runtime AS admin-gateway
COPY --from=build /out/admin-gateway /usr/local/bin/admin-gateway
EXPOSE 8082 9082
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/admin-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/admin-gateway"]

# The operators' CLI: no ports and no HEALTHCHECK, it runs and exits.
#   docker run --rm comfortech/comfortctl status --ops data=data:9071,...
FROM runtime AS comfortctl
COPY --from=build /out/comfortctl /usr/local/bin/comfortctl
ENTRYPOINT ["/usr/local/bin/comfortctl"]
