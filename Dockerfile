# One image for every lesson's processes and the fake GitHub: slim Python, the pinned requirements,
# a non-root user, no compilers and no test tools. docker-compose.yml picks the folder and command.
FROM python:3.12.8-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONWARNINGS="ignore:This package is no longer supported:DeprecationWarning"

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-compile -r requirements.txt \
    && useradd --create-home --uid 10001 workshop

COPY --chown=workshop . .

USER workshop
# The lessons' apps listen on all interfaces inside the container; compose publishes the ports.
ENV APP_HOST=0.0.0.0 \
    PYTHONPATH=/app
CMD ["python", "-m", "workshop", "--help"]
