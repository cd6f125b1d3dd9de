# The production image: production settings, several web workers (WEB_CONCURRENCY, default one per core),
# refuses to start without SECRET_KEY, DATABASE_URL and REDIS_URL (deploy/docker-entrypoint.sh).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=aivax.settings.production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/aivax-metrics \
    LOG_FORMAT=json
WORKDIR /app
RUN useradd --create-home aivax
COPY pyproject.toml README.md ./
COPY aivax aivax
COPY accounts accounts
COPY gateways gateways
COPY billing billing
COPY knowledge knowledge
COPY console console
RUN pip install --no-cache-dir .
COPY . .
# Build-time values only, so the production settings load for collectstatic; the real ones come at run time.
RUN SECRET_KEY=build-only-secret-key-not-used-at-run-time \
    DATABASE_URL=postgresql://build@localhost/build \
    python manage.py collectstatic --noinput -v 0 \
    && mkdir -p .data/media /tmp/aivax-metrics && chown -R aivax /app/.data /tmp/aivax-metrics
USER aivax
EXPOSE 8000
ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]
CMD ["uvicorn", "aivax.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--proxy-headers", "--no-access-log", "--timeout-graceful-shutdown", "20"]
