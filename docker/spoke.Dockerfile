# A spoke image (marketing or finance, chosen by the SPOKE build argument): compiled TypeScript on Node 20
# with node-llama-cpp's CPU binaries, run as a non-root user, health-checked on the attestation port.
# Build from the repository root: docker build -f docker/spoke.Dockerfile --build-arg SPOKE=marketing .
FROM node:20-bookworm-slim AS build
ARG SPOKE=marketing
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY shared ./shared
COPY hub ./hub
COPY spoke_marketing ./spoke_marketing
COPY spoke_finance ./spoke_finance
RUN npm run build \
  && if [ -d spoke_${SPOKE}/migrations ]; then cp -r spoke_${SPOKE}/migrations dist/spoke_${SPOKE}/migrations; fi \
  && npm prune --omit=dev

FROM node:20-bookworm-slim
ARG SPOKE=marketing
ARG IMAGE_DIGEST=unknown
ENV NODE_ENV=production SPOKE=${SPOKE} SPOKE_HOST=0.0.0.0 IMAGE_DIGEST=${IMAGE_DIGEST}
WORKDIR /app
COPY --from=build --chown=node:node /src/node_modules ./node_modules
COPY --from=build --chown=node:node /src/dist ./dist
COPY --from=build --chown=node:node /src/package.json /src/package-lock.json ./dist/
USER node
# The API port (8082 marketing, 8083 finance) and the attestation port (29345 / 29346) come from the
# environment; the health check reads the attestation port from it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.SPOKE_ATTESTATION_PORT+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["sh", "-c", "exec node dist/spoke_${SPOKE}/main.js"]
