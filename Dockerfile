FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -e '.[postgres]'
EXPOSE 5000 5001
CMD ["dispatcher", "web", "--host", "0.0.0.0"]
