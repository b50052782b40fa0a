# ringstore serve as PID 1 of its container, data on a volume.
#   docker build -t ringstore .
#   docker run -d --name ringstore -p 8080:8080 -v ringstore-data:/data --stop-timeout 40 \
#     -v "$PWD/tokens.json:/run/secrets/tokens.json:ro" -e RINGSTORE_TOKENS=/run/secrets/tokens.json ringstore
# Without a tokens file the server refuses to listen on 0.0.0.0; -e RINGSTORE_INSECURE=1 allows it
# on a trusted network. Options: docs/OPERATIONS.md (every flag has a RINGSTORE_* variable).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production RINGSTORE_HOST=0.0.0.0 RINGSTORE_PORT=8080 RINGSTORE_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY bin bin
COPY ui ui
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 8080
# /health needs no token; node is the only tool the image has for an HTTP request.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.RINGSTORE_PORT}/health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains requests (up to 30 s), fsyncs and exits 0: give docker stop more than that.
STOPSIGNAL SIGTERM
# Node itself is PID 1 (no shell, no npm in between), so the signal reaches the server.
ENTRYPOINT ["node", "/app/bin/ringstore.js"]
CMD ["serve"]
