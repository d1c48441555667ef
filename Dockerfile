# smartplace: ingest, feeds, the simulator and the CLI, in one image.
# Build stage: uv installs the locked dependencies into /app/.venv.
FROM python:3.11.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY smartplace ./smartplace
RUN uv sync --frozen --no-dev --no-editable

# Run stage: the virtualenv, mosquitto_ctrl (for 'smartplace broker init-dynsec'), no compilers.
FROM python:3.11.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends mosquitto \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/smartplace smartplace \
    && mkdir -p /var/lib/smartplace/spool /var/lib/smartplace/registry \
    && chown -R smartplace /var/lib/smartplace  # named volumes mounted here inherit this owner
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    SMARTPLACE_STACK_DIR=/var/lib/smartplace \
    SMARTPLACE_REGISTRY_FILE=/var/lib/smartplace/registry/registry.db
USER smartplace
WORKDIR /var/lib/smartplace
EXPOSE 9108
ENTRYPOINT ["smartplace"]
CMD ["--help"]
