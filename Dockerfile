# dbpulse: a small, non-root image of the sidecar.
#
#   docker build -t dbpulse .
#   docker run -p 19630:19630 -e DBPULSE_POSTGRES=postgresql://dbpulse@db:5432/shop dbpulse
#   docker run -p 19630:19630 -v $PWD/dbpulse.yaml:/etc/dbpulse/dbpulse.yaml:ro dbpulse
#
# Configuration: the YAML file at /etc/dbpulse/dbpulse.yaml (mount your own over the
# default, see examples/dbpulse.yaml), then DBPULSE_* environment variables
# (DBPULSE_LISTEN, DBPULSE_POSTGRES, DBPULSE_LOG_LEVEL), then command-line flags.
# Passwords: password_env / password_file in the file, PGPASSWORD, or a mounted ~/.pgpass.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: wheels for dbpulse and its dependencies --------------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY collectors ./collectors
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime ------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="dbpulse" \
      org.opencontainers.image.description="Observability sidecar for PostgreSQL, Redis and the application's health endpoints" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/dbpulse/bin:$PATH \
    DBPULSE_LISTEN=0.0.0.0:19630
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/dbpulse \
 && /opt/dbpulse/bin/pip install --no-cache-dir --no-index --find-links /wheels dbpulse \
 && /opt/dbpulse/bin/pip uninstall -y pip \
 && groupadd --system --gid 10001 dbpulse \
 && useradd --system --uid 10001 --gid dbpulse --home-dir /nonexistent --shell /usr/sbin/nologin dbpulse \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/dbpulse
# The advisor's state (index changes, outcomes' before figures, advice history): a volume, so it outlives the
# container; DBPULSE_STATE_DIR sets advisor.state_dir whatever configuration file is mounted.
ENV DBPULSE_STATE_DIR=/var/lib/dbpulse
VOLUME ["/var/lib/dbpulse"]
COPY deploy/docker/dbpulse.yaml /etc/dbpulse/dbpulse.yaml
USER 10001:10001
EXPOSE 19630
# Liveness: the poll loops are ticking (a down database does not fail it; see /readyz for that).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('DBPULSE_LISTEN', ':19630').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
ENTRYPOINT ["dbpulse"]
CMD ["run", "--config", "/etc/dbpulse/dbpulse.yaml"]
