# rollup-operator container image.
#
#   docker build -t ghcr.io/esops/rollup-operator:0.1.0 .
#
# Two stages on the same pinned slim Python base:
#   builder  builds a wheel of this project and installs it (with its dependencies, all of which
#            ship binary wheels) into /opt/venv; pre-compiles the bytecode.
#   final    the same base with only /opt/venv copied in: no compiler, no build tools, no sources.
#            Runs as uid/gid 65532 (manifests/deployment.yaml's securityContext) and works with a
#            read-only root filesystem: nothing is written at run time except to /tmp, which the
#            Deployment mounts as an emptyDir.
#
# To pin the base by digest as well, pass e.g.
#   --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# README.md is the package's long description; the [d] glob keeps the build working without it.
COPY pyproject.toml README.m[d] ./
COPY operator/ operator/
# A venv without pip/setuptools: the builder's own pip installs into it, so the runtime venv
# carries only the operator and its dependencies. pip compiles .pyc files while installing, so
# nothing needs to be written next to the sources at run time.
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv --without-pip /opt/venv \
 && python -m pip --python /opt/venv/bin/python install --compile /dist/*.whl \
 && /opt/venv/bin/rollup-operator --help >/dev/null

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG PYTHON_IMAGE
LABEL org.opencontainers.image.title="rollup-operator" \
      org.opencontainers.image.description="Kubernetes operator that keeps Elasticsearch rollup jobs started or stopped as RollupJob resources say" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/esops/rollup-operator" \
      org.opencontainers.image.vendor="esops" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
# HOME=/tmp: anything that wants a writable home gets the emptyDir, not the read-only root fs.
# USER: kopf names itself after getpass.getuser(), which raises when the uid has no /etc/passwd
# entry and $USER is unset; with it set, any runAsUser works (e.g. OpenShift's random uids).
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    USER=nonroot
RUN groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin nonroot
COPY --from=builder /opt/venv /opt/venv
WORKDIR /tmp
# Numeric, so that runAsNonRoot can be verified by the kubelet without /etc/passwd.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["rollup-operator"]
CMD ["run"]
