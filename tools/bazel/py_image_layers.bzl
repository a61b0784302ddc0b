"""Splits a py_binary into three reproducible image layers: interpreter, packages, app.

Each layer is a gzip tar built from an mtree spec with fixed owner (root), fixed mtime
and sorted entries, so the same sources always give the same layer digests. The
interpreter and third-party wheels change rarely; the app layer changes on every commit.
"""

load("@tar.bzl//tar:mtree.bzl", "mtree_mutate", "mtree_spec")
load("@tar.bzl//tar:tar.bzl", "tar")

# 2000-01-01T00:00:00Z: any constant works; it only has to never change.
LAYER_MTIME = "946684800"

LAYER_GROUPS = ["interpreter", "packages", "app"]

def py_image_layers(name, binary, package_dir = "app", visibility = None):
    """Declares <name>_interpreter, <name>_packages and <name>_app tar targets.

    Args:
        name: prefix of the generated targets.
        binary: the py_binary to package, with its runfiles.
        package_dir: directory in the image that holds the binary and its runfiles.
        visibility: visibility of the layer targets.

    Returns:
        The layer labels, lowest (least often changed) first.
    """
    spec = name + "_spec"
    mtree_spec(
        name = spec,
        srcs = [binary],
    )
    layers = []
    for group in LAYER_GROUPS:
        raw = "{}_{}_raw".format(name, group)
        native.genrule(
            name = raw,
            srcs = [":" + spec],
            outs = [raw + ".mtree"],
            cmd = "awk -v group={} -f $(execpath //tools/bazel:split_mtree.awk) $< | LC_ALL=C sort > $@".format(group),
            tools = ["//tools/bazel:split_mtree.awk"],
        )
        fixed = "{}_{}_fixed".format(name, group)
        mtree_mutate(
            name = fixed,
            mtree = ":" + raw,
            mtime = LAYER_MTIME,
            owner = "0",
            ownername = "root",
            package_dir = package_dir,
            # The app layer holds the venv that bootstrap_impl=script declares, whose
            # bin/python3 is a declared symlink into the interpreter's runfiles repo:
            # keep it a link (bsdtar cannot read it as a file, rules_python#2864). The
            # other layers hold plain files; links there pointed outside the image.
            preserve_symlinks = group == "app",
            srcs = [binary] if group == "app" else None,
        )
        layer = "{}_{}".format(name, group)
        tar(
            name = layer,
            srcs = [binary],
            compress = "gzip",
            mtree = ":" + fixed,
            visibility = visibility,
        )
        layers.append(":" + layer)
    return layers
