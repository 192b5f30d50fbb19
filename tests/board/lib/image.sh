# shellcheck shell=bash
# The workloads' container image: a `docker save` archive of Debian's busybox-static (taken from
# the board's own root, so it matches the board's architecture), built on the host.

BOARD_IMAGE=busybox:board
BUSYBOX_APPLETS="sh httpd sleep cat echo ls ps kill wget nc hostname env id yes dd head true false \
seq grep sed awk tr wc date mkdir rm printf test expr cut"

# Writes the archive for root $1 (architecture $DEB_ARCH) to $2.
build_busybox_archive() {
  local root=$1 out=$2 work layer_sha config config_sha applet
  work=$(mktemp -d)
  mkdir -p "$work/fs/bin" "$work/fs/etc" "$work/fs/tmp" "$work/fs/proc" "$work/fs/dev" "$work/fs/sys" \
    "$work/fs/root" "$work/fs/www" "$work/pack"
  chmod 1777 "$work/fs/tmp"
  install -m 0755 "$root/bin/busybox" "$work/fs/bin/busybox" || die "image: no busybox in $root/bin"
  for applet in $BUSYBOX_APPLETS; do
    ln -s busybox "$work/fs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$work/fs/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$work/fs/etc/group"
  : >"$work/fs/etc/hosts"
  echo "board image v1" >"$work/fs/www/index.html"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -C "$work/fs" -cf "$work/layer.tar" . ||
    die "image: packing the busybox layer"
  layer_sha=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  mkdir -p "$work/pack/$layer_sha"
  mv "$work/layer.tar" "$work/pack/$layer_sha/layer.tar"
  config=$(printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$DEB_ARCH" "$layer_sha")
  config_sha=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
  printf '%s' "$config" >"$work/pack/$config_sha.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
    "$config_sha" "$BOARD_IMAGE" "$layer_sha" >"$work/pack/manifest.json"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -C "$work/pack" -cf "$out" . ||
    die "image: writing $out"
  rm -rf "$work"
}
