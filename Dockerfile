# The loader's image (docs/deployment.md): `logins` as its entrypoint, `run` (load + dbt build)
# by default; `dagster` is in it too, so the same image serves as the Dagster code location.
#   docker build -t logins .
#   docker run --rm -e PGHOST=... -e SOURCES__SQS__QUEUE_URL=... logins run
# Settings come from the environment at run time (docs/operations.md); no secret is built in.

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY loader ./loader
# The Makefile's install steps (CI runs them), not editable, with the runtime extras only: the
# test tools (dev) and the local SQS emulator (local) stay out of a production image.
# The versions are pyproject.toml's ranges, as in CI (DL3013 asks for pins here).
# hadolint ignore=DL3013
RUN python -m pip install --quiet --upgrade pip \
    && python -m pip install --quiet '.[orchestrate]'

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RUNTIME__DLTHUB_TELEMETRY=false \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    LOADER__PIPELINES_DIR=/var/lib/logins/pipelines \
    DAGSTER_HOME=/var/lib/logins/dagster
RUN groupadd --system --gid 10001 logins \
    && useradd --system --uid 10001 --gid logins --home-dir /var/lib/logins \
        --shell /usr/sbin/nologin logins
COPY --from=builder /opt/venv /opt/venv
# The dbt project: the package finds it in the working directory (loader/paths.py).
WORKDIR /app
COPY dbt_project.yml profiles.yml selectors.yml ./
COPY dbt_project ./dbt_project
COPY .dlt/config.toml ./.dlt/config.toml
# dbt parsed now, into the folder the Dagster code location reads (loader/orchestration):
# parsing connects to nothing, and profiles.yml's values all come from the environment at run
# time, so no credential is set here. dlt's working state (pending load packages) lives in
# /var/lib/logins/pipelines, which the user owns: mount a volume there (docker-compose.yml).
RUN dbt parse --quiet --project-dir . --profiles-dir . --target-path target/dagster \
        --log-path /tmp/dbt-parse-logs \
    && rm -rf /tmp/dbt-parse-logs \
    && mkdir -p logs /var/lib/logins/pipelines /var/lib/logins/dagster \
    && chown -R logins:logins target logs /var/lib/logins
USER 10001:10001
ENTRYPOINT ["logins"]
CMD ["run"]
