# zg-gateway: the gateway (`serve`, the default) or the whole dev stack (`dev`), from the package as npm publishes it.
#
#   docker build -t zg-gateway .
#   docker run -d -p 8080:8080 -v zg-data:/data -e ZG_NETWORK=testnet -e ZG_PRIVATE_KEY=0x… zg-gateway
#   docker run --rm -it --network host zg-gateway dev
#
# Every stage starts from BASE, so a machine that cannot pull node:24 (CI: .ci/container-smoke) passes a Node 24
# bookworm image of its own with --build-arg BASE=….
ARG BASE=node:24-bookworm-slim

FROM ${BASE} AS build
WORKDIR /src
# For a registry reached through a TLS-intercepting proxy: the path of its CA inside the build (mounted or copied in).
ARG NPM_CONFIG_CAFILE
COPY package.json package-lock.json tsconfig.json tsconfig.build.json openapi.yaml README.md ./
COPY bin/ bin/
COPY scripts/ scripts/
COPY src/ src/
# With the devDependencies (the bundler, tsc, the pinned node@24 the build runs on), install scripts as package.json's
# allowScripts lists them. npm ci runs `prepare`, which is `npm run build`: dist/ and the web UI bundle in dist/ui.
RUN npm ci --no-audit --no-fund \
  && test -f dist/cli/main.js \
  && test -f dist/ui/index.html
# The package exactly as published (package.json "files": bin, dist, src without tests, openapi.yaml), with only the
# production dependencies beside it: the layout `npm install -g` gives, so bin/zg-gateway.js runs the compiled dist/.
RUN npm prune --omit=dev --no-audit --no-fund \
  && mkdir -p packed /out/zg-gateway \
  && npm pack --ignore-scripts --pack-destination packed \
  && tar -xzf packed/zg-gateway-*.tgz -C /out/zg-gateway --strip-components=1 \
  && mv node_modules /out/zg-gateway/node_modules

FROM ${BASE}
# Production mode for the dependencies; glibc hands buffers of 64 KiB and more straight back to the system when
# freed, so RSS falls back after large bodies (docs/performance.md). State and port as the CLI reads them.
ENV NODE_ENV=production \
  MALLOC_MMAP_THRESHOLD_=65536 \
  ZG_DATA_DIR=/data \
  ZG_PORT=8080
# The node images have the unprivileged user `node` (uid 1000); a base without it gets one.
RUN if ! id -u node >/dev/null 2>&1; then \
  groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --shell /bin/sh node; \
  fi \
  && mkdir -p /data \
  && chown node:node /data
# Owned by root, so the process cannot change its own code. The base image's node runs it (node@24 is a build tool).
COPY --from=build /out/zg-gateway/ /usr/local/lib/node_modules/zg-gateway/
RUN ln -s ../lib/node_modules/zg-gateway/bin/zg-gateway.js /usr/local/bin/zg-gateway
USER node
WORKDIR /data
# The gateway's store (gateway/: API keys, usage, receipts), devnet.json and, for `dev`, the chain's state.
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.ZG_PORT||8080)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/usr/local/lib/node_modules/zg-gateway/bin/zg-gateway.js"]
# Loopback stays the default everywhere else; in a container the gateway must listen on the container's interface.
CMD ["serve", "--host", "0.0.0.0"]
