FROM python:3.11-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY contracts ./contracts
COPY domain ./domain
COPY services ./services
COPY projections ./projections
RUN uv sync --frozen --no-dev
ENV PATH=/app/.venv/bin:$PATH
# glibc's per-thread malloc arenas (one per thread the event store's to_thread calls use)
# hold freed memory: two keep every role's RSS flat (benchmarks/rss_bench.py).
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT []
CMD ["pipelines", "--help"]
