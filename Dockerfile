# Multi-stage: clang and the build tools stay in the builder; the runtime image carries the three
# binaries and the shared libraries they link.
FROM debian:12 AS builder
COPY scripts/setup.sh /src/scripts/setup.sh
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends build-essential cmake ninja-build \
      pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libcpp-httplib-dev libssl-dev \
      libyaml-cpp-dev rapidjson-dev libabsl-dev libgtest-dev libgmock-dev libspdlog-dev
COPY . /src
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C /build weir weir-agent weirctl

FROM debian:12-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libbpf1 libelf1 libyaml-cpp0.7 \
      libabsl20220623 libspdlog1.10 libssl3 libcpp-httplib0.11 iproute2 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /build/cni/weir /build/proxy/weir-agent /build/proxy/weirctl /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/weir-agent"]
