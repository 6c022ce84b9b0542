# syntax=docker/dockerfile:1
# Build: a static binary with no cgo.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/switchback ./cmd/switchback \
 && mkdir -p /out/data

# Run: no shell, no package manager, a non-root user, data in /data.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchback /usr/local/bin/switchback
# The volume's mount point must belong to the nonroot user (uid 65532).
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]
ENV SWITCHBACK_DATA=/data SWITCHBACK_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/switchback"]
CMD ["serve"]
