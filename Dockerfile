# The selfheal image: the static selfheal binary on an empty base, run as
# user 65532 (nonroot). Nothing is pulled (FROM scratch), so it builds
# without a registry. Build it with `make image`, which first puts into
# bin/image/ everything copied here:
#
#   rootfs/usr/local/bin/selfheal          ./cmd/selfheal built with CGO_ENABLED=0 (no libc)
#   rootfs/etc/passwd, rootfs/etc/group    root and nonroot (65532), for tools that look users up
#   rootfs/etc/ssl/certs/ca-certificates.crt
#                                          CA roots for https (Jenkins, Alertmanager), from the
#                                          build host's ca-certificates package
#   rootfs/var/lib/, data/                 empty folders: /var/lib/selfheal, owned by 65532
#
# The time zone database is built into the binary (playbook windows), so
# none is needed here. selfheal is on PATH: prometheus.wal_cleanup runs its
# Jobs in this image with the command `selfheal wal-quarantine ...`.
FROM scratch
COPY bin/image/rootfs/ /
COPY --chown=65532:65532 bin/image/data/ /var/lib/selfheal/
ENV PATH=/usr/local/bin
USER 65532:65532
WORKDIR /var/lib/selfheal
# 9595: webhook, API, metrics. 9596: gossip, TCP and UDP.
EXPOSE 9595/tcp 9596/tcp 9596/udp
ENTRYPOINT ["/usr/local/bin/selfheal"]
CMD ["serve", "--config.file=/etc/selfheal/selfheal.yml", "--storage.path=/var/lib/selfheal"]
