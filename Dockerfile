# syntax=docker/dockerfile:1
# Builder: compile the Rust extension into a wheel with maturin (release profile: fat LTO).
FROM python:3.11-slim AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian's packages are not pinned: a pin breaks the build when the archive moves on to a
# security update, and these are build tools. hadolint is told so here, not globally.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH=/root/.cargo/bin:$PATH
RUN pip install --no-cache-dir 'maturin>=1.9,<2'
WORKDIR /src
COPY Cargo.toml Cargo.lock pyproject.toml README.md ./
COPY rust rust
COPY python python
RUN maturin build --release --locked --out /wheels

# Runtime: the wheel on a slim Python, no compiler, no xgboost, a non-root user, tini as PID 1.
FROM python:3.11-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ferroscore \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent \
      --shell /usr/sbin/nologin ferroscore
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && install -d -o 10001 -g 10001 /var/lib/ferroscore/spool
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# Inside a container the service must listen beyond loopback; DATABASE_URL is required here
# (the image has no embedded PostgreSQL).
# The decision spool must outlive the container: mount a volume there.
ENV FERROSCORE_HOST=0.0.0.0 \
    FERROSCORE_PORT=8000 \
    FERROSCORE_SPOOL_DIR=/var/lib/ferroscore/spool \
    PYTHONUNBUFFERED=1
VOLUME /var/lib/ferroscore/spool
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('FERROSCORE_PORT', '8000'), timeout=2).status != 200)"]
ENTRYPOINT ["tini", "--"]
CMD ["ferroscore", "serve"]
