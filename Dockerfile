# syntax=docker/dockerfile:1
#
# portico's container image: NIM's layout (nginx on port 8000 in front of the API server, the model
# cache at /opt/nim/.cache, user 1000, `docker run IMAGE list-model-profiles`), with portico's gateway
# and launcher in place of NIM's.
#
#   docker build --target gpu -t portico:latest .   vLLM (the engine) + Node + nginx  (default target)
#   docker build --target cpu -t portico:cpu .      llama.cpp's llama-server (CPU demo) + Node + nginx
#
# The entrypoint is portico (nginx/entrypoint.sh, installed as portico-entrypoint): `serve` (the
# default command) starts nginx on NIM_SERVER_PORT (8000) and `portico serve` on 127.0.0.1:8080
# (NIM_GATEWAY_PORT) behind it; any other portico verb or command runs as given.

ARG NODE_IMAGE=node:24-bookworm-slim
ARG VLLM_IMAGE=vllm/vllm-openai:v0.11.0

# ------------------------------------------------------------------------------------------------
# node: the Node.js runtime (current LTS), also the base of the build and the CPU image.
FROM ${NODE_IMAGE} AS node

# ------------------------------------------------------------------------------------------------
# build: compile portico and keep only its production dependencies, laid out as /opt/portico.
FROM node AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: portico needs none (and builds its engine itself).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY core/ core/
COPY launcher/ launcher/
COPY gateway/ gateway/
COPY serve/ serve/
COPY bench/ bench/
RUN npx tsc -p tsconfig.json \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && chmod 755 dist/serve/main.js dist/serve/nim-serve.js dist/serve/list-model-profiles.js \
 && mkdir -p /opt/portico \
 && mv dist node_modules package.json /opt/portico/
COPY manifests/ /opt/portico/manifests/
COPY profiles/ /opt/portico/profiles/
COPY nginx/nginx.conf.template nginx/entrypoint.sh /opt/portico/nginx/

# ------------------------------------------------------------------------------------------------
# llama-build: llama.cpp's llama-server for the CPU image, from the source the node-llama-cpp npm
# package ships (as launcher/prepare/build-engine.ts does), but portable: GGML_NATIVE=OFF, not -march=native.
FROM node AS llama-build
ARG LLAMA_NPM_PACKAGE=node-llama-cpp@3.22.1
ARG LLAMA_NPM_INTEGRITY=sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw==
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates cmake g++ git make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /llama
RUN npm pack "$LLAMA_NPM_PACKAGE" --json > pack.json \
 && node -e 'const [p] = require("./pack.json"); if (p.integrity !== process.env.LLAMA_NPM_INTEGRITY) { console.error(`integrity mismatch: ${p.integrity}`); process.exit(1); } require("fs").writeFileSync("tarball", p.filename);' \
 && tar xzf "$(cat tarball)" package/llama/gitRelease.bundle \
 && git clone --quiet package/llama/gitRelease.bundle src \
 && sed -i 's/^    if (string_starts_with(url, "http")) {$/&\n        throw std::invalid_argument("remote media URLs are disabled in this build: send the media as a data: URI");/' src/tools/server/server-common.cpp \
 && grep -qF 'remote media URLs are disabled in this build' src/tools/server/server-common.cpp \
 && cmake -S src -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF \
      -DGGML_CCACHE=OFF -DGGML_NATIVE=OFF \
 && cmake --build build --config Release -j"$(nproc)" --target llama-server \
 && install -D -m 755 build/bin/llama-server /out/llama-server

# ------------------------------------------------------------------------------------------------
# cpu: the llama.cpp demo (or any GGUF model named by NIM_MODEL_PATH) without a GPU.
FROM node AS cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx gettext-base tini libgomp1 ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stderr /var/log/nginx/error.log \
 && chown -R 1000:0 /var/log/nginx
COPY --from=build /opt/portico /opt/portico
COPY --from=llama-build /out/llama-server /opt/portico/engine/llama-server
RUN ln -s /opt/portico/dist/serve/main.js /usr/local/bin/portico \
 && ln -s /opt/portico/dist/serve/nim-serve.js /usr/local/bin/nim-serve \
 && ln -s /opt/portico/dist/serve/list-model-profiles.js /usr/local/bin/list-model-profiles \
 && ln -s /opt/portico/nginx/entrypoint.sh /usr/local/bin/portico-entrypoint \
 && mkdir -p /opt/nim/.cache \
 && chown -R 1000:0 /opt/nim \
 && chmod -R g=u /opt/nim
# NIM_LLAMA_SERVER_PATH: the launcher runs this llama-server as is (a fresh cache volume needs no build).
ENV NIM_CACHE_PATH=/opt/nim/.cache \
    HOME=/opt/nim \
    NIM_LLAMA_SERVER_PATH=/opt/portico/engine/llama-server
USER 1000:1000
WORKDIR /opt/nim
EXPOSE 8000
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/portico-entrypoint"]
CMD ["serve"]

# ------------------------------------------------------------------------------------------------
# gpu: vLLM's OpenAI image (CUDA, PyTorch, vLLM, Ray) with Node and nginx added. The default target.
FROM ${VLLM_IMAGE} AS gpu
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx gettext-base tini ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stderr /var/log/nginx/error.log \
 && chown -R 1000:0 /var/log/nginx \
 && (getent passwd 1000 >/dev/null || useradd --uid 1000 --user-group --home-dir /opt/nim --no-create-home --shell /usr/sbin/nologin portico)
COPY --from=build /opt/portico /opt/portico
RUN ln -s /opt/portico/dist/serve/main.js /usr/local/bin/portico \
 && ln -s /opt/portico/dist/serve/nim-serve.js /usr/local/bin/nim-serve \
 && ln -s /opt/portico/dist/serve/list-model-profiles.js /usr/local/bin/list-model-profiles \
 && ln -s /opt/portico/nginx/entrypoint.sh /usr/local/bin/portico-entrypoint \
 && mkdir -p /opt/nim/.cache \
 && chown -R 1000:0 /opt/nim \
 && chmod -R g=u /opt/nim
# HOME inside the cache's parent: vLLM's and Hugging Face's caches (~/.cache/...) land in the volume.
ENV NIM_CACHE_PATH=/opt/nim/.cache \
    HOME=/opt/nim \
    HF_HOME=/opt/nim/.cache/huggingface \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1
USER 1000:1000
WORKDIR /opt/nim
EXPOSE 8000
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/portico-entrypoint"]
CMD ["serve"]
