# The hub image: compiled TypeScript on Node 20, run as a non-root user, health-checked on /healthz.
# Build from the repository root: docker build -f docker/hub.Dockerfile -t agenthub/hub .
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY shared ./shared
COPY hub ./hub
COPY spoke_marketing ./spoke_marketing
COPY spoke_finance ./spoke_finance
RUN npm run build && cp -r hub/migrations dist/hub/migrations && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production HUB_HOST=0.0.0.0 HUB_PORT=8080
WORKDIR /app
COPY --from=build --chown=node:node /src/node_modules ./node_modules
COPY --from=build --chown=node:node /src/dist ./dist
COPY --from=build --chown=node:node /src/package.json /src/package-lock.json ./dist/
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/hub/main.js"]
