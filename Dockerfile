FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
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
RUN DJANGO_SETTINGS_MODULE=aivax.settings.dev SECRET_KEY=build python manage.py collectstatic --noinput \
    && mkdir -p .data/media && chown -R aivax /app/.data
USER aivax
EXPOSE 8000
