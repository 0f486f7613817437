# The monitor as a container, for hosts that run their agents that way. See README.md,
# "Run as a container", for the mounts and capabilities it needs and why.
#
#   docker build -t local/monitor .
#
# The build stage runs the project's own commands (`cargo xtask build`, which installs the
# eBPF toolchain it needs first), so the binary is the one `cargo xtask dist` packages.

FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl build-essential pkg-config git \
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
# Stable builds userspace (rust-toolchain.toml); nightly with rust-src builds the eBPF
# programs through bpf-linker, which `cargo xtask setup` builds against the nightly's own
# LLVM (it stops with a clear message if that LLVM is not one bpf-linker supports).
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain stable \
 && rustup toolchain install nightly --profile minimal --component rust-src
WORKDIR /src
COPY . .
RUN cargo xtask setup && cargo xtask build

FROM debian:bookworm-slim
# Outside /usr and /etc: the host's are mounted over them (README.md).
COPY --from=build /src/target/release/monitor /opt/monitor/bin/monitor
COPY --from=build /src/rules/ /opt/monitor/rules.d/
COPY --from=build /src/LICENSE-MIT /src/LICENSE-APACHE /src/README.md /opt/monitor/doc/
ENTRYPOINT ["/opt/monitor/bin/monitor"]
CMD ["run"]
