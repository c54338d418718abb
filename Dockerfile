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
ENTRYPOINT []
CMD ["pipelines", "--help"]
