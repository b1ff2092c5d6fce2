# Small static non-root images of the three binaries:
#   docker build --target recommender -t ghcr.io/vpa-rs/vpa-recommender:0.1.0 .
#   docker build --target updater -t ghcr.io/vpa-rs/vpa-updater:0.1.0 .
#   docker build --target admission-controller -t ghcr.io/vpa-rs/vpa-admission-controller:0.1.0 .
# Tags follow the chart's appVersion (charts/vpa/Chart.yaml).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
      -p vpa-recommender -p vpa-updater -p vpa-admission \
 && mkdir /out && cp target/x86_64-unknown-linux-musl/release/vpa-recommender \
      target/x86_64-unknown-linux-musl/release/vpa-updater \
      target/x86_64-unknown-linux-musl/release/vpa-admission /out/

# distroless static: no shell, no package manager, CA certificates, user 65532 (nonroot).
FROM gcr.io/distroless/static-debian12:nonroot AS base
USER 65532:65532

FROM base AS recommender
COPY --from=build /out/vpa-recommender /vpa-recommender
ENTRYPOINT ["/vpa-recommender"]

FROM base AS updater
COPY --from=build /out/vpa-updater /vpa-updater
ENTRYPOINT ["/vpa-updater"]

FROM base AS admission-controller
COPY --from=build /out/vpa-admission /vpa-admission
ENTRYPOINT ["/vpa-admission"]
