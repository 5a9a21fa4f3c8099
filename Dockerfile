# One image for web, workers and scheduler (docker-compose.yml). The app is installed from
# its wheel, so the image runs exactly what `pip install` would; it runs as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 dispatcher \
    && mkdir -p /metrics && chown dispatcher /metrics
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'dispatcher[postgres]' \
    && rm -rf /wheels
USER dispatcher
WORKDIR /home/dispatcher
ENV DISPATCHER_INSTANCE=/home/dispatcher/instance PYTHONUNBUFFERED=1
EXPOSE 5000
CMD ["dispatcher", "web", "--host", "0.0.0.0", "--port", "5000"]
