# One image for every tgflow service: the container's command picks the role
# (tgflow ingest, tgflow tagger, tgflow proj-postgres, …).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/tgflow ./cmd/tgflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tgflow /usr/local/bin/tgflow
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/tgflow"]
