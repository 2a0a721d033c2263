# One binary for every tgflow service: the container's command picks the role
# (tgflow ingest, tgflow tagger, tgflow proj-postgres, tgflow api, …). Three images from it:
#   tgflow         (default, distroless) every service but vision
#   tgflow-vision  (Debian slim + Tesseract rus/eng) the vision stage, which runs tesseract
#   tgflow-models  (Python slim) the one-shot `tgflow models pull` (the USE model comes from PyPI)
# Healthchecks run `tgflow health URL`: the distroless image has no shell, curl or wget.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/tgflow ./cmd/tgflow

FROM python:3.13-slim AS models
COPY --from=build /out/tgflow /usr/local/bin/tgflow
# A new named volume mounted on /models takes this owner: the nonroot user of the others.
RUN mkdir -p /models && chown 65532:65532 /models
ENV HOME=/tmp TGFLOW_MODELS_DIR=/models
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tgflow"]

FROM debian:bookworm-slim AS vision
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/tgflow /usr/local/bin/tgflow
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/tgflow"]

FROM gcr.io/distroless/static-debian12:nonroot AS tgflow
COPY --from=build /out/tgflow /usr/local/bin/tgflow
EXPOSE 9464 8080
ENTRYPOINT ["/usr/local/bin/tgflow"]
