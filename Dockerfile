# syntax=docker/dockerfile:1
# Edge agent image: OPC-UA / MQTT / Modbus -> ZeroBus, web GUI on 8080, Prometheus metrics on 9090.
#
#   docker build -t iot-connector:0.1.0 .
#   docker compose up -d                      # docker-compose.yml: volumes, read-only root, limits
#
# Runs as UID/GID 1000 with a read-only root filesystem; only the four volumes are written. Nothing secret
# is baked in: the admin password and the Fernet key come from the environment / a mounted file at run time.
# Behind a proxy or with a PyPI mirror, pass --build-arg HTTP_PROXY=... / --build-arg PIP_INDEX_URL=...
# (docs/operations.md). The DMZ host never builds: `docker save` here, `docker load` there.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the wheel, then a venv with the wheel's [edge] extra at the pinned versions -----------------
FROM ${PYTHON_IMAGE} AS build
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.txt setup.py pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --constraint requirements.txt "$(ls /dist/*.whl)[edge]" \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/iot-connector --help >/dev/null

# ---- runtime: slim base, the venv, the entrypoint; nothing else --------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="iot-connector" \
      org.opencontainers.image.description="Edge agent: OPC-UA / MQTT / Modbus -> Databricks ZeroBus"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IOT_CONNECTOR_APP_DIR=/app \
    HOME=/app/spool/home \
    TMPDIR=/app/spool/tmp
RUN groupadd --gid 1000 iot \
 && useradd --uid 1000 --gid 1000 --home-dir /app/spool/home --no-create-home --shell /usr/sbin/nologin iot \
 && mkdir -p /app/config /app/certs /app/spool /app/logs \
 && chown 1000:1000 /app/config /app/certs /app/spool /app/logs \
 && chmod 0750 /app/config /app/certs /app/spool /app/logs
COPY --from=build /opt/venv /opt/venv
COPY deploy/entrypoint.sh deploy/logtee.py deploy/healthcheck.py /opt/iot-connector/
RUN chmod 0755 /opt/iot-connector/entrypoint.sh

USER 1000:1000
WORKDIR /app
VOLUME ["/app/config", "/app/certs", "/app/spool", "/app/logs"]
# 8080: web GUI (/healthz), 9090: Prometheus /metrics
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "/opt/iot-connector/healthcheck.py"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/iot-connector/entrypoint.sh"]
