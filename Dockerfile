# weir's image for those who build with a container engine and push to a registry. Without one (as on
# the machines weir is developed on), scripts/build-image.sh makes the same image from Debian packages
# with buildah and no RUN step.
#
#   docker build -t registry.example/weir:0.1.0 .
#   docker build --build-arg BASE=registry.example/mirror/debian:12-slim ...
#
# Multi-stage: clang and the build tools stay in the builder; the runtime image carries the three
# binaries, the shared libraries weir-agent and weirctl link (the CNI plugin is static), iproute2, and
# the portmap CNI plugin that the conflist chains (the chart installs it on the nodes). Both bases must
# be the same Debian release: the runtime stage installs the libraries the builder linked against.
ARG BUILD_BASE=debian:12
ARG BASE=debian:12-slim

FROM ${BUILD_BASE} AS builder
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends build-essential cmake ninja-build \
      pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libcpp-httplib-dev libssl-dev \
      libyaml-cpp-dev rapidjson-dev libabsl-dev libgtest-dev libgmock-dev libspdlog-dev \
      containernetworking-plugins
COPY . /src
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C /build weir weir-agent weirctl

FROM ${BASE}
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libssl3 libyaml-cpp0.7 \
      libspdlog1.10 libfmt9 libcpp-httplib0.11 libbrotli1 zlib1g iproute2 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /build/cni/weir /build/proxy/weir-agent /build/proxy/weirctl /usr/local/bin/
# Debian's path, where the chart's init container takes it from.
COPY --from=builder /usr/lib/cni/portmap /usr/lib/cni/portmap
ENTRYPOINT ["/usr/local/bin/weir-agent"]
