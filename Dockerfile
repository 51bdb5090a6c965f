# energyctl sidecar image. Not built on the development machine (no Docker engine there);
# `energyctl run` in it is the same command the process tests start
# (tests/e2e/test_run_sidecar.py).
#
#   docker build -t energyctl .
#   docker run --read-only --tmpfs /tmp -v $PWD/policies:/etc/energyctl/policies:ro \
#     -v energyctl-state:/var/lib/energyctl -e ENERGYCTL_API_TOKEN=... -p 8080:8080 energyctl

# ---- build: a wheel and its dependencies in a virtual environment
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY policies ./policies
COPY providers ./providers
COPY engine ./engine
COPY sandbox ./sandbox
RUN python -m venv /opt/energyctl \
 && /opt/energyctl/bin/pip install pip==24.3.1 \
 && /opt/energyctl/bin/pip install .

# ---- runtime: the virtual environment only, a non-root user, nothing written outside
#      the state volume and /tmp (works with a read-only root filesystem)
FROM python:3.11-slim
RUN groupadd --system --gid 10001 energyctl \
 && useradd --system --uid 10001 --gid energyctl --home-dir /var/lib/energyctl energyctl \
 && mkdir -p /var/lib/energyctl /etc/energyctl/policies \
 && chown energyctl:energyctl /var/lib/energyctl
COPY --from=build /opt/energyctl /opt/energyctl
ENV PATH=/opt/energyctl/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENERGYCTL_LISTEN=0.0.0.0:8080 \
    ENERGYCTL_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/energyctl
VOLUME ["/var/lib/energyctl"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["energyctl", "run"]
CMD ["-f", "/etc/energyctl/policies"]
