# quotebot: CPU-only image with the bundled model. Build: docker build -t quotebot .
# Run:   docker run -e DISCORD_TOKEN=... -v quotebot-data:/data quotebot
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU-only torch first (the same choice scripts/bootstrap.sh makes), then quotebot pinned to it.
RUN pip install torch --index-url https://download.pytorch.org/whl/cpu \
 && python -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' > /tmp/constraints.txt
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY index ./index
RUN pip install -c /tmp/constraints.txt ".[postgres]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 quotebot && mkdir /data && chown quotebot /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH QUOTEBOT_DATA=/data HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
USER quotebot
WORKDIR /home/quotebot
VOLUME ["/data"]
ENTRYPOINT ["quotebot"]
CMD ["run"]
