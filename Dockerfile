FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps . && SECRET_KEY=build python manage.py collectstatic --noinput
EXPOSE 8000
# Worker processes: gunicorn reads WEB_CONCURRENCY (one async worker per core is the usual choice;
# each keeps hundreds of upstream calls in flight).
ENV WEB_CONCURRENCY=2
CMD ["gunicorn", "routerapp.asgi:application", "-k", "uvicorn.workers.UvicornWorker", "-b", "0.0.0.0:8000"]
